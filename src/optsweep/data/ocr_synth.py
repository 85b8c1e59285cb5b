"""The embedded, offline default task: text lines rendered with Pillow's built-in font.

Sample i of a split is a pure function of (seed, split, i), so every run, every process and
every resume sees the same data with nothing on disk.
"""

import random

import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from rich.progress import track
from torchvision.transforms.functional import pil_to_tensor

from optsweep.data.ocr import OCRDataModule

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


class SynthOCRDataModule(OCRDataModule):
    def __init__(
        self,
        charset: str,
        train_size: int,
        val_size: int,
        test_size: int,
        min_len: int,
        max_len: int,
        height: int,
        width: int,
        seed: int,
        batch_size: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__(charset, height, width, batch_size, seed, num_workers)
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        self.min_len, self.max_len = min_len, max_len

    def splits(self) -> dict[str, tuple[torch.Tensor, list[str]]]:
        out = {}
        for split, count in self.sizes.items():
            samples = [
                render_sample(
                    self.seed,
                    split,
                    i,
                    self.charset.chars,
                    self.min_len,
                    self.max_len,
                    (self.width, self.height),
                )
                for i in track(range(count), description=f"rendering {split} lines", transient=True)
            ]
            out[split] = (torch.stack([s[0] for s in samples]), [s[1] for s in samples])
        return out
