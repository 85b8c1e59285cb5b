"""Pruned sweeps (`prune=asha`): ASHA's decisions on recorded values, and real sweeps under the
basic, local and submitit_local launchers that prune, survive kills and re-runs, and free
their slots at once. Real subprocesses, real Optuna journal in the sweep dir."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch

from helpers import TINY_OCR, compose_cfg, results, run_cli, start_cli
from optsweep.guards import TrialStopped
from optsweep.pruning import STORE_FILE, Pruning, open_storage

ASHA = ["prune=asha", "prune.min_epochs=1", "prune.reduction_factor=3"]
# Rungs after 1 and 3 epochs; the 4th epoch is the last, where nothing is decided.
PRUNED_SWEEP = ["-m", *ASHA, *TINY_OCR, "epochs=4", "test=false"]


def studies(sweep: Path) -> dict[str, list]:
    storage = open_storage(sweep)
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
        for s in optuna.get_all_study_summaries(storage)
    }


@pytest.fixture
def go(tmp_path):
    """The file killer.PauseAtEpoch waits for; created at teardown too, so that a failed test
    leaves no trial waiting for it forever."""
    path = tmp_path / "go"
    yield path
    path.touch()


def by_lr(sweep: Path) -> dict[float, dict]:
    return {r["choices"]["lr"]: r for r in results(sweep).values()}


# Train/mean_loss of seven trials after epochs 1..9, reported in this order (one trial at a
# time), and what ASHA with min_epochs=1, eta=3 must decide: rungs after 1, 3 and 9 epochs; at
# a rung a trial goes on only if it is in the top max(1, n // 3) of the n trials that reached
# it so far, itself included.
RECORDED = {
    "t0": [5.0, 4.0, 3.0, 2.5, 2.4, 2.3, 2.2, 2.1, 2.0],  # first at every rung: goes on
    "t1": [4.0, 3.8, 3.5],  # rung 1: best of 2; rung 3: 3.5 vs 3.0, top 1 of 2: pruned
    "t2": [6.0],  # rung 1: top 1 of 3 is 4.0: pruned
    "t3": [4.5],  # top 1 of 4 is 4.0: pruned
    "t4": [3.9, 3.0, 2.0, 1.9, 1.8, 1.7, 1.6, 1.5, 1.4],  # best at rungs 1 and 3: goes on
    "t5": [4.2],  # top 2 of 6 are 3.9, 4.0: pruned
    "t6": [4.0, 3.5, 2.9],  # rung 1: ties the cut 4.0 (top 2 of 7): on; rung 3: top 1 of 4: pruned
}
EXPECTED = {
    "t0": None,
    "t1": (3, "3"),
    "t2": (1, "4"),
    "t3": (1, "4"),
    "t4": None,
    "t5": (1, "4"),
    "t6": (3, "2"),
}


def decide(overrides: list[str], recorded: dict[str, list[float]], sweep: Path) -> dict:
    """Each recorded trial, one after another, through the Pruning callback of a 9-epoch run:
    its TrialStopped (pruned) or None (trained to the end)."""
    cfg = compose_cfg([*overrides, "epochs=9"], sweep / "trial")
    decisions = {}
    for name, values in recorded.items():
        callback = Pruning(cfg.prune.pruner, "train/mean_loss", str(sweep), name, "s", [])
        # The three things the callback reads of Lightning's Trainer, set as a fit would.
        trainer = SimpleNamespace(is_global_zero=True, max_epochs=9, callback_metrics={})
        callback.on_fit_start(trainer, None)
        decisions[name] = None
        for epoch in range(9):
            trainer.current_epoch = epoch
            try:
                callback.on_train_epoch_start(trainer, None)
            except TrialStopped as stop:
                decisions[name] = stop
                callback.on_exception(trainer, None, stop)
                break
            # A pruned trial's values end at its rung: an epoch more would be an IndexError.
            trainer.callback_metrics = {"train/mean_loss": torch.tensor(values[epoch])}
            callback.on_train_epoch_end(trainer, None)
        else:
            callback.on_fit_end(trainer, None)
    return decisions


def test_asha_decisions_match_the_algorithm_on_recorded_values(tmp_path):
    decisions = decide(ASHA, RECORDED, tmp_path)
    for name, expected in EXPECTED.items():
        stop = decisions[name]
        if expected is None:
            assert stop is None, (name, stop)
            continue
        rung, cut = expected
        assert stop is not None and stop.status == "pruned", (name, decisions[name])
        assert stop.details["rung_epochs"] == rung and stop.details["epoch"] == rung - 1
        assert f"after {rung} epoch" in stop.details["reason"]
        assert f"missed the cut {cut} " in stop.details["reason"], stop.details["reason"]
    # The store says the same: pruned and completed trials, their rung records kept.
    (trials,) = studies(tmp_path).values()
    states = {t.user_attrs["trial"]: t.state.name for t in trials}
    assert states == {n: "PRUNED" if EXPECTED[n] else "COMPLETE" for n in RECORDED}
    t4 = next(t for t in trials if t.user_attrs["trial"] == "t4")
    assert {"completed_rung_0", "completed_rung_1"} <= set(t4.system_attrs)


def test_the_median_pruner_stops_a_trial_below_the_median_of_the_finished_ones(tmp_path):
    full = [3.0] * 9
    recorded = {"a": full, "b": [2.0] * 9, "c": [4.0] * 9, "worse": [3.5, 3.4], "better": full}
    # From the rung after 2 epochs, once 3 trials have finished: median of 2, 3, 4 is 3.
    decisions = decide(["prune=median", "prune.min_epochs=2"], recorded, tmp_path)
    assert [n for n, stop in decisions.items() if stop] == ["worse"]
    assert decisions["worse"].details["rung_epochs"] == 2
    assert (
        "missed the cut 3 (the median of 3 finished trials)" in decisions["worse"].details["reason"]
    )


def test_hyperband_decides_with_the_same_rungs(tmp_path):
    # Brackets differ from ASHA's decisions: every curve runs the 9 epochs, flat after its end.
    curves = {name: values + values[-1:] * (9 - len(values)) for name, values in RECORDED.items()}
    decisions = decide(["prune=hyperband"], curves, tmp_path)
    assert decisions["t0"] is None  # the first trial of its bracket always goes on
    pruned = {n: stop.details for n, stop in decisions.items() if stop}
    assert pruned and all(d["rung_epochs"] in (1, 3) for d in pruned.values())
    assert all("missed the cut" in d["reason"] for d in pruned.values())
    (trials,) = studies(tmp_path).values()
    assert {t.user_attrs["trial"] for t in trials if t.state.name == "PRUNED"} == set(pruned)


def test_a_process_killed_holding_the_store_lock_leaves_the_store_usable(tmp_path):
    # The kill Optuna's own lock files do not survive: the holder dies inside a write, and
    # every other trial waits out a 30 s grace period before it may write again.
    holder = (
        "import os, signal, sys; from optsweep.pruning import open_storage; "
        "storage = open_storage(sys.argv[1]); storage._backend._lock.acquire(); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    killed = subprocess.run([sys.executable, "-c", holder, str(tmp_path)], timeout=60)
    assert killed.returncode == -signal.SIGKILL
    writer = (
        "import sys, optuna; from optsweep.pruning import open_storage; "
        "study = optuna.create_study(study_name='s', storage=open_storage(sys.argv[1])); "
        "trial = study.ask(); trial.report(1.0, 1); study.tell(trial, 1.0)"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", writer, str(tmp_path)], timeout=60, check=True)
    assert time.monotonic() - started < 20, "the next writer waited for a dead holder's lock"
    (trials,) = studies(tmp_path).values()
    assert [t.state.name for t in trials] == ["COMPLETE"]


@pytest.mark.slow
def test_a_pruned_sweep_under_the_basic_launcher_survives_a_kill_and_a_rerun(tmp_path):
    sweep = tmp_path / "sweep"
    # lr=1e-2 trains first (the shuffled order keeps it first) and the whole sweep is killed at
    # the start of its third epoch, after it passed the rung after 1 epoch.
    kill = ["+callbacks.killer._target_=killer.KillAtEpoch", "+callbacks.killer.epoch=2"]
    kill += ["+callbacks.killer.lr=0.01"]
    command = [*PRUNED_SWEEP, "hydra/launcher=basic", "lr=1e-2,1e-6,1e-7", *kill]
    command += [f"hydra.sweep.dir={sweep}"]
    first = run_cli(command, tmp_path, check=False)
    assert first.returncode == -signal.SIGKILL
    (killed,) = by_lr(sweep).values()
    assert killed["status"] == "running" and killed["epochs_completed"] == 2

    second = run_cli(command, tmp_path)
    # The trials start in prune.order=shuffled, not as typed (launch_order).
    launched = re.findall(r"#\d+ : (?:.* )?lr=(\S+)", second.stdout + second.stderr)
    assert launched == ["0.01", "1e-07", "1e-06"], launched
    after = by_lr(sweep)
    best = after[1e-2]
    # The best trial survived, continued from its checkpoint in the same Optuna trial, with the
    # rung it had passed before the kill kept.
    assert best["status"] == "completed" and best["epochs_completed"] == 4
    assert best["resumed_at_epochs"] == [2]
    for lr in (1e-6, 1e-7):
        assert after[lr]["status"] == "pruned" and after[lr]["epochs_completed"] == 1
        assert after[lr]["stopped"]["rung_epochs"] == 1
        assert "missed the cut" in after[lr]["stopped"]["reason"]
        assert (Path(after[lr]["checkpoints"]["last"])).is_file()  # the rung's, kept
    (trials,) = studies(sweep).values()
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "PRUNED", "PRUNED"]
    (survivor,) = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(survivor.intermediate_values) == [1, 2, 3]
    assert {"completed_rung_0", "completed_rung_1"} <= set(survivor.system_attrs)
    # The console counts the pruned trials; the report lists them, and where they stopped.
    assert "Not ranked: 2 pruned (their reasons are in report.md)." in second.stdout
    report = (sweep / "report.md").read_text()
    assert "Pruned sweep (prune=asha): 2 trial(s) stopped at a rung" in report
    assert report.count("| pruned | rung after 1 epoch | at the rung after 1 epoch,") == 2

    # A third run trains nothing: every trial has finished, pruned ones included.
    before = {name: (sweep / name / "result.json").read_bytes() for name in results(sweep)}
    third = run_cli(command, tmp_path)
    assert third.stdout.count("already pruned, skipped") == 2
    assert third.stdout.count("already completed, skipped") == 1
    assert {n: (sweep / n / "result.json").read_bytes() for n in before} == before
    assert len(next(iter(studies(sweep).values()))) == 3


@pytest.mark.slow
def test_a_pruned_trial_frees_its_local_slot_and_a_killed_sweep_keeps_its_decisions(tmp_path, go):
    sweep = tmp_path / "sweep"
    # Two slots. lr=1e-2 holds one: it waits at the start of its epoch 2, after the rung after
    # 1 epoch, until the test creates `go`. The other slot must serve the rest meanwhile: the
    # trials queued behind it are pruned at that rung and each frees the slot for the next.
    pause = ["+callbacks.pause._target_=killer.PauseAtEpoch", "+callbacks.pause.epoch=2"]
    pause += [f"+callbacks.pause.until={go}", "+callbacks.pause.lr=0.01"]
    command = [*PRUNED_SWEEP, "hydra/launcher=local", "hydra.launcher.n_jobs=2"]
    command += ["lr=1e-2,1e-6,1e-7,1e-8", "prune.order=typed", *pause, f"hydra.sweep.dir={sweep}"]
    proc = start_cli(command, tmp_path, tmp_path / "first.txt")  # its own session: pgid = pid
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        trials = by_lr(sweep)
        if all(trials.get(lr, {}).get("status") == "pruned" for lr in (1e-7, 1e-8)):
            break
        assert proc.poll() is None, (tmp_path / "first.txt").read_text()[-3000:]
        time.sleep(0.2)
    else:
        pytest.fail("the queued trials never ran while lr=1e-2 held its slot")
    assert trials[1e-2]["status"] == "running" and trials[1e-2]["epochs_completed"] == 2
    # A kill of the launcher while lr=1e-2 still waits. Its trial gets SIGTERM (launcher.py),
    # which Lightning acts on at its next batch: once the pause is over, it stops at once.
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    decided = {
        name: (sweep / name / "result.json").read_bytes()
        for name, r in results(sweep).items()
        if r["status"] in ("pruned", "completed")
    }
    go.touch()
    pid = trials[1e-2]["placement"]["pid"]
    while Path(f"/proc/{pid}").exists():  # it holds the trial's lock until it exits
        assert time.monotonic() < deadline, "lr=1e-2 went on after its launcher was killed"
        time.sleep(0.2)

    second = run_cli(command, tmp_path)
    after = by_lr(sweep)
    assert after[1e-2]["status"] == "completed" and after[1e-2]["epochs_completed"] == 4
    assert after[1e-2]["resumed_at_epochs"] == [2]
    assert all(after[lr]["status"] == "pruned" for lr in (1e-7, 1e-8))
    assert after[1e-6]["status"] in ("pruned", "completed")  # it raced lr=1e-2 to the rung
    # Decisions made before the kill stand: those trials were skipped, not trained again.
    assert {n: (sweep / n / "result.json").read_bytes() for n in decided} == decided
    assert second.stdout.count("already pruned, skipped") >= 2
    trials = next(iter(studies(sweep).values()))
    assert len(trials) == 4  # the resumed trial went on in its own Optuna trial


@pytest.mark.slow
def test_pruning_under_submitit_local(tmp_path, go):
    sweep = tmp_path / "sweep"
    # submitit runs both jobs at once: lr=1e-7 waits at its first epoch until lr=1e-2 has
    # reported the rung, so the decision is known (the first at a rung always goes on).
    pause = ["+callbacks.pause._target_=killer.PauseAtEpoch", "+callbacks.pause.epoch=0"]
    pause += [f"+callbacks.pause.until={go}", "+callbacks.pause.lr=1e-7"]
    command = [*PRUNED_SWEEP, "hydra/launcher=submitit_local", "lr=1e-2,1e-7", *pause]
    proc = start_cli([*command, f"hydra.sweep.dir={sweep}"], tmp_path, tmp_path / "out.txt")
    deadline = time.monotonic() + 300
    while by_lr(sweep).get(1e-2, {}).get("epochs_completed", 0) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    go.touch()
    assert proc.wait(timeout=300) == 0, (tmp_path / "out.txt").read_text()[-3000:]
    trials = by_lr(sweep)
    assert trials[1e-2]["status"] == "completed"
    assert trials[1e-7]["status"] == "pruned" and trials[1e-7]["stopped"]["rung_epochs"] == 1
    assert (sweep / STORE_FILE).is_file()


def test_schedules_are_pruned_apart_and_the_report_says_so(tmp_path):
    sweep = tmp_path / "sweep"
    # The same LR with and without a 1-epoch warmup: at the rung after 1 epoch the warmed-up
    # trial is behind (it trained at a lower LR), and would be pruned in one comparison.
    proc = run_cli(
        [*PRUNED_SWEEP, "hydra/launcher=basic", "lr=1e-2", "warmup_epochs=0,1"]
        + [f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    assert "prune: this sweep varies the LR schedule (warmup_epochs)" in proc.stderr + proc.stdout
    trials = {r["choices"]["warmup_epochs"]: r for r in results(sweep).values()}
    first_epoch = {w: r["history"][0]["train/mean_loss"] for w, r in trials.items()}
    assert first_epoch[1] > first_epoch[0], "the premise: the warmup trial is behind at the rung"
    assert [trials[w]["status"] for w in (0, 1)] == ["completed", "completed"]
    assert len(studies(sweep)) == 2  # one Optuna study per schedule
    report = (sweep / "report.md").read_text()
    assert "pruning compared each trial only with trials on the same schedule" in report
    assert not any("prune" in name for name in results(sweep))  # prune does not name trials
