"""ResultWriter: the Lightning callback that keeps a run's result.json (results.py) current."""

import math
import os
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from optsweep.errors import last_line
from optsweep.guards import TrialStopped
from optsweep.results import (
    FAILED,
    INTERRUPTED,
    RESULT_FILE,
    RUNNING,
    new_result,
    write_json_atomic,
)


def _scalar(value) -> float | None:
    value = float(value.item() if isinstance(value, torch.Tensor) else value)
    return value if math.isfinite(value) else None


class ResultWriter(pl.Callback):
    """Keeps the per-epoch history and writes `result.json` into the run dir after every epoch
    (status `running`) and once more when the run ends (`finish`).

    The history and the wall time are part of the checkpoint (callback state), so a resumed
    run reports all its epochs, not only those since the resume, and the epochs it resumed at.
    `placement` says where and when this process ran: the GPU it was given
    (CUDA_VISIBLE_DEVICES) and its start and end times, which the sweep launcher tests read.
    """

    def __init__(self, output_dir: str, overrides: list[str], choices: dict) -> None:
        self.path = Path(output_dir) / RESULT_FILE
        self.overrides = overrides
        self.choices = choices
        self.history: list[dict] = []
        self.resumed_at: list[int] = []  # the epoch each resume started from
        self.wall_before = 0.0  # seconds spent by earlier processes of this run
        self.started = time.monotonic()
        self.started_at = time.time()  # before the trainer exists: before any GPU work
        self.trainer: pl.Trainer | None = None
        self.last: dict = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.trainer = trainer

    @property
    def wall_seconds(self) -> float:
        return self.wall_before + time.monotonic() - self.started

    def state_dict(self) -> dict:
        return {
            "history": self.history,
            "wall_seconds": self.wall_seconds,
            "resumed_at": self.resumed_at,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        # Lightning restores callback state for `trainer.test(ckpt_path=best)` too; the best
        # checkpoint's history stops at its epoch, so only a resumed fit takes it.
        if self.trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return
        self.history = list(state_dict["history"])
        self.wall_before = float(state_dict["wall_seconds"])
        self.resumed_at = [*state_dict.get("resumed_at", []), len(self.history)]
        self.started = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning runs validation before this hook, and the epoch's train/* values are
        # already reduced here, so the row holds the whole epoch.
        row = {"epoch": trainer.current_epoch}
        row.update(
            {
                key: _scalar(value)
                for key, value in sorted(trainer.callback_metrics.items())
                if key.startswith(("train/", "val/")) and key != "train/loss"
            }
        )
        self.history = [h for h in self.history if h["epoch"] < row["epoch"]] + [row]
        self.write(RUNNING)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Ctrl-C, or a SystemExit raised from a signal handler (submitit's requeue on
        # preemption or timeout): the run can be continued, it did not fail.
        if isinstance(exception, KeyboardInterrupt | SystemExit):
            self.write(INTERRUPTED)
        elif isinstance(exception, TrialStopped):
            self.write(exception.status, stopped=exception.details)
        else:
            self.write(FAILED, error=last_line(exception))

    def _best_row(self) -> dict | None:
        checkpoint = self.trainer.checkpoint_callback if self.trainer else None
        monitor = getattr(checkpoint, "monitor", None)
        rows = [h for h in self.history if h.get(monitor) is not None]
        if not rows:
            return None
        pick = max if checkpoint.mode == "max" else min
        return pick(rows, key=lambda h: h[monitor])

    def write(self, status: str, **extra) -> dict:
        checkpoint = self.trainer.checkpoint_callback if self.trainer else None
        result = new_result(
            status,
            self.overrides,
            choices=self.choices,
            monitor=getattr(checkpoint, "monitor", None),
            history=self.history,
            best=self._best_row(),
            wall_seconds=self.wall_seconds,
            resumed_at=self.resumed_at,
            placement={
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "cpu_threads": torch.get_num_threads(),
                "pid": os.getpid(),
                "started": self.started_at,
                "ended": time.time(),
            },
            checkpoints={
                "best": getattr(checkpoint, "best_model_path", None) or None,
                "last": getattr(checkpoint, "last_model_path", None) or None,
            },
            **extra,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, result)
        self.last = result
        return result
