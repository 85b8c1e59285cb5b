"""One trial of a multirun, made safe to re-run: this is what makes a sweep resumable and
keeps one bad trial from ending it, whichever launcher runs the trials.

Re-running the same multirun command with the same sweep dir lands every trial in the same
dir (named by its overrides). There a trial that already finished (completed, diverged,
stalled) is skipped, one with a last.ckpt continues from it, and the rest start fresh. A
trial that raises is recorded as `failed` and the sweep goes on; Ctrl-C still ends it. A trial
that another process is training (another sweep of the same grid) is skipped (run_lock.py).
"""

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from optsweep import run_lock
from optsweep.callbacks import (
    RESULT_FILE,
    ResultWriter,
    last_line,
    read_result,
    write_json_atomic,
)
from optsweep.checkpoints import load_checkpoint
from optsweep.errors import UserError
from optsweep.run_dirs import LAST_CHECKPOINT

log = logging.getLogger(__name__)

FINISHED = ("completed", "diverged", "stalled")


def finished(trial_dir: Path) -> bool:
    """True, after saying so, for a trial a re-run skips. Range tests (lr_find) always re-run:
    they write no result.json."""
    status = (read_result(trial_dir) or {}).get("status")
    if status in FINISHED:
        print(f"trial {trial_dir.name}: already {status}, skipped")
    return status in FINISHED


def _resumable(last: Path) -> bool:
    """A last.ckpt that cannot be read (killed while it was written) is set aside, not fatal:
    the trial starts again rather than failing on every re-run."""
    if not last.is_file():
        return False
    try:
        load_checkpoint(last)
    except UserError as err:
        last.rename(last.with_suffix(".ckpt.unreadable"))
        log.warning("%s; set aside as %s, the trial starts again", err, last.name + ".unreadable")
        return False
    return True


def run_trial(cfg: DictConfig, run: Callable[[DictConfig], float | None]) -> float | None:
    output_dir = Path(cfg.paths.output_dir)
    try:
        with run_lock.hold(output_dir):
            return _run_alone(cfg, run, output_dir)
    except run_lock.Busy as err:
        # Its result.json is the other process's: left as it is, not marked failed.
        print(f"trial {output_dir.name}: being trained by {err.holder}, skipped")
        return None


def _run_alone(cfg: DictConfig, run: Callable, output_dir: Path) -> float | None:
    """The trial, with no other process in its dir."""
    if cfg.mode == "train" and finished(output_dir):
        return None
    last = output_dir / LAST_CHECKPOINT
    if cfg.ckpt_path is None and _resumable(last):
        log.info("trial %s: continuing from %s", output_dir.name, last)
        cfg.ckpt_path = str(last)
    try:
        return run(cfg)
    except Exception as err:  # any error: the trial failed, the sweep goes on
        record_failure(output_dir, list(HydraConfig.get().overrides.task), last_line(err))
        print(f"trial {output_dir.name} failed: {last_line(err)}", file=sys.stderr)
        log.exception("trial %s failed", output_dir.name)
        return None


def record_failure(trial_dir: Path, overrides: list[str], error: str) -> None:
    """Mark result.json failed, keeping what it holds; ResultWriter has already done so for an
    error inside training, but not for one before it (bad input, missing data) or a process
    that died (the launcher calls this then)."""
    result = read_result(trial_dir)
    if result is None:
        ResultWriter(str(trial_dir), overrides, choices={}).write("failed", error=error)
    elif (result["status"], result.get("error")) != ("failed", error):
        write_json_atomic(trial_dir / RESULT_FILE, {**result, "status": "failed", "error": error})
