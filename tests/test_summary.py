"""The end-of-sweep summary: one line per trial, best final train/mean_loss first."""

import json

from optsweep.sweep.summary import summary_lines


def write_result(trial_dir, status, final):
    trial_dir.mkdir()
    result = {"status": status, "final": final, "epochs_completed": 2, "wall_seconds": 3.0}
    (trial_dir / "result.json").write_text(json.dumps(result))


def test_summary_ranks_by_final_mean_loss_and_survives_a_diverged_trial(tmp_path):
    write_result(tmp_path / "lr=0.1", "completed", {"train/mean_loss": 0.5, "val/loss": 0.6})
    write_result(tmp_path / "lr=0.01", "completed", {"train/mean_loss": 0.2, "val/loss": 0.3})
    write_result(tmp_path / "lr=10", "failed", {"train/mean_loss": None, "val/loss": None})
    lines = summary_lines(tmp_path)
    assert [line.split()[0] for line in lines] == ["lr=0.01", "lr=0.1", "lr=10"]
    assert "train/mean_loss=0.2000" in lines[0] and "val/loss=0.3000" in lines[0]
    assert "failed" in lines[2] and "None" not in lines[2]
