"""L-BFGS: torch's, with Lightning's closure, on the classification task."""

import logging

import pytest

from helpers import PROBED_FIT, compose_cfg, metrics_rows, write_image_folder
from killer import EvaluationProbe
from optsweep.train import fit


def test_lbfgs_evaluates_several_times_per_step_and_fits_a_tiny_classifier(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="optsweep")
    images = write_image_folder(tmp_path / "images")
    overrides = [*PROBED_FIT, f"data.root={images}", "optimizer=lbfgs", "optimizer.max_iter=4"]
    result = fit(compose_cfg([*overrides, "lr=0.1", "epochs=1"], tmp_path))
    batches = EvaluationProbe.batches
    assert all(len(b["evaluations"]) > 1 for b in batches)  # the closure, once per iteration
    # train/mean_loss counts each batch's first evaluation: the loss before its step.
    first_losses = [b["losses"][0] for b in batches]
    (mean,) = [
        float(r["train/mean_loss"]) for r in metrics_rows(tmp_path) if "train/mean_loss" in r
    ]
    assert mean == pytest.approx(sum(first_losses) / len(batches), rel=1e-6)
    assert first_losses[-1] < 0.5 * first_losses[0]
    assert result["best"]["val/acc"] == 1.0
    # One parameter group, the only kind torch's L-BFGS takes, whatever the decay groups.
    assert [m for m in caplog.messages if m.startswith("param group")] == [
        "param group all: 11 tensors, 93730 parameters, weight_decay=None"
    ]
