"""Warmup-stable-decay (Hu et al., 2024, MiniCPM): the LR stays constant, then decays over the
last `decay_fraction` of the run to eta_min, linearly or along a cosine. The warmup is the
project's own, on top of any scheduler (warmup.py).

The LR is a closed form of the step and the run's length, and the run's length comes from the
config of the run that is going on, never from a checkpoint: a run continued from a checkpoint
of its stable phase with more epochs or another decay_fraction stays constant to the new
decay start and decays over the new length. This is what WSD is for: one stable run, cut and
continued into runs of several lengths without restarting.
"""

import logging
import math

from torch.optim.lr_scheduler import LRScheduler

log = logging.getLogger(__name__)

DECAYS = {
    "linear": lambda progress: 1.0 - progress,
    "cosine": lambda progress: (1.0 + math.cos(math.pi * progress)) / 2,
}


class WSD(LRScheduler):
    # What the config says about the run's length and shape: left out of the state a
    # checkpoint saves, so a resume takes them from the config it runs with.
    RUN_SHAPE = ("total_steps", "decay_fraction", "decay")

    def __init__(
        self,
        optimizer,
        total_steps: int,
        decay_fraction: float = 0.2,
        decay: str = "linear",
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if not 0 <= decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in [0, 1], got {decay_fraction}")
        if decay not in DECAYS:
            raise ValueError(f"decay must be one of {', '.join(DECAYS)}, got {decay!r}")
        self.total_steps = total_steps
        self.decay_fraction = decay_fraction
        self.decay = decay
        # eta_min, like base_lrs, is state: adam_to_sgd rescales both at its switch.
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    @property
    def decay_steps(self) -> int:
        return round(self.decay_fraction * self.total_steps)

    @property
    def decay_start(self) -> int:
        return self.total_steps - self.decay_steps

    def factor(self, step: int) -> float:
        """1 in the stable phase, then from 1 down to 0 (reached at total_steps, after the
        last step, as cosine and linear do). decay_fraction=0: the stable phase alone, a run
        to be continued."""
        if step < self.decay_start or not self.decay_steps:
            return 1.0
        return DECAYS[self.decay](min(1.0, (step - self.decay_start) / self.decay_steps))

    def lrs_at(self, step: int) -> list[float]:
        factor = self.factor(step)
        return [self.eta_min + (base - self.eta_min) * factor for base in self.base_lrs]

    def get_lr(self) -> list[float]:
        return self.lrs_at(self.last_epoch)

    def state_dict(self) -> dict:
        return {k: v for k, v in super().state_dict().items() if k not in self.RUN_SHAPE}

    def load_state_dict(self, state_dict: dict) -> None:
        """The step count from the checkpoint; the LR of the next step from this run's shape.
        Lightning restores the optimizer first, whose groups hold the LR the checkpoint's run
        would have used next: replaced here by this run's (the same, when the shape is)."""
        super().load_state_dict(state_dict)
        saved, lrs = self._last_lr, self.lrs_at(self.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = lrs
        if lrs != saved:
            log.warning(
                "step %d of %d continues with lr %.4g instead of %.4g: the checkpoint's run "
                "had another length or decay (this run decays from step %d)",
                self.last_epoch,
                self.total_steps,
                lrs[0],
                saved[0],
                self.decay_start,
            )
