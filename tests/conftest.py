"""Fixtures shared by the tests, and the CPUs each pytest-xdist worker may use."""

import json
import os
import re
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from helpers import write_image_folder
from schedule_runs import plain_run


def pytest_configure(config):
    """Under pytest-xdist, each worker gets its share of the CPUs. Each torch process otherwise
    sizes its OpenMP pool to every CPU, and two workers' fits (and the runs they start) then
    spin-wait against each other: on 2 cores a 2 s fit took 40 s. The processes a worker starts
    inherit its mask, and OpenMP and the local launcher size their threads by it; torch in this
    process was sized when it was imported."""
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 0))
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if worker and count and cpus:
        # A worker that replaces a crashed one gets the next id: modulo, it takes the free share.
        # More workers than CPUs: each gets one CPU, shared round-robin.
        index = int(worker[1])
        share = cpus[index % count :: count] if count <= len(cpus) else [cpus[index % len(cpus)]]
        os.sched_setaffinity(0, share)
        torch.set_num_threads(len(share))


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
