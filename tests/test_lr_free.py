"""LR-free optimizers (prodigy, dadapt_adam): `lr` is a multiplier, 1 unless set; train/lr logs
the step size each step took (d * lr); result.json and the report say which trials are LR-free.

One real sweep, adam beside both of them, 6 steps each with a 2-step warmup."""

import json

import pytest

from helpers import TINY_OCR, compose_cfg, logged_lrs, results, run_cli

LR_FREE = ("prodigy", "dadapt_adam")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("lr_free")
    run_cli(
        ["-m", f"optimizer=adam,{','.join(LR_FREE)}", *TINY_OCR, "batch_size=16", "epochs=1"]
        + ["warmup_steps=2", "test=false", "+callbacks.probe._target_=killer.StepSizeProbe"]
        + [f"hydra.sweep.dir={root}/sweep"],
        root,
    )
    sweep = root / "sweep"
    return sweep, {r["choices"]["optimizer"]: sweep / name for name, r in results(sweep).items()}


@pytest.mark.parametrize("name", LR_FREE)
def test_lr_is_a_multiplier_with_default_1_that_the_command_line_sets(name, tmp_path):
    assert compose_cfg([f"optimizer={name}"], tmp_path).optimizer.lr == 1.0
    assert compose_cfg([f"optimizer={name}", "lr=0.5"], tmp_path).optimizer.lr == 0.5
    scaled = compose_cfg([f"optimizer={name}", "lr_scaling=linear", "batch_size=256"], tmp_path)
    assert scaled.optimizer.lr == 2.0  # the batch-size rule scales the multiplier


def test_a_sweep_gives_each_optimizer_its_own_default_lr_and_records_lr_free(sweep):
    trials = {r["choices"]["optimizer"]: r["choices"] for r in results(sweep[0]).values()}
    assert {name: c["lr"] for name, c in trials.items()} == {
        "adam": 0.001,
        "prodigy": 1.0,
        "dadapt_adam": 1.0,
    }
    assert {name: c["lr_free"] for name, c in trials.items()} == {
        "adam": False,
        "prodigy": True,
        "dadapt_adam": True,
    }


@pytest.mark.parametrize("name", LR_FREE)
def test_train_lr_is_the_step_size_each_step_took(sweep, name):
    run_dir = sweep[1][name]
    # d and lr as the optimizer read them for each step (lr with the warmup's factor).
    steps = json.loads((run_dir / "step_sizes.json").read_text())
    step_sizes = [s["d"] * s["lr"] for s in steps]
    assert len(step_sizes) == 6
    assert logged_lrs(run_dir) == pytest.approx(step_sizes, rel=1e-6)
    assert steps[-1]["d"] > 5 * steps[0]["d"]  # d grows from its tiny start, d0 = 1e-6


def test_the_report_reads_their_lr_as_a_multiplier(sweep):
    report = (sweep[0] / "report.md").read_text()
    assert "LR-free: dadapt_adam, prodigy. Their lr multiplies the step size they estimate" in (
        report
    )
