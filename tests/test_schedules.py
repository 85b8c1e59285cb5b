"""The LR the optimizer actually got, step by step in a real fit (read back from the `train/lr`
column, logged by the step that used it), equals the schedule's closed form. Each scheduler's
formula is checked on its plain run (the `plain_lrs` fixture: 5 epochs of 3 steps, lr 0.01,
min_lr 0.002, the YAML's own settings), which the warmup and Adam-to-SGD tests reuse."""

import math

import pytest

from helpers import TINY_OCR, compose_cfg, logged_lrs
from optsweep.train import fit
from schedule_runs import LR, MIN_LR, PLAIN_EPOCHS, SCHEDULERS, STEPS_PER_EPOCH, run_schedule

T = PLAIN_EPOCHS * STEPS_PER_EPOCH
DECAY_START = T - 0.2 * T  # wsd: the last decay_fraction (0.2) of the steps
PER_STEP = {
    "cosine": lambda t: MIN_LR + (LR - MIN_LR) * (1 + math.cos(math.pi * t / T)) / 2,
    "linear": lambda t: LR * (1 - t / T),
    "polynomial": lambda t: LR * (1 - t / T) ** 2,
    # Constant, then linear to MIN_LR, reached after the last step.
    "wsd": lambda t: (
        LR
        if t < DECAY_START
        else MIN_LR + (LR - MIN_LR) * (1 - (t - DECAY_START) / (T - DECAY_START))
    ),
}


@pytest.mark.parametrize("scheduler", PER_STEP)
def test_per_step_schedules_follow_their_formula(plain_lrs, scheduler):
    expected = [PER_STEP[scheduler](t) for t in range(T)]
    assert plain_lrs(scheduler) == pytest.approx(expected, rel=1e-5, abs=1e-9)


PER_EPOCH = {
    "step": lambda e: LR * 0.1 ** (e // 3),
    "exponential": lambda e: LR * 0.8**e,
    "multistep": lambda e: LR * 0.1 ** ((e >= 4) + (e >= 6)),
    # SGDR with cycles of 2, 4, 8, ... epochs (T_0=2, T_mult=2).
    "cosine_restarts": lambda e: sgdr(e),
}


def sgdr(epoch: int, cycle: int = 2, mult: int = 2) -> float:
    """Each cycle runs from LR down toward MIN_LR, and the next is `mult` times longer."""
    while epoch >= cycle:
        epoch, cycle = epoch - cycle, cycle * mult
    return MIN_LR + (LR - MIN_LR) * (1 + math.cos(math.pi * epoch / cycle)) / 2


@pytest.mark.parametrize("scheduler", PER_EPOCH)
def test_per_epoch_schedules_change_only_between_epochs(plain_lrs, scheduler):
    expected = [PER_EPOCH[scheduler](step // STEPS_PER_EPOCH) for step in range(T)]
    assert plain_lrs(scheduler) == pytest.approx(expected, rel=1e-5)


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


def test_plateau_halves_after_patience_epochs_without_improvement(plain_lrs):
    # The first epoch sets the best value; after `patience` (2) more epochs without
    # improvement, the third bad epoch halves the LR for the epoch after it.
    lrs = plain_lrs("plateau")
    assert lrs == pytest.approx([LR] * 4 * STEPS_PER_EPOCH + [LR / 2] * STEPS_PER_EPOCH, rel=1e-5)


def test_plateau_stops_at_min_lr(tmp_path):
    lrs = run_schedule(tmp_path, "plateau", 5, "min_lr=0.007")
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


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_warmup_composes_with_every_scheduler(tmp_path, plain_lrs, scheduler):
    # 4 warmup steps cross the first epoch boundary, where the per-epoch schedulers step.
    # 5 epochs: plateau reduces in the last one.
    warmed = run_schedule(tmp_path, scheduler, PLAIN_EPOCHS, f"min_lr={MIN_LR}", "warmup_steps=4")
    expected = [lr * warmup_factor(t, 4) for t, lr in enumerate(plain_lrs(scheduler))]
    assert warmed == pytest.approx(expected, rel=1e-5)
