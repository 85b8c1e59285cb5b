"""Learning-rate-free optimizers (optimizer=prodigy|dadapt_adam, the D-Adaptation family):
they estimate a step size d themselves and step with d * lr, so `lr` is a multiplier (default
1: their YAML puts conf/lr_multiplier.yaml at the top level, as SAM's base too). Their YAML marks
them `_lr_free_: true`; result.json records it (`choices.lr_free`), so the report reads their
`lr` as the multiplier it is."""

import torch

from optsweep.optim import stepping_cfg


def is_lr_free(optimizer_cfg) -> bool:
    """Alone or as SAM's base."""
    return bool(stepping_cfg(optimizer_cfg).get("_lr_free_", False))


def step_size(optimizer: torch.optim.Optimizer) -> float:
    """The LR of the step about to be taken: `lr`, times d where the optimizer keeps one. The
    D-Adaptation family keeps d in every param group and updates it at the end of each step,
    so the d read before a step is the one that step uses (with use_bias_correction, Adam's
    bias correction would multiply it too; our YAMLs leave it off)."""
    group = optimizer.param_groups[0]
    return group["lr"] * group.get("d", 1.0)
