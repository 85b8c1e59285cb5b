"""The embedded, offline default task: text lines rendered with Pillow's built-in font.

Sample i of a split is a pure function of (seed, split, i), so every run, every process and
every resume sees the same data with nothing on disk.
"""

import torch
from rich.progress import track

from optsweep.data.ocr import OCRDataModule
from optsweep.data.ocr_render import render_sample


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
