"""CIFAR-10 through the real torchvision dataset class, kept in memory as uint8 tensors."""

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import extract_archive

from optsweep.data.images import ImageClassificationDataModule
from optsweep.errors import UserError

ARCHIVE = "cifar-10-python.tar.gz"


class CIFAR10DataModule(ImageClassificationDataModule):
    def __init__(
        self,
        root: str,
        download: bool,
        val_fraction: float,
        augment: bool,
        seed: int,
        batch_size: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__(val_fraction, augment, seed, batch_size, num_workers)
        self.root = Path(root)
        self.download = download

    def _dataset(self, train: bool) -> CIFAR10:
        root = self.root
        if not (root / CIFAR10.base_folder).is_dir() and (root / ARCHIVE).is_file():
            extract_archive(str(root / ARCHIVE), str(root))  # the user dropped the archive in
        try:
            return CIFAR10(str(root), train=train, download=self.download)
        except RuntimeError as err:
            if "not found" not in str(err).lower():
                raise
            raise UserError(
                f"CIFAR-10 not found under {root}: put {ARCHIVE} there "
                "(or pass data.download=true to fetch it)"
            ) from None
        except OSError as err:  # URLError and friends: no network
            raise UserError(
                f"could not download CIFAR-10 ({err}); put {ARCHIVE} in {root} instead"
            ) from None

    def load(self):
        train, test = self._dataset(train=True), self._dataset(train=False)

        def tensors(dataset: CIFAR10):
            images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
            return images, torch.tensor(dataset.targets, dtype=torch.long)

        return (*tensors(train), *tensors(test), list(train.classes))
