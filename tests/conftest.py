"""Fixtures shared by the tests."""

from pathlib import Path

import pytest

from helpers import write_image_folder
from schedule_runs import plain_run


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def plain_lrs(tmp_path_factory):
    """The LR of every step of one plain run per scheduler (schedule_runs.plain_run), made on
    first use and shared by the formula, warmup, plateau and Adam-to-SGD tests."""
    made: dict[str, list[float]] = {}

    def lrs(scheduler: str) -> list[float]:
        if scheduler not in made:
            made[scheduler] = plain_run(tmp_path_factory.mktemp(f"plain-{scheduler}"), scheduler)
        return made[scheduler]

    return lrs
