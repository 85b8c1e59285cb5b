"""The datamodule base shared by the OCR datasets: uint8 line images + CTC targets as tensors."""

import torch
from torch.utils.data import TensorDataset

from optsweep.data.loaders import TensorDataModule
from optsweep.data.ocr_image import to_model_input
from optsweep.data.ocr_text import Charset


class OCRDataModule(TensorDataModule):
    """Subclasses provide `splits()`: {"train"|"val"|"test": (uint8 images (N,1,H,W), texts)}."""

    task = "ocr"

    def __init__(
        self, charset: str, height: int, width: int, batch_size: int, seed: int, num_workers: int
    ) -> None:
        super().__init__(batch_size, seed, num_workers)
        self.charset = Charset(charset)
        self.height = height
        self.width = width

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

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # uint8 travels to the device (4x less to copy); the float conversion happens there.
        images, targets, lengths = batch
        return to_model_input(images), targets, lengths
