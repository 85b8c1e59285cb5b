"""Mistakes a user can make end in one readable line and exit status 2, no traceback, and
leave what is already on disk untouched.

Every case is checked in process, through `optsweep.train.run`, what `python train.py` runs;
a few kinds (a knob, data, a checkpoint continued in place, an override Hydra refuses, a
sweep) also through the real command line, for the exit status, the stderr and the disk."""

import re
from pathlib import Path

import pytest
import torch

from helpers import SHARED_OCR, TINY_OCR, compose_run, run_cli, snapshot, trained
from optsweep.errors import UserError
from optsweep.train import run


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A finished run's checkpoint, a truncated and a foreign file, and a run whose
    checkpoints were all cut short, as a user's disk would hold them."""
    root = tmp_path_factory.mktemp("bad_input")
    last = Path(trained(SHARED_OCR, tmp_path_factory).result["checkpoints"]["last"])
    data = last.read_bytes()
    (root / "first.ckpt").write_bytes(data)
    (root / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    (root / "notes.ckpt").write_text("not a checkpoint\n")
    torch.save({"weights": torch.zeros(2)}, root / "weights.pt")
    # The run `ckpt_path=last` continues for these overrides, whose checkpoints were all cut
    # short (a kill during a non-atomic save, a damaged disk): none to fall back on.
    cut = Path(compose_run([*TINY_OCR, "seed=7", "epochs=1"], root).paths.output_dir)
    (cut / "checkpoints").mkdir(parents=True)
    for name in ("last.ckpt", "optimizer=adam-lr=0.001-scheduler=none-epoch=00.ckpt"):
        (cut / "checkpoints" / name).write_bytes(data[:1000])
    (cut / "train.log").write_text("the log of the run\n")  # Hydra's, which a resume appends to
    return root


# first.ckpt, with the LR it was trained at (SHARED_OCR): a resume changes only what a case says.
FIRST = ["ckpt_path=first.ckpt", "lr=5e-5"]

# Each with TINY_OCR's data.
ON_TINY_OCR = {
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
    "another image height": ([*FIRST, "data.height=48"], "data.height=32"),
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
        [*FIRST, "decay_1d_params=true"],
        "trained with decay_1d_params=False, not True",
    ),
    "resume with another lr": (["ckpt_path=first.ckpt", "lr=0.01"], "optimizer.lr=5e-05, not 0.01"),
    "resume with another rule": (
        [*FIRST, "lr_scaling=linear"],
        "optimizer.lr=5e-05, not 1.25e-05",
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
    "lr_find from a checkpoint": (["mode=lr_find", *FIRST], "without ckpt_path"),
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
    "resume with another optimizer": (
        ["optimizer=sgd", *FIRST],
        "trained with optimizer torch.optim.Adam, not torch.optim.SGD",
    ),
}
CASES = {name: ([*TINY_OCR, *args], message) for name, (args, message) in ON_TINY_OCR.items()}
CASES["missing data"] = (["data=ocr_folder", "data.train_dir=lines"], "no gt.txt in lines")


@pytest.mark.parametrize(("args", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_and_nothing_is_lost(workdir, monkeypatch, args, message):
    monkeypatch.chdir(workdir)  # where the relative ckpt_path's are
    before = snapshot(workdir)
    with pytest.raises(UserError, match=re.escape(message)) as refused:
        run(compose_run(args, workdir))
    assert "\n" not in str(refused.value)
    assert snapshot(workdir) == before  # nothing overwritten, lost, or left behind


def cli_refuses(workdir: Path, args: list[str]) -> list[str]:
    """The stderr lines of a refused `python train.py`, in a new interpreter (the command as a
    user types it); asserts the refusal left no trace."""
    before = snapshot(workdir)
    proc = run_cli(args, workdir, check=False, fresh=True)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert snapshot(workdir) == before  # Hydra's fresh run dir removed, nothing else touched
    return [str(proc.returncode), *(line for line in proc.stderr.splitlines() if line.strip())]


# One of each kind: a knob, data, a checkpoint of the run continued in place (the dir exists).
ON_THE_COMMAND_LINE = ["negative lr", "missing data", "no checkpoint of the last run readable"]


@pytest.mark.parametrize("case", ON_THE_COMMAND_LINE)
def test_the_command_line_prints_one_error_line_and_exits_2(workdir, case):
    args, message = CASES[case]
    status, *lines = cli_refuses(workdir, args)
    assert status == "2" and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]


def test_a_sweep_ranked_by_a_metric_nobody_logs_is_refused_before_it_starts(workdir):
    sweep = ["-m", "lr=1e-3,2e-3", *TINY_OCR, "report.metric=val/acc", "hydra.sweep.dir=sweep"]
    assert cli_refuses(workdir, sweep) == [
        "2",
        "error: report.metric must be a metric that ocr trials log: train/mean_loss, train/lr, "
        "val/loss, val/word_acc, val/cer; got 'val/acc'",
    ]


def test_unknown_group_option_lists_the_valid_choices(workdir):
    # Hydra refuses it before optsweep runs, with its own message and exit status 1.
    status, *lines = cli_refuses(workdir, ["optimizer=adamx"])
    assert status == "1"
    assert "In 'train': Could not find 'optimizer/adamx'" in lines
    for choice in ("adam", "adamp", "adamw", "madgrad", "sgd"):
        assert f"\t{choice}" in lines
