"""The batch-size rule for the learning rate: a good LR found at `base_batch_size` is scaled
by k (linear, Goyal et al., 2017) or by sqrt(k) (Krizhevsky, 2014) when the batch is k times
larger. Applied in the config (`effective_lr: ${scaled_lr:${lr}}`), so every optimizer and
scheduler value that is an LR sees the same scaled number, and `--cfg job --resolve` shows it.
"""

import math

from omegaconf import DictConfig, OmegaConf

RULES = {"none": lambda ratio: 1.0, "linear": lambda ratio: ratio, "sqrt": math.sqrt}


def lr_scale(rule: str, batch_size: int, base_batch_size: int) -> float:
    if rule not in RULES:
        raise ValueError(f"lr_scaling must be one of {', '.join(RULES)}, got {rule!r}")
    return RULES[rule](batch_size / base_batch_size)


def scaled_lr(lr: float, _root_: DictConfig) -> float:
    return float(lr) * lr_scale(_root_.lr_scaling, _root_.batch_size, _root_.base_batch_size)


def register_resolver() -> None:
    OmegaConf.register_new_resolver("scaled_lr", scaled_lr, replace=True)
