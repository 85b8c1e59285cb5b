"""Optimizer and LR-scheduler construction from the `optimizer` and `scheduler` config groups."""

from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate


def build_optimizer(optimizer_cfg: dict, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer config is a `_partial_` factory; here it gets the parameters.

    `_convert_="all"` hands the optimizer plain lists (betas, ...), not OmegaConf ListConfigs,
    which it would keep in its param_groups and so in every checkpoint, where they break
    `torch.load(weights_only=True)`.
    """
    factory = instantiate(optimizer_cfg, _convert_="all")
    return factory([p for p in model.parameters() if p.requires_grad])


# Scheduler arguments left null in the config and filled from the trainer, because only the
# trainer knows the length of the run (dataset size, batch size, epochs, accumulation).
def _run_steps(trainer: pl.Trainer) -> int:
    return int(trainer.estimated_stepping_batches)


_FROM_TRAINER = {"total_steps": _run_steps, "T_max": _run_steps, "total_iters": _run_steps}


def build_scheduler(
    scheduler_cfg: dict, optimizer: torch.optim.Optimizer, trainer: pl.Trainer
) -> dict[str, Any] | None:
    """Lightning's lr_scheduler dict; `interval`, `frequency` and `monitor` come from the config."""
    if scheduler_cfg.get("scheduler") is None:
        return None
    factory: partial = instantiate(scheduler_cfg["scheduler"], _convert_="all")
    filled = {
        key: fill(trainer)
        for key, fill in _FROM_TRAINER.items()
        if key in factory.keywords and factory.keywords[key] is None
    }
    scheduler = {
        "scheduler": factory(optimizer, **filled),
        "interval": scheduler_cfg["interval"],
        "frequency": scheduler_cfg["frequency"],
    }
    if scheduler_cfg.get("monitor"):
        scheduler["monitor"] = scheduler_cfg["monitor"]
    return scheduler
