"""Mistakes a user can make end in one readable line and a non-zero exit, no traceback, and
leave what is already on disk untouched."""

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from helpers import TINY_OCR, run_cli


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A finished run, plus a truncated and a foreign file, as a user's disk would hold."""
    root = tmp_path_factory.mktemp("bad_input")
    run_cli([*TINY_OCR, "epochs=1", "test=false"], root)
    (last,) = root.glob("outputs/runs/*/*/checkpoints/last.ckpt")
    # A second run whose checkpoints were all cut short (a kill during a non-atomic save, a
    # damaged disk): none to fall back on.
    run_cli([*TINY_OCR, "epochs=1", "test=false", "seed=7"], root)
    (cut,) = [p for p in root.glob("outputs/runs/*/*/checkpoints") if p != last.parent]
    for checkpoint in cut.glob("*.ckpt"):
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    data = last.read_bytes()
    (root / "first.ckpt").write_bytes(data)
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (root / "notes.ckpt").write_text("not a checkpoint\n")
    torch.save({"weights": torch.zeros(2)}, root / "weights.pt")
    return root


CASES = {
    "negative lr": (["lr=-1"], "lr must be a positive number"),
    "text lr": (["lr=abc"], "lr must be a positive number"),
    "zero epochs": (["epochs=0"], "epochs must be a positive integer"),
    "missing ckpt": (["ckpt_path=missing.ckpt"], "missing.ckpt does not exist"),
    "truncated ckpt": (["ckpt_path=truncated.ckpt"], "cannot be read (truncated"),
    "foreign ckpt": (["ckpt_path=notes.ckpt"], "cannot be read"),
    "torch file, not a checkpoint": (
        ["ckpt_path=weights.pt"],
        "not an optsweep training checkpoint",
    ),
    "another image height": (["ckpt_path=first.ckpt", "data.height=48"], "data.height=32"),
    "last without a run": (["ckpt_path=last", "lr=0.5"], "no earlier run with these overrides"),
    "no checkpoint of the last run readable": (
        ["ckpt_path=last", "seed=7", "epochs=1"],
        "can be read: checkpoint",
    ),
    "model/data mismatch": (["model=simple_cnn"], "model and data do not fit"),
    "unknown mode": (["mode=fast"], "mode must be one of train, lr_find"),
    "unknown lr_scaling": (["lr_scaling=cubic"], "lr_scaling must be one of none, linear, sqrt"),
    "effective_lr typed": (["effective_lr=0.1"], "effective_lr is derived from lr"),
    "min_lr above lr": (["min_lr=0.1"], "min_lr must be >= 0 and below the LR (0.001)"),
    "two warmup lengths": (["warmup_steps=5", "warmup_epochs=1"], "not both"),
    "warmup as long as the run": (["warmup_epochs=8"], "leaves no training after the warmup"),
    "warmup start factor 0": (["warmup_start_factor=0"], "warmup_start_factor must be in (0, 1]"),
    "other weight-decay groups": (
        ["ckpt_path=first.ckpt", "decay_1d_params=true"],
        "trained with decay_1d_params=False, not True",
    ),
    "resume with another lr": (["ckpt_path=first.ckpt", "lr=0.01"], "optimizer.lr=0.001, not 0.01"),
    "resume with another rule": (
        ["ckpt_path=first.ckpt", "lr_scaling=linear"],
        "optimizer.lr=0.001, not 0.00025",
    ),
    "lr_scale typed": (["optimizer=adam_to_sgd", "optimizer.lr_scale=3"], "lr_scale is derived"),
    "negative sgd_lr": (["optimizer=adam_to_sgd", "optimizer.sgd_lr=-1"], "optimizer.sgd_lr must"),
    "lr_find range upside down": (
        ["mode=lr_find", "lr_find.min_lr=1", "lr_find.max_lr=0.1"],
        "lr_find.min_lr (1) must be below lr_find.max_lr (0.1)",
    ),
    "muon's adamw_lr under onecycle": (
        ["optimizer=muon", "optimizer.adamw_lr=0.01", "scheduler=onecycle"],
        "optimizer.adamw_lr cannot be kept by a scheduler with one peak LR",
    ),
    "wsd decay longer than the run": (
        ["scheduler=wsd", "scheduler.scheduler.decay_fraction=1.5"],
        "decay_fraction must be in [0, 1], got 1.5",
    ),
    "wsd decay of no known shape": (
        ["scheduler=wsd", "scheduler.scheduler.decay=step"],
        "scheduler.scheduler.decay must be one of linear, cosine, got 'step'",
    ),
    "switch after the run": (["optimizer=adam_to_sgd", "epochs=3"], "would never switch"),
    "divergence factor 0": (["divergence.factor=0"], "divergence.factor must be a positive"),
    "stall tolerance 1": (["stall.tolerance=1"], "stall.tolerance must be in [0, 1)"),
    "lr_find from a checkpoint": (["mode=lr_find", "ckpt_path=first.ckpt"], "without ckpt_path"),
    "repeated charset": (["data.charset=AAB"], "charset 'AAB' repeats 'A': list each character"),
    "height the CRNN cannot take": (["data.height=40"], "got data.height=40: use e.g. data.h"),
    "report metric nobody logs": (["report.metric=val/acx"], "ocr trials log: train/mean_loss,"),
    "pruning a single run": (["prune=asha"], "prune compares the trials of a sweep: run it"),
    "schedule-free with a schedule": (
        ["optimizer=schedulefree_sgd", "scheduler=cosine"],
        "schedulefree.SGDScheduleFree averages its iterates instead of following an LR schedule: "
        "use scheduler=none",
    ),
    "sam around lbfgs": (
        ["optimizer=sam", "optimizer@optimizer.base=lbfgs"],
        "optimizer=sam cannot wrap optsweep.lbfgs.LBFGS: it evaluates the loss at weights",
    ),
    "lbfgs with weight decay": (["optimizer=lbfgs", "weight_decay=1e-4"], "has no weight decay"),
    "sam around sam": (
        ["optimizer=sam", "optimizer@optimizer.base=sam"],
        "optimizer=sam cannot wrap optsweep.sam.SAM: it needs a closure",
    ),
    "sam around schedule-free with a schedule": (
        ["optimizer=sam", "optimizer@optimizer.base=schedulefree_adamw", "scheduler=step"],
        "schedulefree.AdamWScheduleFree averages its iterates instead of following an LR",
    ),
    "sam with a GradScaler": (["optimizer=sam", "trainer.precision=16-mixed"], "use 32-true or"),
}


@pytest.mark.parametrize(("args", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_and_nothing_is_lost(workdir, args, message):
    before = snapshot(workdir)
    proc = run_cli([*TINY_OCR, *args], workdir, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(workdir) == before  # nothing overwritten, lost, or left behind


def test_a_sweep_ranked_by_a_metric_nobody_logs_is_refused_before_it_starts(workdir):
    before = snapshot(workdir)
    sweep = ["-m", "lr=1e-3,2e-3", *TINY_OCR, "report.metric=val/acc", "hydra.sweep.dir=sweep"]
    proc = run_cli(sweep, workdir, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: report.metric must be a metric that ocr trials log: train/mean_loss, train/lr, "
        "val/loss, val/word_acc, val/cer; got 'val/acc'"
    ]
    assert snapshot(workdir) == before


def test_unknown_group_option_lists_the_valid_choices(workdir):
    proc = run_cli(["optimizer=adamx"], workdir, check=False)
    assert proc.returncode != 0
    assert "Could not find 'optimizer/adamx'" in proc.stderr
    for choice in ("adam", "adamp", "adamw", "madgrad", "sgd"):
        assert f"\t{choice}\n" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_resume_with_another_optimizer_is_refused(workdir, tmp_path):
    shutil.copy(workdir / "first.ckpt", tmp_path / "adam.ckpt")
    proc = run_cli([*TINY_OCR, "optimizer=sgd", f"ckpt_path={tmp_path}/adam.ckpt"], tmp_path, False)
    assert proc.returncode != 0
    assert "trained with optimizer torch.optim.Adam, not torch.optim.SGD" in proc.stderr
