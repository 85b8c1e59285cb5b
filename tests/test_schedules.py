"""The LR the optimizer actually got, step by step in a real fit (read back from the `train/lr`
column, logged by the step that used it), equals the schedule's closed form."""

import math
from pathlib import Path

import pytest

from helpers import TINY_OCR, compose_cfg, logged_lrs
from optsweep.train import CONFIG_DIR, fit

LR = 0.01
STEPS_PER_EPOCH = 3  # 96 samples, batch 32


def run_schedule(tmp_path, scheduler: str, epochs: int, *extra: str) -> list[float]:
    overrides = [*TINY_OCR, f"lr={LR}", f"epochs={epochs}", f"scheduler={scheduler}", "test=false"]
    fit(compose_cfg([*overrides, *extra], tmp_path))
    lrs = logged_lrs(tmp_path)
    assert len(lrs) == epochs * STEPS_PER_EPOCH
    return lrs


T = 2 * STEPS_PER_EPOCH
MIN_LR = 0.002
PER_STEP = {
    "cosine": ([], lambda t: MIN_LR + (LR - MIN_LR) * (1 + math.cos(math.pi * t / T)) / 2),
    "linear": ([], lambda t: LR * (1 - t / T)),
    "polynomial": ([], lambda t: LR * (1 - t / T) ** 2),
    # Constant for the first half, then linear to MIN_LR, reached after the last step.
    "wsd": (
        ["scheduler.scheduler.decay_fraction=0.5"],
        lambda t: LR if t < T / 2 else MIN_LR + (LR - MIN_LR) * (1 - (t - T / 2) / (T / 2)),
    ),
}


@pytest.mark.parametrize("scheduler", PER_STEP)
def test_per_step_schedules_follow_their_formula(tmp_path, scheduler):
    extra, formula = PER_STEP[scheduler]
    lrs = run_schedule(tmp_path, scheduler, 2, f"min_lr={MIN_LR}", *extra)
    expected = [formula(t) for t in range(T)]
    assert lrs == pytest.approx(expected, rel=1e-5, abs=1e-9)


PER_EPOCH = {
    "step": ([], lambda e: LR * 0.1 ** (e // 3)),
    "exponential": ([], lambda e: LR * 0.8**e),
    "multistep": (
        ["scheduler.scheduler.milestones=[1,3]"],
        lambda e: LR * 0.1 ** ((e >= 1) + (e >= 3)),
    ),
    # SGDR with cycles of 1, 2, 4, ... epochs (T_0=1, T_mult=2).
    "cosine_restarts": ([f"min_lr={MIN_LR}", "scheduler.scheduler.T_0=1"], lambda e: sgdr(e)),
}


def sgdr(epoch: int, cycle: int = 1, mult: int = 2) -> float:
    """Each cycle runs from LR down toward MIN_LR, and the next is `mult` times longer."""
    while epoch >= cycle:
        epoch, cycle = epoch - cycle, cycle * mult
    return MIN_LR + (LR - MIN_LR) * (1 + math.cos(math.pi * epoch / cycle)) / 2


@pytest.mark.parametrize("scheduler", PER_EPOCH)
def test_per_epoch_schedules_change_only_between_epochs(tmp_path, scheduler):
    extra, formula = PER_EPOCH[scheduler]
    lrs = run_schedule(tmp_path, scheduler, 4, *extra)
    expected = [formula(step // STEPS_PER_EPOCH) for step in range(4 * STEPS_PER_EPOCH)]
    assert lrs == pytest.approx(expected, rel=1e-5)


def test_onecycle_peaks_at_lr_and_follows_its_two_cosines(tmp_path):
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
    # Cosine from LR/25 up to LR over steps 0..4, then cosine down to LR/25/1e4 at step 19.
    start, floor = LR / 25, LR / 25 / 1e4

    def cosine(a: float, b: float, fraction: float) -> float:
        return b + (a - b) * (1 + math.cos(math.pi * fraction)) / 2

    expected = [cosine(start, LR, t / 4) for t in range(5)]
    expected += [cosine(LR, floor, (t - 4) / 15) for t in range(5, 20)]
    assert lrs == pytest.approx(expected, rel=1e-5)


def test_plateau_halves_after_patience_epochs_without_improvement(tmp_path):
    # Word accuracy stays at 0 on this tiny task: a plateau by construction. The first epoch
    # sets the best value; after `patience` (2) more epochs without improvement, the third
    # bad epoch halves the LR for the epoch after it.
    lrs = run_schedule(tmp_path, "plateau", 5, "scheduler.monitor=val/word_acc")
    assert lrs == pytest.approx([LR] * 4 * STEPS_PER_EPOCH + [LR / 2] * STEPS_PER_EPOCH, rel=1e-5)


def test_plateau_stops_at_min_lr(tmp_path):
    lrs = run_schedule(tmp_path, "plateau", 5, "scheduler.monitor=val/word_acc", "min_lr=0.007")
    assert lrs == pytest.approx([LR] * 4 * STEPS_PER_EPOCH + [0.007] * STEPS_PER_EPOCH, rel=1e-5)


def warmup_factor(t: int, steps: int, start: float = 0.1) -> float:
    return start + (1 - start) * t / steps if t < steps else 1.0


@pytest.mark.parametrize("length", ["warmup_steps=3", "warmup_epochs=1"])
def test_warmup_ramps_linearly_then_hands_over(tmp_path, length):
    lrs = run_schedule(tmp_path, "none", 2, length)
    assert lrs == pytest.approx([LR * warmup_factor(t, 3) for t in range(6)], rel=1e-5)
    assert lrs[:4] == pytest.approx([LR / 10, LR * 0.4, LR * 0.7, LR], rel=1e-5)


def test_warmup_epochs_count_optimizer_steps_of_an_epoch(tmp_path):
    # 3 batches an epoch, accumulated in 2s: 2 optimizer steps an epoch, so 2 warmup steps,
    # also when max_steps cuts the run short (5 steps instead of 6).
    overrides = [*TINY_OCR, f"lr={LR}", "epochs=3", "test=false", "warmup_epochs=1"]
    limits = ["trainer.accumulate_grad_batches=2", "+trainer.max_steps=5"]
    fit(compose_cfg([*overrides, *limits], tmp_path))
    lrs = logged_lrs(tmp_path)
    assert lrs == pytest.approx([LR * warmup_factor(t, 2) for t in range(5)], rel=1e-5)


# Plateau watches word accuracy, which stays 0 here, so its reductions do not depend on the
# loss, which warmup changes.
EVERY_SCHEDULER = {
    name.removesuffix(".yaml"): ["scheduler.monitor=val/word_acc"] if name == "plateau.yaml" else []
    for name in sorted(p.name for p in (Path(CONFIG_DIR) / "scheduler").glob("*.yaml"))
}


@pytest.mark.parametrize("scheduler", EVERY_SCHEDULER)
def test_warmup_composes_with_every_scheduler(tmp_path, scheduler):
    # 4 warmup steps cross the first epoch boundary, where the per-epoch schedulers step.
    # 5 epochs: plateau reduces in the last one.
    extra = EVERY_SCHEDULER[scheduler]
    plain = run_schedule(tmp_path / "plain", scheduler, 5, *extra)
    warmed = run_schedule(tmp_path / "warmed", scheduler, 5, *extra, "warmup_steps=4")
    assert warmed == pytest.approx(
        [lr * warmup_factor(t, 4) for t, lr in enumerate(plain)], rel=1e-5
    )
