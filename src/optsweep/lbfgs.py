"""L-BFGS (Liu & Nocedal, 1989) as torch has it, over the one parameter group it supports.

Its step treats all parameters as one vector and calls the closure once per iteration (and
per line-search trial): evaluations.py makes only the first call count in train/mean_loss.
"""

import torch
from omegaconf import DictConfig

from optsweep.errors import UserError
from optsweep.evaluations import check_closure_precision


class LBFGS(torch.optim.LBFGS):
    def __init__(self, params, **kwargs) -> None:
        """The weight-decay groups (optim.py) become one, `all`: L-BFGS has no weight decay,
        and torch's takes one group only."""
        groups = list(params)
        merged = {"params": [p for group in groups for p in group["params"]], "group": "all"}
        super().__init__([merged], **kwargs)


def check(cfg: DictConfig) -> None:
    if cfg.optimizer.get("_target_") != "optsweep.lbfgs.LBFGS":
        return
    if cfg.weight_decay:
        raise UserError(
            f"optimizer=lbfgs has no weight decay, got weight_decay={cfg.weight_decay}: "
            "set weight_decay=0"
        )
    check_closure_precision("lbfgs", cfg.trainer.get("precision"))
