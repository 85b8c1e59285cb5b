"""mode=lr_find: Lightning's range test driven through our partial optimizer configs; the curve
lands in the run dir as CSV and PNG, the suggestion is printed, and training state is untouched."""

import csv
import json
import math
import re

import pytest

from helpers import TINY_OCR, compose_cfg, run_cli
from optsweep.lr_find import find_lr, lowest_loss_lr, steepest_descent
from optsweep.train import prepare

# 640 lines in batches of 32: 20 steps an epoch, so the 30 steps of the test cross an epoch.
LR_FIND = [*TINY_OCR, "data.train_size=640", "mode=lr_find", "lr_find.steps=30"]


def read_curve(run_dir) -> list[tuple[float, float]]:
    with open(run_dir / "lr_find.csv") as f:
        return [(float(r["lr"]), float(r["smoothed_loss"])) for r in csv.DictReader(f)]


def assert_ramp(lrs: list[float]) -> None:
    """Lightning's exponential ramp, min_lr * (max_lr / min_lr) ** (t / steps) for t = 1..steps,
    ending at max_lr; its first row holds min_lr, the LR before the ramp's first step. A run
    stopped early by divergence holds a prefix of it."""
    ramp = [1e-7 * (1.0 / 1e-7) ** (t / 30) for t in range(1, 31)]
    assert lrs[0] == pytest.approx(1e-7)
    assert lrs[1:] == pytest.approx(ramp[1 : len(lrs)], rel=1e-6)


def test_the_cli_prints_the_suggestion_and_saves_the_curve(tmp_path):
    # Batch 32 against a base of 128 under the linear rule: the lr to type is 4x the LR found.
    scaling = ["lr_scaling=linear", "base_batch_size=128"]
    proc = run_cli([*LR_FIND, *scaling, "lr_find.early_stop_threshold=null"], tmp_path)
    (run_dir,) = [p.parent for p in tmp_path.glob("outputs/runs/*/*/lr_find.json")]
    curve = read_curve(run_dir)
    assert len(curve) == 30 == json.loads((run_dir / "lr_find.json").read_text())["steps"]
    lrs, losses = [lr for lr, _ in curve], [loss for _, loss in curve]
    assert_ramp(lrs)

    # The suggestion and the lowest point, recomputed from the curve as saved (the rules
    # themselves are checked on a known curve below).
    suggested, lowest = steepest_descent(lrs, losses), lowest_loss_lr(lrs, losses)
    assert suggested is not None and lrs[0] < suggested <= lowest <= lrs[-1]
    pattern = r"suggested lr: (\S+) \(type lr=(\S+) with lr_scaling=linear\), .*lowest at (\S+)\)"
    printed = re.search(pattern, proc.stdout)
    assert printed, proc.stdout[-2000:]
    assert [float(v) for v in printed.groups()] == pytest.approx(
        [suggested, 4 * suggested, lowest], rel=1e-2
    )
    assert (run_dir / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # No training artefacts: no checkpoints, and the finder's temporary file is gone.
    assert not list(run_dir.rglob("*.ckpt"))


OPTIMIZERS = {
    "sgd": [],
    "madgrad": [],
    # The test crosses an epoch boundary, where a training run would switch to SGD.
    "adam_to_sgd": ["optimizer.switch_epoch=1", "epochs=2"],
}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_it_runs_with_other_partial_optimizer_configs(tmp_path, optimizer):
    overrides = [*LR_FIND, f"optimizer={optimizer}", *OPTIMIZERS[optimizer], "warmup_steps=5"]
    cfg = compose_cfg(overrides, tmp_path)
    module, datamodule, _ = prepare(cfg)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    result = find_lr(cfg, module, datamodule)
    curve = read_curve(tmp_path)
    assert 13 <= len(curve) <= 30  # divergence may stop it early, not before a suggestion
    assert all(math.isfinite(loss) for _, loss in curve[:13])
    assert_ramp([lr for lr, _ in curve])  # no warmup factor, no switch rescaled it
    assert result["suggested_lr"] is not None
    assert module.warmup.steps == 0  # a warmup factor would distort the ramp
    # The finder restores the weights it started from.
    after = module.state_dict()
    assert all((before[k] == after[k]).all() for k in before)


def test_a_test_too_short_for_a_suggestion_says_so(tmp_path):
    proc = run_cli([*TINY_OCR, "mode=lr_find", "lr_find.steps=8"], tmp_path)
    assert "no suggestion: the test stopped after 8 steps" in proc.stdout


def test_the_suggestion_is_the_steepest_fall_per_decade_before_the_minimum():
    lrs = [10 ** (-7 + 7 * t / 70) for t in range(71)]  # 1e-7 .. 1, ten points a decade
    # Flat, then falling fastest at 1e-3, lowest at 1e-1, then blowing up; a bump at 1e-6
    # whose slope per unit of LR (Lightning's rule) is far larger than anything later.
    losses = [5 - math.tanh(2 * (math.log10(lr) + 3)) + (30 * lr if lr > 0.1 else 0) for lr in lrs]
    losses[10:13] = [losses[10], losses[11] - 0.01, losses[12]]
    assert steepest_descent(lrs, losses) == pytest.approx(1e-3)
    assert lowest_loss_lr(lrs, losses) == pytest.approx(0.1)
    # Lightning's smoothed loss starts too low; those first points are not the minimum.
    assert lowest_loss_lr(lrs, [0.0] * 5 + losses[5:]) == pytest.approx(0.1)
    assert steepest_descent(lrs[:12], losses[:12]) is None  # too short
    assert steepest_descent(lrs, [1.0 + t for t in range(71)]) is None  # never falls
