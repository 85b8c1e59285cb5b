"""A study's plan: its YAML (conf/study/<name>.yaml), and each stage's sweep, derived from the
YAML and from the previous stage's decision (its stage.json, record.py). Nothing here trains or
reads a sweep, so every rule is tested on its own.

A study YAML:

    overrides: [hydra/launcher=local, epochs=4]   # every stage trains with these
    stages:
      optimizers:                                 # a stage: one sweep in <study dir>/<name>
        overrides: [prune=asha]                   # this stage's own
        grid: {optimizer: [sgd, adam], lr: [1e-3, 1e-2]}
      lr:
        carry: [optimizer]                        # the previous stage winner's values
        grid: {lr: {around: lr, points: 5, factor: 2}}
      confirm:
        carry: [optimizer, lr]
        top: 2                                    # the previous stage's 2 best settings ...
        grid: {seed: [0, 1, 2]}                   # ... each crossed with the grid
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from optsweep.errors import UserError
from optsweep.sweep.grid import quoted, settings_override

STUDY_FIELDS = ("overrides", "stages", "dir")
STAGE_FIELDS = ("overrides", "grid", "carry", "top")
AROUND_FIELDS = ("around", "points", "factor")
# Overrides that choose where trials run, not what they train: a re-run may change them.
PLACEMENT = ("hydra/launcher", "hydra.launcher")


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def text(value) -> str:
    """A YAML value as Hydra reads it back: true/false/null, numbers as Python writes them."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return str(value)


@dataclass
class StageSweep:
    """One stage's sweep: what its `train.py -m` runs, and why."""

    name: str
    fixed: list[str]  # the study's, the stage's and the command line's overrides
    carried: dict[str, str]  # key -> the previous stage winner's value
    grid: dict[str, list[str]]  # key -> the values it sweeps
    settings: list[list[str]] = field(default_factory=list)  # crossed with the grid
    notes: list[str] = field(default_factory=list)  # how the grid followed, in words

    @property
    def varied(self) -> list[str]:
        """The keys its trials differ in."""
        keys = [k for k, values in self.grid.items() if len(values) > 1]
        return keys + sorted({key_of(o) for s in self.settings for o in s} - set(keys))

    def command(self) -> list[str]:
        """The overrides of its `train.py -m`, all but the sweep dir."""
        overrides = [*self.fixed, *(f"{k}={v}" for k, v in self.carried.items())]
        overrides += [
            f"{k}={','.join(quoted(v) for v in values)}" for k, values in self.grid.items()
        ]
        if self.settings:
            overrides.append(settings_override(self.settings))
        return overrides

    def trained(self) -> list[str]:
        """command() without where trials run: what a re-run must repeat to reuse the stage."""
        return [o for o in self.command() if not key_of(o).startswith(PLACEMENT)]


def study_path(name: str, config_dir: Path) -> Path:
    """conf/study/<name>.yaml, or a YAML file given by its path."""
    is_file = name.endswith((".yaml", ".yml"))
    path = Path(name) if is_file else config_dir / "study" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (config_dir / "study").glob("*.yaml"))
        raise UserError(f"no study {name} ({path}); the studies are: {', '.join(known)}")
    return path


def load_study(path: Path, overrides: list[str]) -> DictConfig:
    """The study YAML with `study.<key>=<value>` overrides applied, checked."""
    try:
        study = OmegaConf.load(path)
        dotlist = [o.removeprefix("study.") for o in overrides]
        study = OmegaConf.merge(study, OmegaConf.from_dotlist(dotlist))
    except (OmegaConfBaseException, ValueError) as err:
        raise UserError(f"study {path}: {str(err).splitlines()[0]}") from None
    unknown = set(study) - set(STUDY_FIELDS)
    if unknown:
        raise UserError(
            f"study {path}: unknown field {sorted(unknown)[0]} ({', '.join(STUDY_FIELDS)})"
        )
    if not isinstance(study.get("stages"), DictConfig) or not study.stages:
        raise UserError(f"study {path}: `stages` must map each stage's name to its settings")
    for index, (name, stage) in enumerate(study.stages.items()):
        _check_stage(str(name), stage, first=index == 0)
    return study


def _check_stage(name: str, stage, first: bool) -> None:
    if not isinstance(stage, DictConfig):
        raise UserError(f"stage {name}: give it a mapping ({', '.join(STAGE_FIELDS)})")
    if unknown := sorted(set(stage) - set(STAGE_FIELDS)):
        raise UserError(f"stage {name}: unknown field {unknown[0]} ({', '.join(STAGE_FIELDS)})")
    rules = [k for k, v in (stage.get("grid") or {}).items() if isinstance(v, DictConfig)]
    if first and (stage.get("carry") or stage.get("top") or rules):
        raise UserError(f"stage {name}: the first stage has no previous stage to follow")
    for key, spec in (stage.get("grid") or {}).items():
        if isinstance(spec, DictConfig):
            if sorted(spec) != sorted(AROUND_FIELDS):
                raise UserError(
                    f"stage {name}: grid.{key} takes a list, or {{{', '.join(AROUND_FIELDS)}}}"
                )
        elif not isinstance(spec, ListConfig) or not spec:
            raise UserError(f"stage {name}: grid.{key} must be a non-empty list")


def chosen_keys(study: DictConfig) -> dict[str, str]:
    """Each key a stage sweeps or carries -> the first such stage: the study sets it."""
    keys: dict[str, str] = {}
    for name, stage in study.stages.items():
        for key in [*(stage.get("grid") or {}), *(stage.get("carry") or [])]:
            keys.setdefault(str(key), str(name))
    return keys


def log_points(center: float, tried: list[float], points: int, factor: float):
    """`points` values spaced by `factor` around `center`, the previous winner's value, and
    a note saying how. When the winner is the lowest (highest) value the previous stage
    tried, the answer may lie past that edge: the grid goes from the winner outwards
    (the winner and points - 1 below it, or above it) instead of refining inside."""
    if points < 1 or factor <= 1 or center <= 0 or not math.isfinite(center):
        raise UserError(
            f"an `around` grid needs points >= 1, factor > 1 and a positive winner value; "
            f"got points={points}, factor={factor}, winner {center}"
        )
    spread = len(set(tried)) > 1
    if spread and center <= min(tried):
        steps, how = range(-(points - 1), 1), "the lowest tried: extended below it"
    elif spread and center >= max(tried):
        steps, how = range(points), "the highest tried: extended above it"
    else:
        below = points // 2
        steps, how = range(-below, points - below), "refined around it"
    values = [float(f"{center * factor**k:.3g}") for k in steps]
    return values, how


def derive(
    name: str,
    stage: DictConfig,
    common: list[str],
    command_line: list[str],
    previous: dict | None,
) -> StageSweep:
    """The stage's sweep. `previous` is the previous stage's record (record.py): its winner's
    values, the values each key took, and its ranked settings."""
    winner = (previous or {}).get("winner", {})

    def winners(key: str) -> str:
        if key not in winner:
            raise UserError(
                f"stage {name}: the previous stage's winner has no value for {key} to carry"
            )
        return winner[key]

    carried = {str(k): winners(str(k)) for k in stage.get("carry") or []}
    grid, notes = {}, []
    for key, spec in (stage.get("grid") or {}).items():
        if isinstance(spec, DictConfig):
            center = _number(name, spec.around, winners(spec.around))
            tried = [_number(name, spec.around, v) for v in previous["values"].get(spec.around, [])]
            values, how = log_points(center, tried, int(spec.points), float(spec.factor))
            grid[key] = [text(v) for v in values]
            notes.append(
                f"{key}: {spec.points} points x{spec.factor} from the winner's {spec.around}="
                f"{winner[spec.around]}, {how}"
            )
        else:
            grid[key] = [text(v) for v in spec]
    settings = []
    if top := stage.get("top"):
        ranked = previous["ranking"][: int(top)]
        settings = [[f"{k}={v}" for k, v in group["setting"].items()] for group in ranked]
        notes.append(
            f"the top {len(settings)} of the previous stage's {len(previous['ranking'])} "
            f"ranked settings, each with every grid value"
        )
    set_here = [*carried, *grid, *{key_of(o) for s in settings for o in s}]
    if twice := sorted({k for k in set_here if set_here.count(k) > 1}):
        raise UserError(f"stage {name}: {twice[0]} is set twice (carry, grid or top)")
    # The stage's own overrides replace the study's of the same key, the command line's both;
    # what the stage carries or sweeps replaces them all.
    given = merged(common, [str(o) for o in stage.get("overrides") or []], command_line)
    fixed = [o for o in given if key_of(o) not in set_here]
    return StageSweep(name, fixed, carried, grid, settings, notes)


def merged(*groups: list[str]) -> list[str]:
    """The overrides in order, each replacing an earlier one of the same key."""
    by_key: dict[str, str] = {}
    for override in [o for group in groups for o in group]:
        by_key.pop(key_of(override), None)
        by_key[key_of(override)] = override
    return list(by_key.values())


def _number(stage: str, key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise UserError(f"stage {stage}: {key}={value} is not a number to grid around") from None
