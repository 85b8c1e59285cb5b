"""`python train.py -m ...`: the real Hydra multirun, one directory per trial named by it."""

import json

import torch

from helpers import TINY_OCR, console_leaderboard, run_cli


def test_two_by_two_grid_gives_four_named_trials(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        ["-m", "optimizer=adam,sgd", "lr=1e-3,1e-1", *TINY_OCR, "epochs=1"]
        + [f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    trials = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    naming = [o for o in TINY_OCR if o != "trainer=cpu"]  # the trainer choice does not name runs
    expected = sorted(
        ",".join(sorted([*naming, "epochs=1", f"lr={lr}", f"optimizer={opt}"]))
        for opt in ("adam", "sgd")
        for lr in ("0.001", "0.1")
    )
    assert trials == expected
    for trial in trials:
        result = json.loads((sweep / trial / "result.json").read_text())
        assert result["status"] == "completed"
        assert set(trial.split(",")) <= set(result["overrides"])
        checkpoint = torch.load(result["checkpoints"]["best"], weights_only=True)
        assert checkpoint["state_dict"]
    # The console's leaderboard: the four settings, lowest final train/mean_loss first.
    board = console_leaderboard(proc.stdout)
    assert len(board) == 4
    finals = [float(row[2].split()[0]) for row in board]
    assert finals == sorted(finals)
