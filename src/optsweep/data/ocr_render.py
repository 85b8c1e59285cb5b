"""One synthetic text line, rendered with Pillow's built-in font: a pure function of
(seed, split, index). Apart from the datamodule (ocr_synth.py), so that code without Lightning
(bench/harness.py's plain loop) renders the same lines."""

import random

import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from torchvision.transforms.functional import pil_to_tensor

FONT_SIZES = range(16, 27)


def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow >= 10.1 ships a FreeType font (Aileron) usable at any size.
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


_FONTS: dict[int, ImageFont.FreeTypeFont] = {}


def render_sample(
    seed: int, split: str, index: int, charset: str, min_len: int, max_len: int, size: tuple
) -> tuple[torch.Tensor, str]:
    """One (uint8 (1,H,W) image, text) pair: random text, font size, position, ink, blur, noise."""
    width, height = size
    rng = random.Random(f"{seed}:{split}:{index}")
    text = "".join(rng.choice(charset) for _ in range(rng.randint(min_len, max_len)))
    font_size = rng.choice(FONT_SIZES)
    while font_size > min(FONT_SIZES) and _font(font_size).getlength(text) > width - 4:
        font_size -= 1
    font = _font(font_size)
    left, top, right, bottom = font.getbbox(text)
    x = rng.randint(0, max(0, width - (right - left) - 2)) - left
    y = rng.randint(0, max(0, height - (bottom - top))) - top
    paper, ink = rng.randint(170, 255), rng.randint(0, 90)
    image = Image.new("L", (width, height), paper)
    ImageDraw.Draw(image).text((x, y), text, font=font, fill=ink)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.0)))
    pixels = pil_to_tensor(image).float()
    noise = torch.randn(pixels.shape, generator=torch.Generator().manual_seed(rng.getrandbits(62)))
    pixels += noise * rng.uniform(0.0, 12.0)
    return pixels.clamp_(0, 255).to(torch.uint8), text
