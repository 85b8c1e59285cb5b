"""The jobs of a grid: Hydra's cartesian product of the swept keys, crossed with explicit
settings (`hydra.sweeper.settings`).

A product cannot say "these three (scheduler, warmup_epochs) pairs, each with seeds 0, 1, 2":
a study's confirmation stage needs exactly that. A setting is a list of overrides; every
setting is crossed with every job of the product, and its overrides name the trial dir like
any typed override. The grid sweeper runs these jobs and the report counts them from here.
"""

import re

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override

from optsweep.errors import UserError

# Characters a Hydra override value may hold unquoted (what a grid value normally is).
PLAIN = re.compile(r"[\w.+\-/:@]*")


def quoted(value: str, always: bool = False) -> str:
    """A value as one Hydra override value: a comma, `=` or space in it must not split it."""
    if PLAIN.fullmatch(value) and not always:
        return value
    return "'" + value.replace("'", "\\'") + "'"


def settings_override(settings: list[list[str]]) -> str:
    """The `hydra.sweeper.settings=[[...],[...]]` override that runs exactly these settings."""
    lists = ",".join(
        "[" + ",".join(quoted(o, always=True) for o in setting) + "]" for setting in settings
    )
    return f"hydra.sweeper.settings=[{lists}]"


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def grid_jobs(overrides: list[Override], settings=None) -> list[list[str]]:
    """Each job's overrides: the product of `overrides`, once per setting (settings first)."""
    product = BasicSweeper.split_arguments(overrides, None)[0]
    settings = [list(setting) for setting in settings or []]
    if not settings:
        return product
    gridded = {_key(o) for o in product[0]}
    for setting in settings:
        if both := sorted(gridded & {_key(o) for o in setting}):
            raise UserError(
                f"hydra.sweeper.settings sets {', '.join(both)}, which the grid also sets: "
                "give each key in one place only"
            )
    return [[*setting, *job] for setting in settings for job in product]
