"""stage.json, in each stage's sweep dir: what the stage ran and what it decided.

It is written when the stage starts (status `running`, with its command) and again when its
sweep has ended (`done`, or `no winner`, with the ranking). The next stage is derived from it
alone, so a re-run of the study derives the same commands; it skips a stage that is done and
refuses one whose command the study no longer derives, rather than mix two studies' results.
"""

import json
from collections import Counter
from pathlib import Path

from omegaconf import OmegaConf

from optsweep.durable import write_json_atomic
from optsweep.errors import UserError
from optsweep.report.trials import NO_RESULT, Trial, expected_trials, leaderboard, read_trials
from optsweep.results import UNFINISHED
from optsweep.study.plan import StageSweep, key_of, text

RECORD_FILE = "stage.json"
RUNNING, DONE, NO_WINNER = "running", "done", "no winner"


def read_record(stage_dir: Path) -> dict | None:
    try:
        return json.loads((stage_dir / RECORD_FILE).read_text())
    except FileNotFoundError:
        return None


def write_record(stage_dir: Path, record: dict) -> None:
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(stage_dir / RECORD_FILE, record)


def started(sweep: StageSweep) -> dict:
    return {
        "stage": sweep.name,
        "status": RUNNING,
        "command": sweep.command(),
        "trained": sweep.trained(),
        "carried": sweep.carried,
        "grid": sweep.grid,
        "settings": sweep.settings,
        "notes": sweep.notes,
    }


def check_unchanged(record: dict, sweep: StageSweep, stage_dir: Path) -> None:
    """A stage dir holds one command's trials: the study's own, or an error."""
    before, now = record["trained"], sweep.trained()
    if before != now:
        gone = [o for o in before if o not in now] or ["(none)"]
        new = [o for o in now if o not in before] or ["(none)"]
        raise UserError(
            f"stage {sweep.name} in {stage_dir} was run with {' '.join(gone)}, the study now "
            f"asks for {' '.join(new)} (its YAML, the overrides or an earlier stage changed): "
            "give the study another study.dir=..., or remove that dir"
        )


def _overrides(trial: Trial) -> dict[str, str]:
    return dict(o.split("=", 1) for o in trial.result.get("overrides", []) if "=" in o)


def decide(stage_dir: Path, sweep: StageSweep) -> dict:
    """The stage's record once its sweep has ended: its ranking and winner, from the trials'
    result.json files (report/trials.py ranks them as the stage's report does)."""
    trials = read_trials(stage_dir)
    expected = expected_trials(stage_dir) or len(trials)
    open_trials = [t for t in trials if t.status in UNFINISHED or t.status == NO_RESULT]
    if open_trials or len(trials) < expected:
        missing = len(open_trials) + expected - len(trials)
        raise UserError(
            f"stage {sweep.name}: {missing} of its {expected} trials have no final result "
            "(interrupted, or trained by another process): run the study again to finish them"
        )
    metric = OmegaConf.load(stage_dir / "multirun.yaml").report.metric
    groups = leaderboard(trials, metric)
    varied = [k for k in sweep.varied if k != "seed"]
    values: dict[str, set] = {}
    for trial in trials:
        for key, value in _overrides(trial).items():
            if key in varied:
                values.setdefault(key, set()).add(value)
    winner = {}
    if groups:
        best = groups[0].trials[0]
        plain = {k: text(v) for k, v in best.choices.items() if not isinstance(v, dict | list)}
        winner = {k: v for k, v in {**plain, **_overrides(best)}.items() if key_of(k) != "seed"}
    return {
        **started(sweep),
        "status": DONE if groups else NO_WINNER,
        "metric": metric,
        "trials": len(trials),
        "statuses": dict(Counter(t.status for t in trials)),
        "epochs_trained": sum(t.result.get("epochs_completed", 0) for t in trials),
        "epochs_unpruned": sum(int(t.choices.get("epochs", 0)) for t in trials),
        "values": {k: sorted(v) for k, v in values.items()},
        "ranking": [
            {
                "setting": {k: v for k, v in _overrides(g.trials[0]).items() if k in varied},
                "mean": g.mean,
                "std": g.std,
                "n": len(g.values),
            }
            for g in groups
        ],
        "winner": winner,
    }
