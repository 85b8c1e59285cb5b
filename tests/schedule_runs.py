"""Fits that log the LR of every optimizer step (`train/lr`), on the tiny OCR task, and one plain
run per scheduler that several test files compare against (the `plain_lrs` fixture)."""

from pathlib import Path

from helpers import TINY_OCR, compose_cfg, logged_lrs, options
from optsweep.train import fit

LR = 0.01
MIN_LR = 0.002
STEPS_PER_EPOCH = 3  # 96 samples, batch 32
PLAIN_EPOCHS = 5

# Plateau watches word accuracy, which stays 0 on this tiny task: a plateau by construction,
# whose reductions depend neither on the loss (which warmup changes) nor on the optimizer.
SCHEDULERS = {
    name: ["scheduler.monitor=val/word_acc"] if name == "plateau" else []
    for name in options("scheduler")
}


def run_schedule(run_dir: Path, scheduler: str, epochs: int, *extra: str) -> list[float]:
    overrides = [*TINY_OCR, f"lr={LR}", f"epochs={epochs}", f"scheduler={scheduler}", "test=false"]
    fit(compose_cfg([*overrides, *SCHEDULERS[scheduler], *extra], run_dir))
    lrs = logged_lrs(run_dir)
    assert len(lrs) == epochs * STEPS_PER_EPOCH
    return lrs


def plain_run(run_dir: Path, scheduler: str) -> list[float]:
    """Adam (the default) at LR for PLAIN_EPOCHS epochs, floor MIN_LR, no warmup."""
    return run_schedule(run_dir, scheduler, PLAIN_EPOCHS, f"min_lr={MIN_LR}")
