"""Which checkpoint files a run keeps: Lightning's ModelCheckpoint, made to hold its promises
when a run is killed and resumed at any moment."""

import logging
import os
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn

from optsweep import schedule_free
from optsweep.durable import remove_temp_files

log = logging.getLogger(__name__)


class ModelCheckpoint(pl.callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint, with last.ckpt the last epoch, and a checkpoints dir that
    holds only last.ckpt and the best files the callback tracks, whatever a kill interrupted.

    The class keeps Lightning's name: Lightning keys callback state by class name, so older
    checkpoints resume with their records of the best files.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._superseded: list[str] = []
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._trainer = trainer
        if stage == TrainerFn.FITTING and self.dirpath and os.path.isdir(self.dirpath):
            remove_temp_files(Path(self.dirpath))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        # Since Lightning 2.6, save_last writes last.ckpt only in a step that also saved a top-k
        # file, i.e. only when the monitored metric improved: a resume would then go back to
        # the best epoch. Skipped when this step is already saved (top-k and last together).
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # A schedule-free optimizer's averaged weights (schedule_free.py), also for a save with no
        # validation before it: Lightning collects the state_dict before any on_save_checkpoint.
        schedule_free.eval_mode(trainer.optimizers)
        super()._save_checkpoint(trainer, filepath)

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # Lightning deletes the old best file right after writing the new one, before last.ckpt:
        # a kill in between resumes from a last.ckpt whose best file is gone. Deleted once
        # last.ckpt is written instead (the resume below removes the new one).
        self._superseded.append(filepath)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        for filepath in self._superseded:
            super()._remove_checkpoint(trainer, filepath)
        self._superseded.clear()

    def _should_remove_checkpoint(self, trainer: pl.Trainer, previous: str, current: str) -> bool:
        # Lightning never deletes the file a run resumed from, taking it for a user's own; in
        # this run's own checkpoints dir it is one of ours (a resume from the best file when
        # last.ckpt could not be read), left stale if kept.
        if os.path.dirname(os.path.realpath(previous)) == self.dirpath:
            return previous != current
        return super()._should_remove_checkpoint(trainer, previous, current)

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        # Lightning restores this state for trainer.test(ckpt_path=best) too; only a resumed fit
        # owns the directory, and only when the state describes this directory.
        trainer = self._trainer
        ours = state_dict.get("dirpath") == self.dirpath
        if ours and trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            self._remove_untracked(keep=trainer.ckpt_path)

    def _remove_untracked(self, keep: str | None) -> None:
        """Checkpoints the restored state does not know: written after the resumed checkpoint
        by the process that was killed (a new best before its last.ckpt). If kept, Lightning would
        never delete them, and would save the same best again beside them as `-v1`."""
        tracked = {self.last_model_path, self.best_model_path, *self.best_k_models, keep}
        tracked = {os.path.realpath(p) for p in tracked if p}
        for path in Path(self.dirpath).glob(f"*{self.FILE_EXTENSION}"):
            if os.path.realpath(path) not in tracked:
                log.info("removing %s: the checkpoint this run resumed from does not know it", path)
                path.unlink()
