"""One trial of a multirun, made safe to re-run: this is what makes a sweep resumable and
keeps one bad trial from ending it, whichever launcher runs the trials.

Re-running the same multirun command with the same sweep dir lands every trial in the same
dir (named by its overrides). There a trial that already finished (completed, diverged,
stalled) is skipped, one with a checkpoint continues from its newest readable one (normally
last.ckpt), and the rest start fresh. A trial that raises is recorded as `failed` and the
sweep goes on; Ctrl-C still ends it. A trial that another process is training (another sweep
of the same grid) is skipped (run_lock.py).
"""

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from optsweep import run_lock
from optsweep.checkpoints import UnreadableCheckpoint, newest_readable
from optsweep.errors import last_line
from optsweep.results import FINISHED, mark_failed, status_of
from optsweep.run_dirs import LAST_CHECKPOINT

log = logging.getLogger(__name__)


def finished(trial_dir: Path) -> bool:
    """True, after saying so, for a trial a re-run skips. Range tests (lr_find) always re-run:
    they write no result.json."""
    status = status_of(trial_dir)
    if status in FINISHED:
        print(f"trial {trial_dir.name}: already {status}, skipped")
    return status in FINISHED


def _resume_from(checkpoint_dir: Path) -> Path | None:
    """The trial's newest readable checkpoint (checkpoints.newest_readable). When none holds a
    checkpoint (cut short before writes were atomic, foreign), the trial starts again rather
    than failing on every re-run; the files are set aside as `<name>.unreadable`, one each,
    replaced by the next, so nothing piles up. An I/O error (a passing NFS fault) is raised:
    the trial fails, keeps its checkpoints, and the next re-run resumes it."""
    if not any(checkpoint_dir.glob("*.ckpt")):
        return None
    try:
        return newest_readable(checkpoint_dir)[0]
    except UnreadableCheckpoint as err:
        for path in checkpoint_dir.glob("*.ckpt"):
            path.replace(path.with_name(path.name + ".unreadable"))
        log.warning("%s; set them aside as *.unreadable, the trial starts again", err)
        return None


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
    try:
        checkpoints = output_dir / LAST_CHECKPOINT.parent
        if cfg.ckpt_path is None and (resume := _resume_from(checkpoints)):
            log.info("trial %s: continuing from %s", output_dir.name, resume)
            cfg.ckpt_path = str(resume)
        return run(cfg)
    except Exception as err:  # any error: the trial failed, the sweep goes on
        mark_failed(output_dir, list(HydraConfig.get().overrides.task), last_line(err))
        print(f"trial {output_dir.name} failed: {last_line(err)}", file=sys.stderr)
        log.exception("trial %s failed", output_dir.name)
        return None
