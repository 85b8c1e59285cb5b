"""result.json: a run's summary, one file per run or trial dir.

This module owns its schema, its statuses and its reads and writes, and imports nothing heavy:
the report, the launcher and the summary read results without loading torch or Lightning.
Training fills it through `ResultWriter` (result_writer.py).

Fields (README, "Where outputs go", lists them for users):
    status             one of STATUSES
    overrides          the command-line overrides of the run
    group              the overrides without `seed`: repeats of one setting share it
    choices            the option of each config group and the top-level knobs
    monitor            the metric that picks the best checkpoint
    epochs_completed   len(history)
    history            one row per epoch: `epoch` and the train/* and val/* values
    best / final       the history row with the best monitor value / the last row
    wall_seconds       summed over every process of the run (resumes included)
    resumed_at_epochs  the epoch each resume started from
    placement          where this process ran: cuda_visible_devices, cpu_threads, pid,
                       started, ended
    checkpoints        {"best": path, "last": path}
    test               test metrics of the best checkpoint (once completed)
    error              with `failed`: the error's last line
    stopped            with a guard's status: reason, and step or epoch; with `pruned`
                       also rung_epochs (the rung's epoch count)
"""

import json
from pathlib import Path

from optsweep.durable import write_json_atomic

RESULT_FILE = "result.json"

RUNNING = "running"  # written after every epoch; left as-is by a kill
COMPLETED = "completed"
DIVERGED = "diverged"  # stopped by the divergence guard
STALLED = "stalled"  # stopped by the stall guard
PRUNED = "pruned"  # stopped at a rung by the sweep's pruner (pruning.py)
FAILED = "failed"
INTERRUPTED = "interrupted"  # Ctrl-C, or a preempted SLURM job before its requeue
STATUSES = (RUNNING, COMPLETED, DIVERGED, STALLED, PRUNED, FAILED, INTERRUPTED)

# A re-run of the sweep skips these: training on would not change the outcome.
FINISHED = frozenset({COMPLETED, DIVERGED, STALLED, PRUNED})
# Stopped early on purpose, by a guard or the pruner: the result says where (`stopped`).
STOPPED = frozenset({DIVERGED, STALLED, PRUNED})
# Only these have a final value a leaderboard can rank.
RANKED = frozenset({COMPLETED})
# Over without a value to rank: the charts mark where these ended.
BROKEN = STOPPED | {FAILED}
# Not over: a re-run continues these from their last checkpoint.
UNFINISHED = frozenset({RUNNING, INTERRUPTED})


def group_of(overrides: list[str]) -> str:
    """Repeats of one setting (seed=0,1,2) share a group: their overrides but the seed."""
    return ",".join(sorted(o for o in overrides if not o.startswith("seed=")))


# What a trial's LR schedule is made of, beside the scheduler (result.json `choices`): trials that
# differ in one of these are pruned apart (pruning.py), never compared mid-run.
SCHEDULE_KNOBS = ("epochs", "min_lr", "warmup_steps", "warmup_epochs", "warmup_start_factor")


def schedule_of(choices: dict, overrides: list[str]) -> str:
    """A trial's LR schedule in one line, e.g. `scheduler=cosine,epochs=9,min_lr=0.0,...`."""
    knobs = [f"scheduler={choices.get('scheduler')}"]
    knobs += [f"{k}={choices.get(k)}" for k in SCHEDULE_KNOBS]
    return ",".join(knobs + sorted(o for o in overrides if o.startswith("scheduler.")))


def where_stopped(result: dict) -> str:
    """Where a trial that ended early stopped: the step, epoch or rung its `stopped` names."""
    stopped = result.get("stopped") or {}
    if "rung_epochs" in stopped:
        epochs = stopped["rung_epochs"]
        return f"rung after {epochs} epoch{'s' * (epochs != 1)}"
    if "step" in stopped:
        return f"step {stopped['step']}"
    if "epoch" in stopped:
        return f"epoch {stopped['epoch']}"
    return f"after {len(result.get('history') or [])} epochs"


def read_result(run_dir: Path) -> dict | None:
    """A run's result.json, or None if it has none (never started, or killed before epoch 1)."""
    try:
        return json.loads((Path(run_dir) / RESULT_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def status_of(run_dir: Path) -> str | None:
    return (read_result(run_dir) or {}).get("status")


def new_result(
    status: str,
    overrides: list[str],
    *,
    choices: dict | None = None,
    monitor: str | None = None,
    history: list[dict] | None = None,
    best: dict | None = None,
    wall_seconds: float = 0.0,
    resumed_at: list[int] | None = None,
    placement: dict | None = None,
    checkpoints: dict | None = None,
    **extra,
) -> dict:
    """A complete result.json payload: every field above, in this order."""
    assert status in STATUSES, status
    history = history or []
    return {
        "status": status,
        "overrides": overrides,
        "choices": choices or {},
        "monitor": monitor,
        "epochs_completed": len(history),
        "best": best,
        "final": history[-1] if history else None,
        "history": history,
        "wall_seconds": round(wall_seconds, 2),
        "resumed_at_epochs": resumed_at or [],
        "group": group_of(overrides),
        "placement": placement,
        "checkpoints": checkpoints or {"best": None, "last": None},
        **extra,
    }


def mark_failed(run_dir: Path, overrides: list[str], error: str) -> None:
    """Record `failed`, keeping what result.json holds: for an error outside training (bad
    input, missing data) or a process that died, which wrote no end of their own."""
    result = read_result(run_dir) or new_result(FAILED, overrides)
    if (result["status"], result.get("error")) == (FAILED, error):
        return
    write_json_atomic(Path(run_dir) / RESULT_FILE, {**result, "status": FAILED, "error": error})
