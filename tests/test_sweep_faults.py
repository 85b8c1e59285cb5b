"""Sweeps under what users do to them: a report read while a sweep runs or after its launcher
was SIGKILLed, Ctrl-C, and two processes on one trial dir. Real processes, real signals."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import (
    TINY_OCR,
    results,
    run_cli,
    start_cli,
)
from optsweep.report.trials import expected_trials

LAST = Path("checkpoints") / "last.ckpt"


def wait_for(condition, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def saved_an_epoch(sweep: Path, count: int) -> dict[str, dict] | None:
    """The trials, once `count` of them have finished an epoch and saved a last.ckpt."""
    trials = results(sweep)
    saved = [n for n, r in trials.items() if r["epochs_completed"] and (sweep / n / LAST).is_file()]
    return trials if len(trials) == len(saved) == count else None


def local_sweep(sweep: Path, n_jobs: int, epochs: int, *more: str) -> list[str]:
    launcher = ["hydra/launcher=local", f"hydra.launcher.n_jobs={n_jobs}"]
    grid = ["lr=1e-3,2e-3,3e-3", *TINY_OCR, f"epochs={epochs}", "test=false", *more]
    return ["-m", *launcher, *grid, f"hydra.sweep.dir={sweep}"]


def paused_at_epoch_1(tmp_path: Path) -> list[str]:
    """Overrides for a run that, once it has saved epoch 0, trains on only when the test
    creates tmp_path/go (killer.PauseAtEpoch; a resumed run does not pause)."""
    pause = ["+callbacks.pause._target_=killer.PauseAtEpoch", "+callbacks.pause.epoch=1"]
    return [*pause, f"+callbacks.pause.until={tmp_path / 'go'}"]


def logged_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv") as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get("train/lr")]


@pytest.mark.slow
def test_the_report_counts_every_trial_of_a_running_and_of_a_killed_local_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    launcher = start_cli(local_sweep(sweep, 1, 30), tmp_path, tmp_path / "out.txt")
    ((name, trial),) = wait_for(lambda: saved_an_epoch(sweep, 1), "the first trial").items()
    # Its child process has started and trains: the sweep still asks for 3 trials.
    assert expected_trials(sweep) == 3
    launcher.kill()  # SIGKILL: the launcher cleans up nothing
    launcher.wait()
    wait_for(lambda: not alive(trial["placement"]["pid"]), "the trial to stop with its launcher")
    assert results(sweep)[name]["status"] == "interrupted"
    command = [sys.executable, "-m", "optsweep.report", str(sweep)]
    shown = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert "Incomplete: 1 of the 3 trials the sweep asks for have started." in shown


@pytest.mark.slow
def test_ctrl_c_stops_every_running_trial_once_and_a_rerun_finishes_them(tmp_path):
    sweep = tmp_path / "sweep"
    command = local_sweep(sweep, 2, 2, *paused_at_epoch_1(tmp_path))
    # The launcher handles SIGINT as a terminal's foreground python does (start_cli); the
    # trials run in sessions of their own, out of the terminal's reach, so the launcher is the
    # only process a Ctrl-C reaches.
    launcher = start_cli(command, tmp_path, tmp_path / "out.txt")
    running = wait_for(lambda: saved_an_epoch(sweep, 2), "two trials to save an epoch")
    os.kill(launcher.pid, signal.SIGINT)
    assert launcher.wait(timeout=180) == 130
    output = (tmp_path / "out.txt").read_text()
    assert "Traceback" not in output
    assert "interrupted: 2 running trials stopped" in output, output[-2000:]
    stopped = results(sweep)
    assert sorted(stopped) == sorted(running)  # the third trial never started
    for name, result in stopped.items():
        assert result["status"] == "interrupted" and result["epochs_completed"] == 1
        assert not alive(result["placement"]["pid"])
        log = (sweep / name / "launcher.log").read_text()
        assert log.count("Detected KeyboardInterrupt") == 1, log[-2000:]

    (tmp_path / "go").touch()  # the trial that starts fresh now trains without a pause
    rerun = run_cli(command, tmp_path)
    finished = results(sweep)
    assert len(finished) == 3, rerun.stdout[-2000:]
    for name, result in finished.items():
        assert result["status"] == "completed"
        assert [h["epoch"] for h in result["history"]] == [0, 1]
        # The stopped trials continued from the epoch they had saved, not from scratch.
        assert result["resumed_at_epochs"] == ([1] if name in stopped else [])


@pytest.mark.slow
def test_a_second_process_on_a_trial_dir_that_is_being_trained_is_refused(tmp_path):
    # Two sweeps of one grid at once, here one with each launcher: the second reaches the
    # trial while the first trains it (and has a last.ckpt the second would continue from).
    sweep = tmp_path / "sweep"
    grid = ["lr=1e-3", *TINY_OCR, "epochs=2", "test=false", f"hydra.sweep.dir={sweep}"]
    paused = paused_at_epoch_1(tmp_path)
    first = start_cli(["-m", *grid, *paused], tmp_path, tmp_path / "out.txt")
    ((name, _),) = wait_for(lambda: saved_an_epoch(sweep, 1), "the trial to save an epoch").items()
    try:
        second = run_cli(["-m", "hydra/launcher=local", *grid, *paused], tmp_path)
        child_output = (sweep / name / "launcher.log").read_text()
        assert f"being trained by pid {first.pid} on " in child_output, child_output[-2000:]
        assert "skipped" in child_output
        assert results(sweep)[name]["status"] == "running"  # not marked failed by the second
    finally:
        (tmp_path / "go").touch()
    assert first.wait(timeout=300) == 0

    result = results(sweep)[name]
    assert result["status"] == "completed" and result["placement"]["pid"] == first.pid
    assert result["resumed_at_epochs"] == []  # trained once, by one process
    assert [h["epoch"] for h in result["history"]] == [0, 1]
    steps = logged_steps(sweep / name)
    assert steps == sorted(set(steps)), "two processes logged into one metrics.csv"
    assert not (sweep / name / ".lock").exists(), second.stdout  # released, not left behind


@pytest.mark.slow
def test_continuing_a_run_that_is_still_training_is_refused(tmp_path):
    run = [*TINY_OCR, "epochs=2", "test=false", *paused_at_epoch_1(tmp_path)]
    first = start_cli(run, tmp_path, tmp_path / "out.txt")
    (last,) = wait_for(lambda: list(tmp_path.glob(f"outputs/runs/*/*/{LAST}")), "a last.ckpt")
    try:
        second = run_cli([*run, "ckpt_path=last"], tmp_path, check=False)
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 2 and len(lines) == 1, second.stderr[-2000:]
        assert lines[0].startswith("error: "), lines[0]
        assert f"is being trained by pid {first.pid} on " in lines[0]
    finally:
        (tmp_path / "go").touch()
    assert first.wait(timeout=300) == 0
    result = results(last.parents[2])[last.parents[1].name]
    assert result["status"] == "completed" and result["resumed_at_epochs"] == []
    assert [h["epoch"] for h in result["history"]] == [0, 1]


def test_a_sweep_whose_jobs_share_a_trial_dir_is_refused_before_anything_runs(tmp_path):
    # `logger` does not name trials, so both jobs would land in one trial dir.
    sweep = tmp_path / "sweep"
    proc = run_cli(
        ["-m", "logger=csv,tensorboard", *TINY_OCR, "epochs=1", "test=false"]
        + [f"hydra.sweep.dir={sweep}"],
        tmp_path,
        check=False,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert lines[0].startswith("error: ") and "logger=csv and logger=tensorboard" in lines[0]
    assert "Traceback" not in proc.stdout
    assert not sweep.exists() and not (tmp_path / "outputs").exists()


def test_a_sweep_over_data_is_checked_against_each_jobs_own_metrics(tmp_path, image_folder):
    # The sweep's base config holds the default (OCR) data, not the swept values: val/acc is
    # what every job of this classification grid logs, so it must not be refused.
    sweep = tmp_path / "sweep"
    grid = ["-m", "data=image_folder,cifar10", "model=simple_cnn", "report.metric=val/acc"]
    grid += [f"paths.data_dir={tmp_path}", "batch_size=8", "trainer=cpu", "epochs=1"]
    run_cli([*grid, "test=false", f"hydra.sweep.dir={sweep}"], tmp_path)
    by_data = {
        next(o for o in r["overrides"] if o.startswith("data=")): r for r in results(sweep).values()
    }
    assert by_data["data=image_folder"]["status"] == "completed"
    # It trained as far as its data: there is no CIFAR-10 archive here.
    assert by_data["data=cifar10"]["error"].startswith("CIFAR-10 not found")
