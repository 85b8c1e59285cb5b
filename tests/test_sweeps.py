"""Sweeps: trials side by side with one GPU each (hydra/launcher=local), a killed sweep that
a re-run finishes without re-training what was done, and bad trials that do not end it.
Real subprocesses, real SIGKILLs; the GPUs are ids only (no GPU here), which is what the
launcher hands out."""

import json
import os
import signal
import time
from itertools import combinations

import pytest

from helpers import (
    TINY_OCR,
    console_leaderboard,
    console_not_ranked,
    results,
    run_cli,
    start_cli,
    write_image_folder,
)
from optsweep.sweep.launcher import slots


def test_parallel_trials_get_one_gpu_each_and_share_the_cpu(tmp_path):
    # Four repeats (seeds) of one setting, two at a time on "GPUs" 0 and 1. Each trial waits
    # at its start until two have started, so the first two surely overlap.
    sweep = tmp_path / "sweep"
    launcher = ["hydra/launcher=local", "hydra.launcher.n_jobs=2", "hydra.launcher.gpus=[0,1]"]
    rendezvous = ["+callbacks.meet._target_=killer.Rendezvous", "+callbacks.meet.parties=2"]
    rendezvous += [f"+callbacks.meet.dir={tmp_path / 'started'}"]
    proc = run_cli(
        ["-m", *launcher, "seed=0,1,2,3", *TINY_OCR, "epochs=2", "test=false", *rendezvous]
        + [f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    trials = results(sweep)
    assert len(trials) == 4 and all(r["status"] == "completed" for r in trials.values())
    # Repeats: one dir each, one group for all, and different training from each seed.
    assert sorted(r["choices"]["seed"] for r in trials.values()) == [0, 1, 2, 3]
    assert len({r["group"] for r in trials.values()}) == 1
    assert "seed=" not in next(iter(trials.values()))["group"]
    assert len({r["final"]["train/mean_loss"] for r in trials.values()}) == 4
    placements = [r["placement"] for r in trials.values()]
    assert all(p["cuda_visible_devices"] in ("0", "1") for p in placements)
    assert all(p["cpu_threads"] == max(1, len(os.sched_getaffinity(0)) // 2) for p in placements)
    overlapping = [
        (a, b)
        for a, b in combinations(placements, 2)
        if a["started"] < b["ended"] and b["started"] < a["ended"]
    ]
    assert overlapping, "two trials at a time were expected to overlap"
    assert all(a["cuda_visible_devices"] != b["cuda_visible_devices"] for a, b in overlapping)
    # The console ranks the setting once, over its four seeds.
    (row,) = console_leaderboard(proc.stdout)
    assert row[2].endswith("(n=4)")


KILL_LR_2E3_AT_EPOCH_2 = [
    "+callbacks.killer._target_=killer.KillAtEpoch",
    "+callbacks.killer.epoch=2",
    "+callbacks.killer.lr=2e-3",
]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_a_killed_sweep_is_finished_by_running_it_again(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    command = ["-m", f"hydra/launcher={launcher}", "lr=1e-3,2e-3,3e-3", *TINY_OCR, "epochs=3"]
    command += ["test=false", *KILL_LR_2E3_AT_EPOCH_2, f"hydra.sweep.dir={sweep}"]
    first = run_cli(command, tmp_path, check=False)
    before = results(sweep)
    (killed,) = [name for name, result in before.items() if result["choices"]["lr"] == 2e-3]
    assert before[killed]["epochs_completed"] == 2
    if launcher == "basic":  # the SIGKILL took the whole sweep down: lr=3e-3 never started
        assert first.returncode == -9 and len(before) == 2
        assert before[killed]["status"] == "running"
    else:  # only the trial's own process died, and the launcher recorded it
        assert first.returncode == 0 and len(before) == 3
        assert before[killed]["status"] == "failed"
        assert before[killed]["error"].startswith("process exited with -9")
    done = {name: (sweep / name / "result.json").read_bytes() for name in before if name != killed}
    last_ckpt = {
        name: (sweep / name / "checkpoints" / "last.ckpt").stat().st_mtime_ns for name in done
    }

    second = run_cli(command, tmp_path)
    after = results(sweep)
    assert len(after) == 3 and all(r["status"] == "completed" for r in after.values())
    for name, raw in done.items():  # finished trials: skipped, not re-trained
        assert (sweep / name / "result.json").read_bytes() == raw
        assert (sweep / name / "checkpoints" / "last.ckpt").stat().st_mtime_ns == last_ckpt[name]
    assert second.stdout.count("already completed, skipped") == len(done)
    # The killed trial continued from its epoch-2 checkpoint, once.
    assert after[killed]["resumed_at_epochs"] == [2]
    assert [h["epoch"] for h in after[killed]["history"]] == [0, 1, 2]
    new = [name for name in after if name not in before]
    assert all(after[name]["resumed_at_epochs"] == [] for name in new)


def test_bad_trials_do_not_sink_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    images = write_image_folder(tmp_path / "images")
    raise_at_lr_001 = ["+callbacks.boom._target_=killer.RaiseAtEpoch", "+callbacks.boom.epoch=1"]
    raise_at_lr_001 += ["+callbacks.boom.lr=0.01"]
    proc = run_cli(
        [
            "-m",
            "lr=0.05,0.01,-1,1e6,1e30",
            "optimizer=sgd",
            "data=image_folder",
            f"data.root={images}",
        ]
        + ["model=simple_cnn", "batch_size=8", "trainer=cpu", "epochs=3", "test=false"]
        + [*raise_at_lr_001, f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    by_lr = {r["choices"].get("lr", "-1"): r for r in results(sweep).values()}
    assert by_lr[0.05]["status"] == "completed"
    assert by_lr[0.01]["status"] == "failed"
    assert by_lr[0.01]["error"] == "second line of the error"
    assert by_lr["-1"]["status"] == "failed"
    assert "lr must be a positive number" in by_lr["-1"]["error"]
    # Too large an LR: stuck at chance (2 classes) for stall.patience=3 epochs, or NaN at once.
    assert by_lr[1e6]["status"] == "stalled" and by_lr[1e6]["epochs_completed"] == 3
    assert "of chance (0.5000) for 3 epochs" in by_lr[1e6]["stopped"]["reason"]
    assert by_lr[1e30]["status"] == "diverged" and by_lr[1e30]["epochs_completed"] == 0
    assert by_lr[1e30]["stopped"]["reason"] == "loss is nan" and by_lr[1e30]["stopped"]["step"] >= 0
    assert [row[1] for row in console_leaderboard(proc.stdout)] == ["lr=0.05"]
    assert console_not_ranked(proc.stdout) == {"diverged": 1, "failed": 2, "stalled": 1}


@pytest.mark.slow
def test_a_preempted_submitit_job_is_requeued_and_continues_from_last_ckpt(tmp_path):
    # hydra/launcher=slurm's code path with submitit's local executor: SIGUSR2 is what
    # submitit's job gets on preemption; it requeues the job, which re-runs the same trial.
    sweep = tmp_path / "sweep"
    output = tmp_path / "out.txt"
    command = ["-m", "hydra/launcher=submitit_local", *TINY_OCR, "epochs=30", "test=false"]
    proc = start_cli([*command, f"hydra.sweep.dir={sweep}"], tmp_path, output)
    deadline, signalled = time.monotonic() + 300, False
    while time.monotonic() < deadline and not signalled:
        running = next(iter(results(sweep).values()), {})
        if running.get("epochs_completed", 0) >= 2:
            os.kill(running["placement"]["pid"], signal.SIGUSR2)
            signalled = True
        time.sleep(0.1)
    assert signalled, "the trial never reached epoch 2"
    assert proc.wait(timeout=600) == 0, output.read_text()[-3000:]
    (result,) = results(sweep).values()
    assert result["status"] == "completed" and result["epochs_completed"] == 30
    # It went on from its newest last.ckpt (result.json is written just before last.ckpt,
    # so that may be the epoch before the one the signal came in), not from scratch.
    assert len(result["resumed_at_epochs"]) == 1 and result["resumed_at_epochs"][0] >= 1
    assert [h["epoch"] for h in result["history"]] == list(range(30))
    logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*.err"))
    assert "this job is preempted" in logs


def test_the_slurm_launcher_asks_for_one_gpu_per_trial(tmp_path):
    proc = run_cli(["--cfg", "hydra", "hydra/launcher=slurm"], tmp_path)
    assert "SlurmLauncher" in proc.stdout
    assert "gpus_per_node: 1" in proc.stdout and "tasks_per_node: 1" in proc.stdout
    assert "max_num_timeout: 5" in proc.stdout


@pytest.mark.parametrize("start", ["fork", "fresh"])
def test_local_trials_land_where_the_launcher_expects_them(tmp_path, start):
    # A sweep dir with a comma in it, and Hydra's own numbered trial dirs: the children must
    # use the dirs the launcher resolved, not resolve their own (each child is trial 0).
    sweep = tmp_path / "a,b"
    command = ["-m", "hydra/launcher=local", f"hydra.launcher.start={start}", "lr=1e-3,2e-3"]
    command += [*TINY_OCR, "epochs=1", "test=false"]
    command += ["+callbacks.process._target_=killer.ProcessProbe"]
    command += [f"hydra.sweep.dir='{sweep}'", "hydra.sweep.subdir=${hydra.job.num}"]
    launcher = start_cli(command, tmp_path, tmp_path / "out.txt", fresh=True)
    assert launcher.wait(timeout=600) == 0, (tmp_path / "out.txt").read_text()[-3000:]
    trials = results(sweep)
    assert sorted(trials) == ["0", "1"]
    assert sorted(r["choices"]["lr"] for r in trials.values()) == [1e-3, 2e-3]
    assert all((sweep / name / "launcher.log").is_file() for name in trials)
    processes = [json.loads((sweep / name / "process.json").read_text()) for name in trials]
    if start == "fork":  # both forked by one server, itself a fork of the launcher: no new
        # interpreter, so each trial still has the launcher's command line
        assert len({p["parent"] for p in processes}) == 1
        assert all(p["parent"] != launcher.pid for p in processes)
        assert all(p["grandparent"] == launcher.pid for p in processes)
        assert all(p["cmdline"] == launcher.args for p in processes)
    else:  # each a new interpreter, started by the launcher
        assert all(p["parent"] == launcher.pid for p in processes)
        assert all(p["cmdline"][1:4] == ["-m", "optsweep.train", "-m"] for p in processes)


@pytest.mark.parametrize(
    ("gpus", "per_gpu", "n_jobs", "expected"),
    [
        (["0", "1"], 1, None, ["0", "1"]),  # one trial per GPU
        (["0", "1"], 2, None, ["0", "1", "0", "1"]),  # k per GPU, every GPU used first
        (["0", "1", "2"], 1, 2, ["0", "1"]),  # n_jobs caps it
        ([], 1, None, [None, None]),  # no GPU: 2 trials on the CPU
        ([], 1, 3, [None, None, None]),
    ],
)
def test_slots_spread_trials_over_gpus(gpus, per_gpu, n_jobs, expected):
    assert slots(gpus, per_gpu, n_jobs) == expected


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.launcher.trials_per_gpu=0", "hydra.launcher.trials_per_gpu must be a positive"),
        ("hydra.launcher.n_jobs=0", "hydra.launcher.n_jobs must be a positive integer"),
        ("hydra.launcher.start=spawn", "hydra.launcher.start must be one of fork, fresh"),
    ],
)
def test_a_launcher_count_below_one_is_one_line_and_writes_nothing(tmp_path, override, message):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        ["-m", "hydra/launcher=local", override, "lr=1e-3,2e-3", *TINY_OCR, "epochs=1"]
        + [f"hydra.sweep.dir={sweep}"],
        tmp_path,
        check=False,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in proc.stdout
    assert list(tmp_path.iterdir()) == []  # no sweep dir, no outputs
