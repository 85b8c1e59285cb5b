"""The datamodule base shared by the image-classification datasets: uint8 image tensors in
memory, a seeded train/val split, and batch augmentation + normalisation on the device."""

import torch
from PIL import Image
from torch.utils.data import TensorDataset
from torchvision.transforms.functional import pil_to_tensor

from optsweep.data.augment import normalize, random_crop, random_hflip
from optsweep.data.loaders import TensorDataModule, check_val_fraction, seeded_split

CROP_PADDING = 4


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """RGB, resized to size x size (a no-op for CIFAR's 32x32), as (3, size, size) uint8."""
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return pil_to_tensor(image)


class ImageClassificationDataModule(TensorDataModule):
    """Subclasses provide `load()`: (train images, train labels, test images, test labels,
    class names), images as (N, 3, H, W) uint8."""

    task = "classification"

    def __init__(
        self, val_fraction: float, augment: bool, seed: int, batch_size: int, num_workers: int
    ) -> None:
        super().__init__(batch_size, seed, num_workers)
        check_val_fraction(val_fraction)
        self.val_fraction = val_fraction
        self.augment = augment
        self.classes: list[str] = []
        self.mean: list[float] = []
        self.std: list[float] = []

    def load(self):
        raise NotImplementedError

    def describe(self) -> dict:
        """What a checkpoint must remember to classify new images the way training did."""
        self.setup()
        size = self.datasets["train"].tensors[0].shape[-1]
        return {"classes": self.classes, "mean": self.mean, "std": self.std, "image_size": size}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        images, labels, test_images, test_labels, self.classes = self.load()
        train, val = seeded_split(len(images), self.val_fraction, self.seed)
        # Normalisation statistics of the training split only.
        pixels = images[train].float().div(255).transpose(0, 1).flatten(1)
        self.mean, self.std = pixels.mean(1).tolist(), pixels.std(1).tolist()
        self.datasets = {
            "train": TensorDataset(images[train], labels[train]),
            "val": TensorDataset(images[val], labels[val]),
            "test": TensorDataset(test_images, test_labels),
        }

    def to_input(self, images: torch.Tensor, training: bool) -> torch.Tensor:
        """A batch of uint8 images, on its device, as the network takes it: in [0, 1],
        augmented when training (a crop and a flip drawn per image), normalised."""
        images = images.float().div_(255.0)
        if self.augment and training:
            images = random_hflip(random_crop(images, CROP_PADDING))
        return normalize(images, self.mean, self.std)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.to_input(images, training), labels
