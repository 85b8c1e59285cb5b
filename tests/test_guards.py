"""The divergence and stall guards stop a real fit at once, with the status, the step or
epoch, and the reason in result.json; a run they do not trip is untouched, and
`divergence.factor=null` / `stall.patience=null` turn them off."""

import pytest
import torch

from helpers import GUARDS, SHARED_OCR, TINY_OCR, compose_cfg, guarded_run, metrics_rows, trained
from optsweep.train import fit


def test_a_nan_loss_stops_at_the_first_step(tmp_path):
    result = fit(compose_cfg([*TINY_OCR, "optimizer=sgd", "lr=1e30", "test=false"], tmp_path))
    assert result["status"] == "diverged"
    assert result["stopped"]["reason"] == "loss is nan"
    assert result["stopped"]["step"] <= 1
    assert result["epochs_completed"] == 0


@pytest.mark.parametrize("case", GUARDS)
def test_each_guard_stops_a_run_where_it_trips_and_null_turns_it_off(tmp_path_factory, case):
    run = guarded_run(tmp_path_factory, *GUARDS[case])
    result = run.result
    assert result["status"] == ("completed" if case == "off" else case)
    if case == "stalled":
        assert result["epochs_completed"] == 2 and result["stopped"]["epoch"] == 1
        assert "of chance (0.5000) for 2 epochs" in result["stopped"]["reason"]
    if case == "diverged":
        # At the first step of epoch 1, the first to compare with epoch 0's mean loss.
        rows = metrics_rows(run.dir)
        epoch_0_steps = [row for row in rows if row["epoch"] == "0" and "train/loss" in row]
        assert result["stopped"]["step"] == len(epoch_0_steps)
        assert "x the first epoch's mean loss" in result["stopped"]["reason"]
        assert result["epochs_completed"] == 1
        # No checkpoint of the broken weights: last.ckpt is still the end of epoch 0.
        last = torch.load(result["checkpoints"]["last"], map_location="cpu", weights_only=True)
        assert last["epoch"] == 0
    if case in ("completed", "off"):
        assert result["epochs_completed"] == 3 and "stopped" not in result


def test_guards_ignore_a_healthy_run(tmp_path_factory):
    result = trained(SHARED_OCR, tmp_path_factory).result
    assert result["status"] == "completed" and "stopped" not in result
    assert result["epochs_completed"] == 2
