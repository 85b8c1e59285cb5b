"""Augmentation on whole batches of tensors, on the device the batch lives on.

torchvision's transforms.v2 apply one random crop/flip to a whole batch; CIFAR training wants
an independent draw per image, and per-sample PIL transforms are the bottleneck of a small
model. So this is written by hand, in the spirit of KellerJordan/cifar10-airbench.
"""

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-pad each side by `padding`, then crop back to the input size at a random offset
    drawn independently per image."""
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4).permute(0, 2, 3, 1)  # (N, H+2p, W+2p, C)
    dy = torch.randint(0, 2 * padding + 1, (n, 1, 1), device=images.device)
    dx = torch.randint(0, 2 * padding + 1, (n, 1, 1), device=images.device)
    rows = dy + torch.arange(h, device=images.device).view(1, h, 1)
    cols = dx + torch.arange(w, device=images.device).view(1, 1, w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def random_hflip(images: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def normalize(images: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    mean_t = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images - mean_t) / std_t
