"""Sharpness-aware minimization (Foret et al., 2021) over any base optimizer of the catalogue.

Each step takes two gradients: g at the weights w, then g' at w + e with e = rho * g / |g|
(times |w| elementwise when `adaptive`, Kwon et al., 2021), and the base optimizer steps
from w with g'. The perturbation and the base step are pytorch_optimizer's SAM; what it
leaves to the caller is the first gradient, which it expects computed before step(). Under
Lightning nothing is computed before step(): the closure is all there is, so here step()
calls it twice.

The base optimizer's param_groups and state are this optimizer's (pytorch_optimizer shares
them, and re-links them on load_state_dict): schedulers, warmup and checkpoints act on the
base through SAM as through any optimizer.

Lightning runs training_step once per closure call; evaluations.py makes the second pass count
neither in train/mean_loss nor in the BatchNorm statistics, and cover every micro-batch of an
accumulation window.
"""

import torch
from omegaconf import DictConfig
from pytorch_optimizer import SAM as _SAM

from optsweep.errors import UserError
from optsweep.evaluations import check_closure_precision

# Base optimizers that need a closure of their own. Anything else a base brings passes
# through SAM: its own param groups (muon), its train/eval modes (schedule-free), its switch
# (adam_to_sgd, which the trainer's hook finds as SAM's base_optimizer).
NOT_A_BASE = {
    "optsweep.lbfgs.LBFGS": "it evaluates the loss at weights of its own choosing",
    "optsweep.sam.SAM": "it needs a closure, which the outer SAM's base step does not pass",
}


class SAM(_SAM):
    def __init__(self, params, base, rho: float = 0.05, adaptive: bool = False) -> None:
        """`base`: the base optimizer's factory (its config, instantiated as a partial)."""
        super().__init__(params, base, rho=rho, adaptive=adaptive)

    @torch.no_grad()
    def step(self, closure=None):
        """Returns the loss at w: the one the step starts from."""
        if closure is None:
            raise RuntimeError("SAM needs a closure that recomputes the loss and gradients")
        with torch.enable_grad():
            loss = closure()
        super().step(closure)  # w + e, the closure again, back to w, the base optimizer's step
        return loss

    # A schedule-free base trains at y and evaluates at x (schedule_free.py): its switches,
    # which the fit makes on the trainer's optimizer, reach it through here.
    def train(self) -> None:
        if callable(getattr(self.base_optimizer, "train", None)):
            self.base_optimizer.train()

    def eval(self) -> None:
        if callable(getattr(self.base_optimizer, "eval", None)):
            self.base_optimizer.eval()


def check(cfg: DictConfig) -> None:
    """optimizer=sam: a base that steps from a gradient, and a precision that passes the
    closure."""
    base = cfg.optimizer.base._target_
    if base in NOT_A_BASE:
        raise UserError(
            f"optimizer=sam cannot wrap {base}: {NOT_A_BASE[base]}; pick another base, e.g. "
            "optimizer@optimizer.base=sgd"
        )
    check_closure_precision("sam", cfg.trainer.get("precision"))
