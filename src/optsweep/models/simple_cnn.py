"""A small conv net for 32x32 images: three conv blocks and a linear head."""

from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SimpleCNN(nn.Sequential):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 32) -> None:
        super().__init__(
            _block(in_channels, width),
            _block(width, 2 * width),
            _block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, num_classes),
        )
