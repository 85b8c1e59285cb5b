"""Fixtures shared by the tests."""

import json
import os
from pathlib import Path

import pytest
from filelock import FileLock

from helpers import write_image_folder
from schedule_runs import plain_run


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def plain_lrs(tmp_path_factory):
    """The LR of every step of one plain run per scheduler (schedule_runs.plain_run), made on
    first use and shared by the formula, warmup, plateau and Adam-to-SGD tests: across
    pytest-xdist's workers too, through their common temp root and a file lock."""
    shared = tmp_path_factory.getbasetemp()  # a worker's is a subdir of the session's
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared

    def lrs(scheduler: str) -> list[float]:
        made = shared / f"plain-{scheduler}.json"
        with FileLock(f"{made}.lock"):
            if not made.exists():
                run_dir = tmp_path_factory.mktemp(f"plain-{scheduler}")
                made.write_text(json.dumps(plain_run(run_dir, scheduler)))
        return json.loads(made.read_text())

    return lrs
