"""Guards that end a hopeless trial early, so a sweep spends its time on the others.

A guard raises TrialStopped inside training: Lightning stops at once (no checkpoint of the
broken weights is written), ResultWriter records the status and the reason, and fit() returns
normally, because a diverged or stalled trial is a result of the sweep, not an error.
"""

import math
from collections.abc import Mapping

import pytorch_lightning as pl

from optsweep.results import DIVERGED, STALLED


class TrialStopped(Exception):
    def __init__(self, status: str, reason: str, **details) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.details = {"reason": reason, **details}


class DivergenceGuard(pl.Callback):
    """`diverged` as soon as a training loss is NaN/Inf, or above `factor` times the trial's
    first-epoch mean loss (a blow-up, not noise: the loss normally falls after epoch 0)."""

    def __init__(self, factor: float | None) -> None:
        self.factor = factor
        self.reference: float | None = None  # the first epoch's train/mean_loss

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = float((outputs["loss"] if isinstance(outputs, Mapping) else outputs).detach())
        loss *= trainer.accumulate_grad_batches  # Lightning divided it for accumulation
        step = trainer.global_step - 1  # the optimizer step whose loss this is, from 0
        if not math.isfinite(loss):
            raise TrialStopped(DIVERGED, f"loss is {loss}", step=step, loss=None)
        if self.factor and self.reference and loss > self.factor * self.reference:
            raise TrialStopped(
                DIVERGED,
                f"loss {loss:.4g} > {self.factor:g} x the first epoch's mean loss "
                f"{self.reference:.4g}",
                step=step,
                loss=loss,
            )

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.reference is None:
            self.reference = float(trainer.callback_metrics["train/mean_loss"])

    def state_dict(self) -> dict:
        return {"reference": self.reference}

    def load_state_dict(self, state_dict: dict) -> None:
        self.reference = state_dict["reference"]


class StallGuard(pl.Callback):
    """`stalled` when a classifier's validation accuracy stays within `tolerance` of chance
    (1 / number of classes) for `patience` epochs in a row: the network predicts one class,
    the usual sign of an LR too large that did not (yet) produce a NaN."""

    def __init__(self, patience: int | None, tolerance: float) -> None:
        self.patience = patience
        self.tolerance = tolerance
        self.epochs_at_chance = 0
        self.validated = False  # whether this epoch ran validation (val/acc is fresh)

    def on_validation_end(self, trainer, pl_module) -> None:
        self.validated = not trainer.sanity_checking

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        accuracy = trainer.callback_metrics.get("val/acc")
        validated, self.validated = self.validated, False
        if not self.patience or accuracy is None or not validated:  # off, not a classifier
            return
        chance = 1 / len(pl_module.config["data"]["classes"])
        accuracy = float(accuracy)
        self.epochs_at_chance = (
            self.epochs_at_chance + 1 if accuracy <= chance + self.tolerance else 0
        )
        if self.epochs_at_chance >= self.patience:
            raise TrialStopped(
                STALLED,
                f"val/acc {accuracy:.4f} within {self.tolerance:g} of chance ({chance:.4f}) "
                f"for {self.epochs_at_chance} epochs",
                epoch=trainer.current_epoch,
            )

    def state_dict(self) -> dict:
        return {"epochs_at_chance": self.epochs_at_chance}

    def load_state_dict(self, state_dict: dict) -> None:
        self.epochs_at_chance = state_dict["epochs_at_chance"]
