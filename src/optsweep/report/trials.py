"""What a sweep dir holds, read from disk only: one Trial per trial dir, grouped over seeds,
ranked by the report's metric."""

import csv
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from optsweep.results import RANKED, RESULT_FILE, read_result

# The metrics where higher is better; every other one (losses, CER) is lower-is-better.
HIGHER_IS_BETTER = ("acc", "word_acc")
# The status shown for a trial dir that has started but written no result.json yet.
NO_RESULT = "no result"


def higher_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] in HIGHER_IS_BETTER


@dataclass
class Trial:
    name: str
    dir: Path
    result: dict = field(default_factory=dict)  # empty: started, no result yet

    @property
    def status(self) -> str:
        return self.result.get("status", NO_RESULT)

    @property
    def choices(self) -> dict:
        return self.result.get("choices") or {}

    @property
    def lr_free(self) -> bool:
        """An LR-free optimizer's `lr` multiplies the step size it estimates (lr_free.py)."""
        return bool(self.choices.get("lr_free"))

    @property
    def history(self) -> list[dict]:
        return self.result.get("history") or []

    def final(self, metric: str) -> float | None:
        return (self.result.get("final") or {}).get(metric)

    def best(self, metric: str) -> float | None:
        values = [h[metric] for h in self.history if h.get(metric) is not None]
        if not values:
            return None
        return max(values) if higher_is_better(metric) else min(values)

    def steps_lr(self) -> list[tuple[int, float]]:
        """The LR each logged optimizer step used (train/lr in metrics.csv)."""
        path = self.dir / "metrics.csv"
        if not path.is_file():
            return []
        with open(path) as f:
            rows = [r for r in csv.DictReader(f) if r.get("train/lr")]
        return [(int(r["step"]), float(r["train/lr"])) for r in rows]


def read_trials(sweep_dir: Path) -> list[Trial]:
    return [
        Trial(path.name, path, read_result(path) or {})
        for path in sorted(
            p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        if (path / RESULT_FILE).is_file() or (path / ".hydra").is_dir()
    ]


def expected_trials(sweep_dir: Path) -> int | None:
    """How many trials the sweep's command asks for, from its multirun.yaml (None if unknown)."""
    path = sweep_dir / "multirun.yaml"
    if not path.is_file():
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from optsweep.sweep.grid import grid_jobs

    config = OmegaConf.load(path)
    params = config.hydra.sweeper.get("params") or {}
    # As the sweeper expands them: the command line's value of a key replaces the params'.
    overrides = [f"{k}={v}" for k, v in params.items()]
    overrides += OmegaConf.to_container(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return len(grid_jobs(parsed, config.hydra.sweeper.get("settings")))


@dataclass
class Group:
    """One setting: the trials that differ only by seed."""

    name: str
    trials: list[Trial]
    values: list[float]  # the metric, one per ranked trial

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def choices(self) -> dict:
        return self.trials[0].choices


def leaderboard(trials: list[Trial], metric: str) -> list[Group]:
    """Ranked groups: completed trials with a finite final `metric`, best first."""
    groups: dict[str, list[Trial]] = {}
    for trial in trials:
        value = trial.final(metric)
        if trial.status in RANKED and value is not None and math.isfinite(value):
            groups.setdefault(trial.result.get("group", trial.name), []).append(trial)
    ranked = [
        Group(name, members, [t.final(metric) for t in members]) for name, members in groups.items()
    ]
    return sorted(ranked, key=lambda g: -g.mean if higher_is_better(metric) else g.mean)


def unranked(trials: list[Trial], metric: str) -> list[Trial]:
    """Trials that did not finish with a value: diverged, stalled, failed, still running."""
    return [t for t in trials if t.status not in RANKED or t.final(metric) is None]
