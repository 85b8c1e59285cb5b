"""mode=lr_find: Lightning's range test driven through our partial optimizer configs; the curve
lands in the run dir as CSV and PNG, the suggestion is printed, and training state is untouched."""

import csv
import json
import math
import re

import pytest

from helpers import TINY_OCR, compose_cfg, run_cli
from optsweep.lr_find import find_lr
from optsweep.train import prepare

# 640 lines in batches of 32: 20 steps an epoch, so the 30 steps of the test cross an epoch.
LR_FIND = [*TINY_OCR, "data.train_size=640", "mode=lr_find", "lr_find.steps=30"]


def read_curve(run_dir) -> list[tuple[float, float]]:
    with open(run_dir / "lr_find.csv") as f:
        return [(float(r["lr"]), float(r["smoothed_loss"])) for r in csv.DictReader(f)]


def test_the_cli_prints_the_suggestion_and_saves_the_curve(tmp_path):
    proc = run_cli([*LR_FIND, "lr_find.early_stop_threshold=null"], tmp_path)
    (run_dir,) = [p.parent for p in tmp_path.glob("outputs/runs/*/*/lr_find.json")]
    result = json.loads((run_dir / "lr_find.json").read_text())
    printed = re.search(r"suggested lr: (\S+),", proc.stdout)
    assert printed, proc.stdout[-2000:]
    assert float(printed.group(1)) == pytest.approx(result["suggested_lr"], rel=1e-2)

    curve = read_curve(run_dir)
    assert len(curve) == 30 == result["steps"]
    lrs = [lr for lr, _ in curve]
    # Lightning's exponential ramp: min_lr * (max_lr / min_lr) ** (t / steps), t = 1..steps,
    # ending at max_lr; its first row holds min_lr, the LR before the ramp's first step.
    ramp = [1e-7 * (1.0 / 1e-7) ** (t / 30) for t in range(1, 31)]
    assert lrs[0] == pytest.approx(1e-7)
    assert lrs[1:] == pytest.approx(ramp[1:], rel=1e-6)
    assert lrs[0] < result["suggested_lr"] < lrs[-1]
    assert (run_dir / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # No training artefacts: no checkpoints, and the finder's temporary file is gone.
    assert not list(run_dir.rglob("*.ckpt"))


@pytest.mark.parametrize("optimizer", ["sgd", "madgrad", "adam_to_sgd"])
def test_it_runs_with_other_partial_optimizer_configs(tmp_path, optimizer):
    cfg = compose_cfg([*LR_FIND, f"optimizer={optimizer}", "warmup_steps=5"], tmp_path)
    module, datamodule, _ = prepare(cfg)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    result = find_lr(cfg, module, datamodule)
    curve = read_curve(tmp_path)
    assert 13 <= len(curve) <= 30  # divergence may stop it early, not before a suggestion
    assert all(math.isfinite(loss) for _, loss in curve[:13])
    assert result["suggested_lr"] is not None
    assert module.warmup.steps == 0  # a warmup factor would distort the ramp
    # The finder restores the weights it started from.
    after = module.state_dict()
    assert all((before[k] == after[k]).all() for k in before)


def test_a_test_too_short_for_a_suggestion_says_so(tmp_path):
    proc = run_cli([*TINY_OCR, "mode=lr_find", "lr_find.steps=8"], tmp_path)
    assert "no suggestion: the test stopped after 8 steps" in proc.stdout
