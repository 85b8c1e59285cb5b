"""frozen_imports: `python train.py` and `python -m optsweep.train` load torch, Lightning and
Hydra with no garbage collection, then leave the process's objects frozen and the collector on;
a program that imports optsweep.train keeps its collector as it was. Real processes: the
collector's counters count from the interpreter's start."""

import json
import subprocess
import sys

from helpers import ROOT

# Printed by each process: the collections run so far (per generation), whether the collector
# is on, how many objects are frozen.
REPORT = (
    "import gc, json\nprint(json.dumps([gc.get_stats(), gc.isenabled(), gc.get_freeze_count()]))"
)
# The entry points, run as their commands run them, here with --cfg job (compose and print the
# config): runpy leaves the interpreter to this code afterwards, which prints REPORT.
ENTRY_POINTS = {
    "python train.py": "runpy.run_path('train.py', run_name='__main__')",
    "python -m optsweep.train": "runpy.run_module('optsweep.train', run_name='__main__')",
}


def run(code: str) -> list:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_the_entry_points_load_their_libraries_without_a_full_collection():
    for command, call in ENTRY_POINTS.items():
        stats, enabled, frozen = run(
            f"import runpy, sys\nsys.argv = ['train.py', '--cfg', 'job']\n{call}\n{REPORT}"
        )
        # Without frozen_imports the import alone ran 7 full collections (and 1,045 young ones).
        assert stats[2]["collections"] == 0, command
        assert enabled, command
        assert frozen > 300_000, command  # torch's, Lightning's and Hydra's objects


def test_importing_optsweep_train_leaves_the_importers_collector_alone():
    stats, enabled, frozen = run(f"import optsweep.train\n{REPORT}")
    assert frozen == 0
    assert enabled
    assert stats[2]["collections"] > 0  # the full collections frozen_imports spares a trial


def test_the_collectors_state_is_restored_even_when_the_block_fails():
    code = (
        "import gc\nfrom optsweep.frozen_imports import frozen_imports\n"
        "try:\n    with frozen_imports():\n        raise ImportError\n"
        "except ImportError:\n    pass\n"
        "assert gc.isenabled()\ngc.disable()\n"
        f"with frozen_imports():\n    import json\n{REPORT}"
    )
    _, enabled, _ = run(code)
    assert not enabled  # a caller that had turned it off keeps it off
