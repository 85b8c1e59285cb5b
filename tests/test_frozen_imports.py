"""frozen_imports: a trial process loads torch, Lightning and Hydra with no garbage collection,
then leaves what they built frozen and the collector on. Real processes: the collector's
counters count from the interpreter's start."""

import json
import subprocess
import sys

# Printed by each process: the collections run so far, whether the collector is on, how many
# objects are frozen.
REPORT = (
    "import gc, json\nprint(json.dumps([gc.get_stats(), gc.isenabled(), gc.get_freeze_count()]))"
)


def run(code: str) -> list:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_a_trial_loads_its_libraries_without_a_full_collection():
    stats, enabled, frozen = run(f"import optsweep.train\n{REPORT}")
    # Without frozen_imports the same import ran 7 full collections (and 1,045 young ones).
    assert stats[2]["collections"] == 0
    assert stats[0]["collections"] < 100  # the few before the imports of torch and the rest
    assert enabled
    assert frozen > 300_000  # torch's, Lightning's and Hydra's objects, out of later scans


def test_a_caller_that_turned_the_collector_off_keeps_it_off():
    code = (
        "import gc\nfrom optsweep.frozen_imports import frozen_imports\ngc.disable()\n"
        f"with frozen_imports():\n    import json\n{REPORT}"
    )
    _, enabled, frozen = run(code)
    assert not enabled
    assert frozen > 0
