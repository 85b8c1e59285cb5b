"""A callback the resume tests inject with `+callbacks.killer._target_=killer.KillAtEpoch`:
it SIGKILLs its own process at the start of `epoch`, a real crash at a known point. It only
fires in a fresh run, so the resumed run with the same overrides goes on."""

import os
import signal

import pytorch_lightning as pl


class KillAtEpoch(pl.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and trainer.ckpt_path is None:
            os.kill(os.getpid(), signal.SIGKILL)
