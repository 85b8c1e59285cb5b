"""Callbacks the tests inject through the config, e.g.
`+callbacks.killer._target_=killer.KillAtEpoch`: faults at known points, and a probe."""

import os
import signal
import time
from pathlib import Path

import pytorch_lightning as pl


def _chosen(pl_module: pl.LightningModule, lr: float | None) -> bool:
    return lr is None or pl_module.config["lr"] == lr


class KillAtEpoch(pl.Callback):
    """SIGKILLs its own process at the start of `epoch`: a real crash at a known point. It
    fires only in a fresh run, so the resumed run with the same overrides goes on; in a sweep,
    only in the trial with learning rate `lr` (all of them when None)."""

    def __init__(self, epoch: int, lr: float | None = None) -> None:
        self.epoch, self.lr = epoch, lr

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fresh = trainer.ckpt_path is None
        if trainer.current_epoch == self.epoch and fresh and _chosen(pl_module, self.lr):
            os.kill(os.getpid(), signal.SIGKILL)


class RaiseAtEpoch(pl.Callback):
    """Raises inside training at the start of `epoch`: a trial that crashes (in a sweep, only
    the one with learning rate `lr`, all of them when None)."""

    def __init__(self, epoch: int, lr: float | None = None) -> None:
        self.epoch, self.lr = epoch, lr

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and _chosen(pl_module, self.lr):
            raise RuntimeError(f"boom at epoch {self.epoch}\nsecond line of the error")


class OptimizerStateProbe(pl.Callback):
    """Records the optimizer state Lightning hands to training, right after any restore."""

    seen: list[dict] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state = trainer.optimizers[0].state_dict()["state"]
        # Cloned: the optimizer updates its state tensors in place as training goes on.
        OptimizerStateProbe.seen.append(
            {i: {k: v.clone() for k, v in s.items()} for i, s in state.items()}
        )


class PauseAtEpoch(pl.Callback):
    """Waits at the start of `epoch` until the file `until` exists: a run that is surely still
    training while the test does something beside it. Like KillAtEpoch, only in a fresh run."""

    def __init__(self, epoch: int, until: str) -> None:
        self.epoch, self.until = epoch, Path(until)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and trainer.ckpt_path is None:
            while not self.until.exists():
                time.sleep(0.05)
