"""The datamodule base shared by the OCR datasets: uint8 line images + CTC targets as tensors."""

import pytorch_lightning as pl
import torch
from torch.utils.data import TensorDataset

from optsweep.data.loaders import make_loader
from optsweep.data.ocr_image import to_model_input
from optsweep.data.ocr_text import Charset


class OCRDataModule(pl.LightningDataModule):
    """Subclasses provide `splits()`: {"train"|"val"|"test": (uint8 images (N,1,H,W), texts)}."""

    task = "ocr"

    def __init__(
        self, charset: str, height: int, width: int, batch_size: int, seed: int, num_workers: int
    ) -> None:
        super().__init__()
        self.charset = Charset(charset)
        self.height = height
        self.width = width
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.datasets: dict[str, TensorDataset] = {}

    def splits(self) -> dict[str, tuple[torch.Tensor, list[str]]]:
        raise NotImplementedError

    def describe(self) -> dict:
        """What a checkpoint must remember to read new images the way training did."""
        return {"charset": self.charset.chars, "height": self.height, "width": self.width}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        for name, (images, texts) in self.splits().items():
            targets, lengths = self.charset.encode_batch(texts)
            self.datasets[name] = TensorDataset(images, targets, lengths)

    def _loader(self, split: str, shuffle: bool):
        return make_loader(
            self.datasets[split],
            self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            num_workers=self.num_workers,
        )

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # uint8 travels to the device (4x less to copy); the float conversion happens there.
        images, targets, lengths = batch
        return to_model_input(images), targets, lengths
