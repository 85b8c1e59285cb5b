"""A torchvision ImageFolder tree (<root>/train/<class>/*, <root>/test/<class>/*)."""

from pathlib import Path

import torch
from rich.progress import track
from torchvision.datasets import ImageFolder

from optsweep.data.images import ImageClassificationDataModule, image_to_tensor
from optsweep.errors import UserError


class ImageFolderDataModule(ImageClassificationDataModule):
    def __init__(
        self,
        root: str,
        image_size: int,
        val_fraction: float,
        augment: bool,
        seed: int,
        batch_size: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__(val_fraction, augment, seed, batch_size, num_workers)
        self.root = Path(root)
        self.image_size = image_size

    def _folder(self, split: str) -> ImageFolder:
        path = self.root / split
        try:
            return ImageFolder(str(path))
        except (FileNotFoundError, OSError) as err:
            raise UserError(
                f"no images at {path} ({err}); data=image_folder expects "
                f"{self.root}/train/<class>/*.png and {self.root}/test/<class>/*.png"
            ) from None

    def _tensors(self, folder: ImageFolder, split: str):
        images = [
            image_to_tensor(folder.loader(path), self.image_size)
            for path, _ in track(folder.samples, description=f"loading {split} images")
        ]
        return torch.stack(images), torch.tensor(folder.targets, dtype=torch.long)

    def load(self):
        train, test = self._folder("train"), self._folder("test")
        if test.classes != train.classes:
            raise UserError(
                f"{self.root}/test has classes {test.classes}, but train has {train.classes}"
            )
        return (*self._tensors(train, "train"), *self._tensors(test, "test"), train.classes)
