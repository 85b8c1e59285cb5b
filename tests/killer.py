"""Callbacks the tests inject through the config, e.g.
`+callbacks.killer._target_=killer.KillAtEpoch`: faults at known points, and a probe."""

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


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


class KillDuringSave(pl.Callback):
    """SIGKILLs its own process while the `save`-th checkpoint of `epoch` is being written (in
    a fresh run): with save=2 at an epoch that improves, last.ckpt, written after the new best.

    That checkpoint gets `padding_mb` of zeros, so writing it takes long enough to be caught:
    a thread watches $TMPDIR and the checkpoints dir for the file being written (any name but
    *.ckpt: Lightning's temp file in $TMPDIR, or ours beside the target) and kills the process
    as soon as that file holds bytes, i.e. in the middle of the write."""

    def __init__(self, epoch: int, save: int = 2, padding_mb: int = 64) -> None:
        self.epoch, self.save, self.padding_mb = epoch, save, padding_mb
        self.saves = 0

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        if trainer.ckpt_path is not None or trainer.current_epoch != self.epoch:
            return
        self.saves += 1
        if self.saves == self.save:
            checkpoint["padding"] = torch.zeros(self.padding_mb * 2**20 // 4)
            watched = [Path(tempfile.gettempdir()), Path(trainer.checkpoint_callback.dirpath)]
            threading.Thread(target=_kill_once_written, args=(watched,), daemon=True).start()


def _kill_once_written(watched: list[Path]) -> None:
    while True:
        for path in (p for folder in watched for p in folder.iterdir() if p.suffix != ".ckpt"):
            try:
                written = path.is_file() and path.stat().st_size > 0
            except FileNotFoundError:  # renamed into place meanwhile
                continue
            if written:
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.0005)


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
