"""Optimizer and LR-scheduler construction from the `optimizer` and `scheduler` config groups."""

from collections.abc import Mapping
from functools import partial
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import get_class, instantiate

from optsweep import schedule_free


def weight_decay_groups(model: torch.nn.Module, decay_1d: bool) -> list[dict]:
    """Parameter groups: by default biases and normalisation weights (every 1-D parameter) get
    no weight decay, because shrinking them toward 0 does not regularise, it only distorts
    (Goyal et al., 2017; Loshchilov & Hutter, 2019). The `decay` group keeps the optimizer's
    own weight_decay; `group` names each one in logs and checkpoints."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if decay_1d or param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "group": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "group": "no_decay", "weight_decay": 0.0})
    return groups


def describe_groups(optimizer: torch.optim.Optimizer) -> list[dict]:
    return [
        {
            "group": group.get("group"),
            "tensors": len(group["params"]),
            "parameters": sum(p.numel() for p in group["params"]),
            "weight_decay": group.get("weight_decay"),
        }
        for group in optimizer.param_groups
    ]


# Keys Hydra's instantiate reads itself; every other `_name_` key of an optimizer config is a
# trait the rest of optsweep reads (`_lr_free_`, `_schedule_free_`), not a constructor argument.
HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")


def constructor_cfg(optimizer_cfg: Mapping) -> dict:
    """Without the traits, a wrapped optimizer's (SAM's base) too."""
    return {
        key: constructor_cfg(value) if isinstance(value, Mapping) else value
        for key, value in optimizer_cfg.items()
        if key in HYDRA_KEYS or not (key.startswith("_") and key.endswith("_"))
    }


def stepping_cfg(optimizer_cfg):
    """The config of the optimizer whose step moves the weights: a wrapper's base (sam.py's
    `base`), else the optimizer's own. Its traits (`_lr_free_`, `_schedule_free_`), its own
    knobs and its way of splitting the model are the run's."""
    base = optimizer_cfg.get("base")
    return base if base is not None else optimizer_cfg


def build_optimizer(
    optimizer_cfg: dict, model: torch.nn.Module, decay_1d: bool = False
) -> torch.optim.Optimizer:
    """The optimizer config is a `_partial_` factory; here it gets the parameter groups.

    `_convert_="all"` hands the optimizer plain lists (betas, ...), not OmegaConf ListConfigs,
    which it would keep in its param_groups and so in every checkpoint, where they break
    `torch.load(weights_only=True)`.
    """
    factory = instantiate(constructor_cfg(optimizer_cfg), _convert_="all")
    # An optimizer that splits the model its own way (muon.py) says how, around SAM too.
    stepping = get_class(stepping_cfg(optimizer_cfg)["_target_"])
    groups_for = getattr(stepping, "param_groups_for", weight_decay_groups)
    optimizer = factory(groups_for(model, decay_1d))
    # A schedule-free optimizer starts in train mode, as a plain training loop expects (its step
    # refuses eval mode); in a fit, schedule_free.py switches it from here on.
    schedule_free.train_mode([optimizer])
    return optimizer


# Scheduler arguments left null in the config and filled from the trainer, because only the
# trainer knows the length of the run (dataset size, batch size, epochs, accumulation).
def _run_steps(trainer: pl.Trainer) -> int:
    return int(trainer.estimated_stepping_batches)


_FROM_TRAINER = {"total_steps": _run_steps, "T_max": _run_steps, "total_iters": _run_steps}


def keeps_run_length(scheduler_cfg: dict) -> bool:
    """Whether this scheduler keeps the run length it started with in its state, and so in a
    checkpoint: one whose length is filled from the trainer, unless its class leaves the run's
    shape out of its state (`RUN_SHAPE`, wsd.py)."""
    args = scheduler_cfg.get("scheduler") or {}
    if not any(key in args and args[key] is None for key in _FROM_TRAINER):
        return False
    return not hasattr(get_class(args["_target_"]), "RUN_SHAPE")


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
