"""The divergence and stall guards stop a real fit at once, with the status, the step or
epoch, and the reason in result.json; a run they do not trip is untouched."""

import pytest
import torch

from helpers import TINY_OCR, compose_cfg, write_image_folder
from optsweep.train import fit

STEPS_PER_EPOCH = 3  # TINY_OCR: 96 samples, batch 32


def test_a_loss_above_factor_times_the_first_epoch_stops_at_that_step(tmp_path):
    # Any loss is above 0.01 x the first epoch's mean: the first step of epoch 1 trips it.
    overrides = [*TINY_OCR, "epochs=3", "test=false", "divergence.factor=0.01"]
    result = fit(compose_cfg(overrides, tmp_path))
    assert result["status"] == "diverged"
    assert result["stopped"]["step"] == STEPS_PER_EPOCH
    assert "x the first epoch's mean loss" in result["stopped"]["reason"]
    assert result["epochs_completed"] == 1
    # No checkpoint of the broken weights: last.ckpt is still the end of epoch 0.
    last = torch.load(result["checkpoints"]["last"], map_location="cpu", weights_only=True)
    assert last["epoch"] == 0


def test_a_nan_loss_stops_at_the_first_step(tmp_path):
    result = fit(compose_cfg([*TINY_OCR, "optimizer=sgd", "lr=1e30", "test=false"], tmp_path))
    assert result["status"] == "diverged"
    assert result["stopped"]["reason"] == "loss is nan"
    assert result["stopped"]["step"] <= 1
    assert result["epochs_completed"] == 0


@pytest.mark.parametrize(("tolerance", "status"), [(0.5, "stalled"), (0.0, "completed")])
def test_stall_counts_epochs_within_tolerance_of_chance(tmp_path, tolerance, status):
    # Two classes, chance 0.5: a tolerance of 0.5 calls every accuracy chance, 0.0 only an
    # accuracy of exactly 0.5 or less (this task is learnt to > 0.5 in 3 epochs).
    images = write_image_folder(tmp_path / "images")
    overrides = ["data=image_folder", f"data.root={images}", "model=simple_cnn", "batch_size=8"]
    overrides += ["optimizer=sgd", "lr=0.05", "trainer=cpu", "epochs=3", "test=false"]
    overrides += ["stall.patience=2", f"stall.tolerance={tolerance}"]
    result = fit(compose_cfg(overrides, tmp_path / "run"))
    assert result["status"] == status
    if status == "stalled":
        assert result["epochs_completed"] == 2 and result["stopped"]["epoch"] == 1


def test_guards_ignore_a_healthy_run(tmp_path):
    result = fit(compose_cfg([*TINY_OCR, "epochs=2", "test=false"], tmp_path))
    assert result["status"] == "completed" and "stopped" not in result
