"""The loss evaluations of a training batch, for optimizers that evaluate the loss more than
once per step.

Lightning runs training_step once per call of the optimizer closure. Most optimizers call it
once per step; SAM twice (at w, then at w + e), L-BFGS once per iteration of its search. Two
rules keep them comparable with the others:

- Only a batch's first evaluation, the loss at the weights the step starts from, counts: in
  train/loss, train/mean_loss and the BatchNorm running statistics. The later ones are at
  the optimizer's trial weights (SAM's perturbed ones, L-BFGS's iterates within the step).
- With gradient accumulation over k micro-batches, Lightning runs the earlier k-1 once each,
  before the step, and hands the optimizer the closure of the last one only; it also zeroes
  the gradients only at a window's first micro-batch. So a later evaluation zeroes them and
  recomputes the earlier micro-batches' gradients at the current weights itself, before the
  closure adds the last one's: every evaluation sees the whole window, like the first.
  (The cost: the window's batches are kept until its step.)
"""

from contextlib import contextmanager

import pytorch_lightning as pl
import torch

from optsweep.errors import UserError


class BatchEvaluations:
    def __init__(self) -> None:
        self.window: list = []  # the micro-batches whose gradients are accumulated so far
        self.count = 0  # evaluations of the current batch

    def new_batch(self, batch, batch_idx: int, accumulate: int) -> None:
        # Lightning's own rule for a window's first micro-batch (it zeroes the gradients there).
        if batch_idx % accumulate == 0:
            self.window = []
        self.window.append(batch)
        self.count = 0

    def evaluate(self, module: pl.LightningModule, batch) -> tuple[torch.Tensor, bool]:
        """`module.batch_loss(batch)` at the current weights, and whether it is the batch's
        first evaluation."""
        self.count += 1
        if self.count == 1:
            return module.batch_loss(batch), True
        with running_stats_frozen(module):
            if len(self.window) > 1:
                module.zero_grad()
                for earlier in self.window[:-1]:
                    # Scaled as Lightning scales the closure's loss under accumulation.
                    loss = module.batch_loss(earlier) / module.trainer.accumulate_grad_batches
                    module.trainer.strategy.backward(loss, None)
            return module.batch_loss(batch), False


@contextmanager
def running_stats_frozen(module: torch.nn.Module):
    """BatchNorm normalises with the batch's statistics as usual but leaves its running ones
    as they are (momentum 0: pytorch_optimizer's helpers, made for SAM's second pass)."""
    # Imported here: pytorch_optimizer takes 1-2 s to import, which only runs that evaluate a
    # batch twice should pay.
    from pytorch_optimizer import disable_running_stats, enable_running_stats

    disable_running_stats(module)
    try:
        yield
    finally:
        enable_running_stats(module)


def check_closure_precision(name: str, precision) -> None:
    """16-bit mixed precision steps through a GradScaler, which calls no closure."""
    if str(precision) in ("16", "16-mixed"):
        raise UserError(
            f"optimizer={name} evaluates the loss more than once per step, which "
            f"trainer.precision={precision} (a GradScaler step) cannot: use 32-true or bf16-mixed"
        )
