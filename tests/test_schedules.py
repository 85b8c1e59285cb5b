"""The LR the optimizer actually got, step by step in a real fit (read back from the logged
`lr-Adam` column), equals the schedule's closed form."""

import csv
import math

import pytest

from helpers import TINY_OCR, compose_cfg
from optsweep.train import fit

LR = 0.01
STEPS_PER_EPOCH = 3  # 96 samples, batch 32


def logged_lrs(run_dir) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("lr-Adam")]
    return [float(r["lr-Adam"]) for r in sorted(rows, key=lambda r: int(r["step"]))]


def run_schedule(tmp_path, scheduler: str, epochs: int, *extra: str) -> list[float]:
    overrides = [*TINY_OCR, f"lr={LR}", f"epochs={epochs}", f"scheduler={scheduler}", "test=false"]
    fit(compose_cfg([*overrides, *extra], tmp_path))
    lrs = logged_lrs(tmp_path)
    assert len(lrs) == epochs * STEPS_PER_EPOCH
    return lrs


T = 2 * STEPS_PER_EPOCH
PER_STEP = {
    "cosine": lambda t: 0.0 + (LR - 0.0) * (1 + math.cos(math.pi * t / T)) / 2,
    "linear": lambda t: LR * (1 - t / T),
    "polynomial": lambda t: LR * (1 - t / T) ** 2,
}


@pytest.mark.parametrize("scheduler", PER_STEP)
def test_per_step_schedules_follow_their_formula(tmp_path, scheduler):
    lrs = run_schedule(tmp_path, scheduler, 2)
    expected = [PER_STEP[scheduler](t) for t in range(T)]
    assert lrs == pytest.approx(expected, rel=1e-5, abs=1e-9)


PER_EPOCH = {
    "step": ([], lambda e: LR * 0.1 ** (e // 3)),
    "exponential": ([], lambda e: LR * 0.8**e),
    "multistep": (
        ["scheduler.scheduler.milestones=[1,3]"],
        lambda e: LR * 0.1 ** ((e >= 1) + (e >= 3)),
    ),
}


@pytest.mark.parametrize("scheduler", PER_EPOCH)
def test_per_epoch_schedules_change_only_between_epochs(tmp_path, scheduler):
    extra, formula = PER_EPOCH[scheduler]
    lrs = run_schedule(tmp_path, scheduler, 4, *extra)
    expected = [formula(step // STEPS_PER_EPOCH) for step in range(4 * STEPS_PER_EPOCH)]
    assert lrs == pytest.approx(expected, rel=1e-5)


def test_onecycle_peaks_at_lr(tmp_path):
    # 10 steps an epoch, 2 epochs: the warm-up (pct_start 0.25) ends exactly on step 4.
    fit(
        compose_cfg(
            [*TINY_OCR, "data.train_size=320", f"lr={LR}", "epochs=2", "scheduler=onecycle"]
            + ["test=false"],
            tmp_path,
        )
    )
    lrs = logged_lrs(tmp_path)
    assert len(lrs) == 20
    assert max(lrs) == pytest.approx(LR, rel=1e-5) and lrs.index(max(lrs)) == 4
    assert lrs[0] == pytest.approx(LR / 25, rel=1e-5)
    assert lrs[-1] < LR / 1000


def test_plateau_halves_after_patience_epochs_without_improvement(tmp_path):
    # Word accuracy stays at 0 on this tiny task: a plateau by construction. The first epoch
    # sets the best value; after `patience` (2) more epochs without improvement, the third
    # bad epoch halves the LR for the epoch after it.
    lrs = run_schedule(tmp_path, "plateau", 5, "scheduler.monitor=val/word_acc")
    per_epoch = lrs[::STEPS_PER_EPOCH]
    assert per_epoch == pytest.approx([LR, LR, LR, LR, LR / 2], rel=1e-5)
