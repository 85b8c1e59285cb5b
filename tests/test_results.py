"""result.json has one home (optsweep/results.py): its statuses, its schema, its writes."""

import json
import subprocess
import sys

from optsweep import results
from optsweep.result_writer import ResultWriter


def test_every_status_is_finished_or_can_continue_or_failed():
    assert set(results.STATUSES) == (results.FINISHED | results.UNFINISHED | {results.FAILED})
    assert results.RANKED <= results.FINISHED and results.STOPPED <= results.FINISHED
    assert not results.FINISHED & results.UNFINISHED


def test_reading_results_does_not_load_torch_or_lightning():
    # The report and the launcher only read JSON: they must not pay for torch's import.
    code = (
        "import sys, optsweep.report.render, optsweep.results;"
        "print(sorted(m for m in ('torch', 'pytorch_lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_failure_outside_training_gets_the_whole_schema(tmp_path):
    results.mark_failed(tmp_path, ["lr=-1", "seed=3"], "lr must be a positive number")
    written = results.read_result(tmp_path)
    assert written == results.new_result(
        results.FAILED, ["lr=-1", "seed=3"], error="lr must be a positive number"
    )
    assert written["group"] == "lr=-1" and written["epochs_completed"] == 0
    # Marking it again with the same error rewrites nothing.
    before = (tmp_path / results.RESULT_FILE).stat().st_mtime_ns
    results.mark_failed(tmp_path, ["lr=-1", "seed=3"], "lr must be a positive number")
    assert (tmp_path / results.RESULT_FILE).stat().st_mtime_ns == before


def test_atomic_write_leaves_only_the_file(tmp_path):
    target = tmp_path / results.RESULT_FILE
    for status in (results.RUNNING, results.COMPLETED):
        results.write_json_atomic(target, {"status": status})
    assert [p.name for p in tmp_path.iterdir()] == [results.RESULT_FILE]
    assert json.loads(target.read_text()) == {"status": results.COMPLETED}


def test_checkpoints_from_before_the_move_still_resume():
    # Lightning keys a callback's checkpointed state by its class name, not its module:
    # moving ResultWriter out of callbacks.py keeps old checkpoints' history resumable.
    writer = ResultWriter("unused", [], {})
    assert writer.state_key == "ResultWriter"
