"""DataLoader construction shared by every datamodule, built so that a resumed run sees the
same batches in the same order as an uninterrupted one."""

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from optsweep.errors import UserError


def check_val_fraction(val_fraction: float) -> None:
    """Called by constructors, so a bad value is refused before any data is read."""
    if not 0 < val_fraction < 1:
        raise UserError(f"data.val_fraction must be between 0 and 1, got {val_fraction}")


def seeded_split(count: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices): a permutation fixed by the seed, with `val_fraction` of it
    (at least one sample) held out for validation."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(count * val_fraction))
    return order[n_val:], order[:n_val]


class EpochShuffleSampler(Sampler[int]):
    """A random permutation that depends only on (seed, epoch).

    Lightning calls `set_epoch` before every epoch, so after a resume at epoch k the order is
    the one the uninterrupted run used at epoch k, without restoring any RNG state.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def make_loader(
    dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int, num_workers: int = 0
) -> DataLoader:
    # An explicit generator keeps DataLoader from drawing its worker base seed from the
    # global RNG, which would shift every later random number (dropout, augmentation).
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(dataset), seed) if shuffle else None,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )


class TensorDataModule(pl.LightningDataModule):
    """Splits held in memory as TensorDatasets ("train", "val", "test"), served by make_loader:
    shuffled by (seed, epoch) for training, in order for evaluation."""

    def __init__(self, batch_size: int, seed: int, num_workers: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.datasets: dict[str, TensorDataset] = {}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return make_loader(
            self.datasets[split],
            self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
