"""Running a command again: a sweep trial stopped by a guard (`diverged`, `stalled`) is
finished and skipped, and a resumed run's `wall_seconds` counts every process of the run."""

import shutil
import time

import pytest
import torch

from helpers import GUARDS, SHARED_OCR, compose_cfg, guarded_run, snapshot, trained
from optsweep.sweep.trial import run_trial
from optsweep.train import fit, run


@pytest.mark.parametrize("status", ["diverged", "stalled"])
def test_a_trial_a_guard_stopped_is_skipped_on_a_rerun(tmp_path_factory, tmp_path, capsys, status):
    stopped = guarded_run(tmp_path_factory, *GUARDS[status])  # test_guards' runs
    assert stopped.result["status"] == status and stopped.result["checkpoints"]["last"]
    trial = shutil.copytree(stopped.dir, tmp_path / "trial")
    before = snapshot(trial)
    # The trial as the re-run sweep runs it, in its dir, with its last.ckpt to continue from.
    assert run_trial(compose_cfg(stopped.result["overrides"], trial), run) is None
    assert f"trial trial: already {status}, skipped" in capsys.readouterr().out
    assert snapshot(trial) == before  # not trained on, not even resumed


def test_wall_seconds_add_up_over_the_processes_of_a_run(tmp_path_factory, tmp_path):
    shared = trained(SHARED_OCR, tmp_path_factory)
    run_dir = shutil.copytree(shared.dir, tmp_path / "run")
    # As if the processes before the resume had trained for 1000 s.
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    checkpoint["callbacks"]["ResultWriter"]["wall_seconds"] = 1000.0
    torch.save(checkpoint, last)

    started = time.monotonic()
    result = fit(compose_cfg([*SHARED_OCR, f"ckpt_path={last}"], run_dir))
    this_process = time.monotonic() - started
    assert result["resumed_at_epochs"] == [2] and result["status"] == "completed"
    assert 1000.0 < result["wall_seconds"] <= 1000.0 + this_process
