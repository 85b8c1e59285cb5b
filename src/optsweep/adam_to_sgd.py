"""Adam first, then SGD with momentum from a fixed epoch on: Adam's fast start, SGD's better
generalisation late in training (Keskar & Socher, 2017, switch at a chosen epoch).

One optimizer holds both phases, so Lightning checkpoints it like any other: the phase, both
LRs and the switch epoch live in its param_groups, Adam's moments and SGD's momentum buffers
in its state. A run resumed on either side of the switch therefore goes on exactly as an
uninterrupted one. The updates are torch's own functional Adam and SGD.
"""

import logging

import pytorch_lightning as pl
import torch
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from optsweep.group_steps import GroupStepOptimizer, adam_step

log = logging.getLogger(__name__)

# The param_group keys that hold an LR: the optimizer's own, and those schedulers keep there
# (every scheduler's starting LR, OneCycleLR's peak and floor).
LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")


class AdamToSGD(GroupStepOptimizer):
    def __init__(
        self,
        params,
        lr: float,
        sgd_lr: float,
        switch_epoch: int,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        lr_scale: float = 1.0,
    ) -> None:
        if switch_epoch < 1:
            raise ValueError(f"switch_epoch must be >= 1, got {switch_epoch}")
        defaults = {
            "lr": lr,
            # The batch-size rule applies to both phases: `lr` comes scaled from the config,
            # `sgd_lr` is scaled here.
            "sgd_lr": sgd_lr * lr_scale,
            "adam_lr": lr,
            "switch_epoch": switch_epoch,
            "betas": tuple(betas),
            "eps": eps,
            "momentum": momentum,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
            "phase": "adam",
        }
        super().__init__(params, defaults)

    @property
    def phase(self) -> str:
        return self.param_groups[0]["phase"]

    @property
    def switch_epoch(self) -> int:
        return self.param_groups[0]["switch_epoch"]

    def switch_to_sgd(self) -> float:
        """Enter the SGD phase; returns the factor every LR was multiplied by (sgd_lr / lr),
        which keeps whatever the scheduler has done so far as a relative change."""
        ratio = self.param_groups[0]["sgd_lr"] / self.param_groups[0]["adam_lr"]
        for group in self.param_groups:
            group["phase"] = "sgd"
            for key in LR_KEYS:
                if key in group:
                    group[key] = group[key] * ratio
        # Adam's moments are dead weight from here on (twice the model's size, in memory and
        # in every checkpoint); the phase, kept in param_groups, is what a resume needs.
        for state in self.state.values():
            for key in ("step", "exp_avg", "exp_avg_sq"):
                state.pop(key, None)
        return ratio

    def step_group(self, group: dict, params: list[torch.Tensor]) -> None:
        (self._adam_step if group["phase"] == "adam" else self._sgd_step)(group, params)

    def _adam_step(self, group: dict, params: list[torch.Tensor]) -> None:
        adam_step(adam, group, params, self.state)

    def _sgd_step(self, group: dict, params: list[torch.Tensor]) -> None:
        states = [self.state[p] for p in params]
        buffers = [s.get("momentum_buffer") for s in states]
        sgd(
            params,
            [p.grad for p in params],
            buffers,
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            lr=group["lr"],
            dampening=0.0,
            nesterov=group["nesterov"],
            maximize=False,
        )
        for state, buffer in zip(states, buffers, strict=True):
            state["momentum_buffer"] = buffer


def rescale_schedule(scheduler, ratio: float) -> None:
    """Multiply every LR a torch scheduler keeps outside the param_groups: the LRs it starts
    from, its floor (cosine's eta_min, plateau's min_lrs), and those of the schedulers that
    SequentialLR and ChainedScheduler hold."""
    for inner in getattr(scheduler, "_schedulers", []):
        rescale_schedule(inner, ratio)
    for name in ("base_lrs", "min_lrs"):
        if hasattr(scheduler, name):
            setattr(scheduler, name, [lr * ratio for lr in getattr(scheduler, name)])
    if hasattr(scheduler, "eta_min"):
        scheduler.eta_min = scheduler.eta_min * ratio


def switch_if_due(trainer: pl.Trainer) -> None:
    """At the start of each epoch: switch every AdamToSGD whose epoch has come, and scale its
    schedulers' LRs by the same factor, so the schedule's shape carries over. As SAM's base
    too: SAM shares its base's param_groups, and the schedulers hold SAM."""
    for outer in trainer.optimizers:
        optimizer = getattr(outer, "base_optimizer", outer)
        if not isinstance(optimizer, AdamToSGD) or optimizer.phase == "sgd":
            continue
        if trainer.current_epoch < optimizer.switch_epoch:
            continue
        before = optimizer.param_groups[0]["lr"]
        ratio = optimizer.switch_to_sgd()
        for config in trainer.lr_scheduler_configs:
            if config.scheduler.optimizer is outer:
                rescale_schedule(config.scheduler, ratio)
        log.info(
            "epoch %d: Adam -> SGD with momentum, lr %.3g -> %.3g",
            trainer.current_epoch,
            before,
            optimizer.param_groups[0]["lr"],
        )
