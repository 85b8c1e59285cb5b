"""CRNN (Shi, Bai & Yao, 2015): conv stack -> BiLSTM -> per-column class scores for CTC."""

import torch
from torch import nn

from optsweep.errors import UserError


def _conv_block(c_in: int, c_out: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
    )


class CRNN(nn.Module):
    """Input (N, 1, H, W) in [0, 1]; output (N, W/4, num_classes) logits, class 0 = CTC blank.

    Pools halve the height four times but the width only twice, leaving W/4 time steps: enough
    columns per character for CTC to place blanks between repeated letters.
    """

    POOLS = ((2, 2), (2, 2), (2, 1), (2, 1))

    def __init__(
        self,
        num_classes: int,
        height: int = 32,
        in_channels: int = 1,
        channels: tuple[int, ...] = (16, 32, 64, 96),
        hidden_size: int = 128,
    ) -> None:
        super().__init__()
        if len(channels) != len(self.POOLS):
            raise ValueError(f"CRNN takes {len(self.POOLS)} conv widths, got {list(channels)}")
        if height % 16:
            raise UserError(
                f"the CRNN needs an image height divisible by 16 (it halves it four times), "
                f"got data.height={height}: use e.g. data.height={max(16, height // 16 * 16)}"
            )
        widths = [in_channels, *channels]
        self.features = nn.Sequential(
            *(
                _conv_block(a, b, p)
                for a, b, p in zip(widths[:-1], widths[1:], self.POOLS, strict=True)
            )
        )
        self.rnn = nn.LSTM(
            channels[-1] * (height // 16), hidden_size, batch_first=True, bidirectional=True
        )
        self.head = nn.Linear(2 * hidden_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(images)  # (N, C, H/16, W/4)
        n, c, h, w = features.shape
        columns = features.permute(0, 3, 1, 2).reshape(n, w, c * h)
        sequence, _ = self.rnn(columns)
        return self.head(sequence)
