"""Pruning: a trial of a sweep stops at a rung when it is losing (`prune=asha|hyperband|median`).

The decision belongs to the trial, not to the launcher, so it works under every launcher: each
trial reports its epoch values to one Optuna study in the sweep dir (a JournalStorage file that
any number of processes, and machines sharing the file system, append to) and asks Optuna's
pruner whether to go on. Optuna keeps the rungs (ASHA's `completed_rung_<k>` records) in that
file, so a re-run of a killed sweep keeps every decision made, and a resumed trial its rungs.

A pruned trial keeps the checkpoint of its rung epoch, records `pruned` with the rung and the
cut it missed (result.json `stopped`), and ends: under hydra/launcher=local its slot goes to the
next queued trial at once.

Trials are compared only with trials on the same LR schedule (one Optuna study per schedule,
named by results.schedule_of):
mid-run, a fast-decaying schedule has a lower loss than it ends with, so a pruned comparison
across schedules would favour it. Schedules are compared at their last epoch, in the report.
"""

import fcntl
import logging
import math
import os
import random
import statistics
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig

from optsweep.guards import TrialStopped
from optsweep.report.trials import higher_is_better
from optsweep.results import PRUNED, SCHEDULE_KNOBS

log = logging.getLogger(__name__)

STORE_FILE = "optuna.journal"


class _FlockLock:
    """The journal's write lock, as an flock: the kernel releases it when its process dies.
    Optuna's own file locks are lock files that a SIGKILLed holder leaves behind, and every
    other trial then waits out their 30 s grace period. (Optuna calls only these two methods.)"""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None


def open_storage(sweep_dir: Path):
    """The sweep's Optuna storage: `optuna-dashboard <sweep dir>/optuna.journal` shows it."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = str(Path(sweep_dir) / STORE_FILE)
    return JournalStorage(JournalFileBackend(path, lock_obj=_FlockLock(path + ".lock")))


class Pruning(pl.Callback):
    """Reports `metric` after every epoch to the trial's Optuna trial and stops the trial at the
    start of the next epoch when the pruner says so, so that the rung epoch's checkpoint (saved
    after every epoch-end hook) is written first and holds the decision."""

    def __init__(
        self,
        pruner_cfg: DictConfig,
        metric: str,
        sweep_dir: str,
        trial_name: str,
        schedule: str,
        overrides: list[str],
    ) -> None:
        import optuna
        from hydra.utils import instantiate

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.metric = metric
        self.trial_name = trial_name
        self.overrides = overrides
        self.pruner = instantiate(pruner_cfg)
        self.study = optuna.create_study(
            storage=open_storage(Path(sweep_dir)),
            study_name=schedule,
            pruner=self.pruner,
            direction="maximize" if higher_is_better(metric) else "minimize",
            load_if_exists=True,
        )
        self.trial: optuna.Trial | None = None
        self.pruned: dict | None = None  # the decision, once made; part of the checkpoint

    def _open_trial(self):
        """This trial dir's Optuna trial: the one a killed or failed process left running, or a
        new one. A finished one (its dir was deleted to run it again) is not reused."""
        import optuna
        from optuna.trial import TrialState

        for frozen in reversed(self.study.get_trials(deepcopy=False)):
            if frozen.user_attrs.get("trial") == self.trial_name:
                if frozen.state == TrialState.RUNNING:
                    return optuna.Trial(self.study, frozen._trial_id)
                break
        trial = self.study.ask()
        trial.set_user_attr("trial", self.trial_name)
        trial.set_user_attr("overrides", self.overrides)
        return trial

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.trial = self._open_trial()
            # A decision the store has and the checkpoint missed (a kill in between) stands.
            self.pruned = self.pruned or self.trial.user_attrs.get("pruned")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.pruned:  # decided at the end of the last epoch, or before a kill and a resume
            raise TrialStopped(PRUNED, self.pruned["reason"], **self._where())

    def _where(self) -> dict:
        return {k: v for k, v in self.pruned.items() if k != "reason"}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        epochs = trainer.current_epoch + 1
        # No decision at the last epoch: the trial is over anyway. A value Optuna already has
        # (the epoch ran again after a kill) keeps the one it had.
        last = trainer.max_epochs is not None and epochs >= trainer.max_epochs
        if self.trial is None or value is None or last:
            return
        value = float(value)
        self.trial.report(value if math.isfinite(value) else math.nan, step=epochs)
        if self.trial.should_prune():
            self.pruned = {
                "reason": self._reason(epochs),
                "epoch": trainer.current_epoch,
                "rung_epochs": epochs,
            }
            self.trial.set_user_attr("pruned", self.pruned)

    def _reason(self, epochs: int) -> str:
        frozen = self.study._storage.get_trial(self.trial._trial_id)
        value = frozen.intermediate_values[epochs]
        cut = cut_at(self.study, self.pruner, frozen, epochs)
        after = f"{epochs} epoch{'s' * (epochs > 1)}"
        return f"at the rung after {after}, {self.metric} {value:.4g} missed the cut {cut}"

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.trial is not None and not self.pruned:
            value = trainer.callback_metrics.get(self.metric)
            self._tell(values=float(value) if value is not None else None)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # Pruned, diverged, stalled: over, and a re-run skips the trial. Anything else (a crash,
        # Ctrl-C, a requeue) leaves the Optuna trial running: a re-run continues it.
        if self.trial is not None and isinstance(exception, TrialStopped):
            self._tell(pruned=exception.status == PRUNED)

    def _tell(self, values: float | None = None, pruned: bool = False) -> None:
        from optuna.trial import TrialState

        if pruned:
            self.study.tell(self.trial, state=TrialState.PRUNED)
        elif values is not None and math.isfinite(values):
            self.study.tell(self.trial, values)
        else:
            self.study.tell(self.trial, state=TrialState.FAIL)
        self.trial = None

    def state_dict(self) -> dict:
        return {"pruned": self.pruned}

    def load_state_dict(self, state_dict: dict) -> None:
        self.pruned = state_dict["pruned"]


def cut_at(study, pruner, frozen, epochs: int) -> str:
    """The value a trial had to beat at `epochs`, as the pruner saw it, for the reason line."""
    from optuna.pruners import HyperbandPruner, MedianPruner, SuccessiveHalvingPruner
    from optuna.trial import TrialState

    others = [t for t in study.get_trials(deepcopy=False) if t.number != frozen.number]
    maximize = study.direction.name == "MAXIMIZE"
    if isinstance(pruner, MedianPruner):
        values = [
            t.intermediate_values[epochs]
            for t in others
            if t.state == TrialState.COMPLETE and epochs in t.intermediate_values
        ]
        return f"{statistics.median(values):.4g} (the median of {len(values)} finished trials)"
    if isinstance(pruner, SuccessiveHalvingPruner | HyperbandPruner):
        rung = max(int(k.rsplit("_", 1)[1]) for k in frozen.system_attrs if "completed_rung_" in k)
        key = f"completed_rung_{rung}"
        if isinstance(pruner, HyperbandPruner):  # only trials of the same bracket compete
            bracket = pruner._get_bracket_id(study, frozen)
            others = [t for t in others if pruner._get_bracket_id(study, t) == bracket]
        values = sorted(
            [
                frozen.system_attrs[key],
                *(t.system_attrs[key] for t in others if key in t.system_attrs),
            ],
            reverse=maximize,
        )
        # Optuna's rule (_is_trial_promotable_to_next_rung): the top len // eta go on, one at least.
        kept = max(len(values) // pruner._reduction_factor, 1)
        return f"{values[kept - 1]:.4g} (the top {kept} of {len(values)} trials at this rung)"
    return "of the pruner"


def launch_order(prune: DictConfig, jobs: list[list[str]]) -> list[list[str]]:
    """A pruned grid's jobs in a fixed random order (`prune.order=shuffled`), the order ASHA
    assumes. A trial goes on at a rung when it is in the top 1/eta of the trials that reached
    the rung before it, so the first ones there face few rivals. In a grid typed in increasing
    LR, each trial tends to beat the ones before it and nearly all go on: replayed on the
    recorded curves of bench/pruning.py's OCR grid (27 epochs, first rung after 3), ASHA kept
    62% of the epochs in the typed order against a median of 32% over 200 shuffled orders."""
    if not prune.get("pruner") or prune.order == "typed":
        return jobs
    shuffled = list(jobs)
    random.Random(0).shuffle(shuffled)  # the same order on a re-run
    log.info("prune: the %d trials start in a shuffled order (prune.order=shuffled)", len(jobs))
    return shuffled


def note_schedules(prune: DictConfig, jobs: list[list[str]]) -> None:
    """Say once, when a pruned sweep starts, what its comparison of schedules means."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for key, _, value in (o.partition("=") for o in job):
            if key in ("scheduler", *SCHEDULE_KNOBS) or key.startswith("scheduler."):
                values.setdefault(key, set()).add(value)
    varying = sorted(k for k, v in values.items() if len(v) > 1)
    if prune.get("pruner") and varying:
        log.warning(
            "prune: this sweep varies the LR schedule (%s). Mid-run a fast-decaying schedule "
            "looks better than it ends, so each trial is pruned only against trials on the same "
            "schedule; schedules are compared at their last epoch, in the report.",
            ", ".join(varying),
        )
