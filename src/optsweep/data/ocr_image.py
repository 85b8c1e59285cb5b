"""One text-line image -> the fixed-size tensor the CRNN reads. Used for training folders and
by predict, so a checkpoint sees images prepared exactly as in training."""

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

BACKGROUND = 255  # lines are dark text on a light background, as rendered and as scanned


def line_to_tensor(image: Image.Image, height: int, width: int) -> torch.Tensor:
    """Grey, resized to `height` keeping the aspect ratio, padded on the right to `width`.

    A line wider than `width` after resizing is squeezed to fit rather than cropped: cropping
    would silently drop characters that the label still contains.
    """
    grey = image.convert("L")
    scaled_width = max(1, round(grey.width * height / grey.height))
    grey = grey.resize((min(scaled_width, width), height), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (width, height), BACKGROUND)
    canvas.paste(grey, (0, 0))
    return pil_to_tensor(canvas)  # (1, height, width) uint8


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 lines -> float ink in [0, 1], background 0: the conv stack's zero padding and the
    right-hand padding of short lines then look like background, not like a dark border."""
    return 1.0 - images.float() / 255.0
