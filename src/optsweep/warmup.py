"""Linear LR warmup that composes with any scheduler, ReduceLROnPlateau included.

Warmup is a factor on whatever the scheduler says, applied only while the optimizer steps:
step t uses `scheduled_lr(t) * factor(t)`, with factor rising linearly from
`warmup_start_factor` to 1 over the warmup steps and staying 1 after. The schedulers never see
the factor (their recursive formulas read the LR back from the optimizer), so each runs exactly
as it would without warmup, and the hand-over is continuous by construction.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class Warmup:
    def __init__(self, steps: int, start_factor: float) -> None:
        self.steps = steps
        self.start_factor = start_factor

    @classmethod
    def from_config(cls, config: dict, steps_per_epoch: int) -> "Warmup":
        steps = config["warmup_steps"] or config["warmup_epochs"] * steps_per_epoch
        return cls(steps, config["warmup_start_factor"])

    def factor(self, step: int) -> float:
        if step >= self.steps:
            return 1.0
        return self.start_factor + (1.0 - self.start_factor) * step / self.steps


@contextmanager
def lr_multiplied(optimizer: torch.optim.Optimizer, factor: float) -> Iterator[None]:
    """Every group's LR times `factor` inside the block, and exactly the old value after."""
    scheduled = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr
