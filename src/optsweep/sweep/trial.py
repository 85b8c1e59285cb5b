"""One trial of a multirun, made safe to re-run: this is what makes a sweep resumable and
keeps one bad trial from ending it, whichever launcher runs the trials.

Re-running the same multirun command with the same sweep dir lands every trial in the same
dir (named by its overrides). There a trial that already finished (completed, diverged,
stalled) is skipped, one with a last.ckpt continues from it, and the rest start fresh. A
trial that raises is recorded as `failed` and the sweep goes on; Ctrl-C still ends it.
"""

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from optsweep.callbacks import (
    RESULT_FILE,
    ResultWriter,
    last_line,
    read_result,
    write_json_atomic,
)
from optsweep.run_dirs import LAST_CHECKPOINT

log = logging.getLogger(__name__)

FINISHED = ("completed", "diverged", "stalled")


def run_trial(cfg: DictConfig, run: Callable[[DictConfig], float | None]) -> float | None:
    output_dir = Path(cfg.paths.output_dir)
    previous = read_result(output_dir)
    if cfg.mode == "train" and previous and previous["status"] in FINISHED:
        print(f"trial {output_dir.name}: already {previous['status']}, skipped")
        return None
    last = output_dir / LAST_CHECKPOINT
    if cfg.ckpt_path is None and last.is_file():
        log.info("trial %s: continuing from %s", output_dir.name, last)
        cfg.ckpt_path = str(last)
    try:
        return run(cfg)
    except Exception as err:  # any error: the trial failed, the sweep goes on
        _record_failure(output_dir, last_line(err))
        print(f"trial {output_dir.name} failed: {last_line(err)}", file=sys.stderr)
        log.exception("trial %s failed", output_dir.name)
        return None


def _record_failure(output_dir: Path, error: str) -> None:
    """Mark result.json failed, keeping what it holds; ResultWriter has already done so for an
    error inside training, but not for one before it (bad input, missing data)."""
    result = read_result(output_dir)
    if result is None:
        overrides = list(HydraConfig.get().overrides.task)
        ResultWriter(str(output_dir), overrides, choices={}).write("failed", error=error)
    elif (result["status"], result.get("error")) != ("failed", error):
        write_json_atomic(output_dir / RESULT_FILE, {**result, "status": "failed", "error": error})
