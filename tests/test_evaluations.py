"""Optimizers that evaluate the loss more than once per step (SAM, L-BFGS) under gradient
accumulation: Lightning re-runs only the last micro-batch's closure, yet every evaluation's
gradient is the whole window's, and train/mean_loss counts each micro-batch once."""

import pytest
import torch

from helpers import PROBED_FIT, compose_cfg, metrics_rows, write_image_folder
from killer import EvaluationProbe
from optsweep.train import fit

CLOSURE_OPTIMIZERS = {
    "sam": ["optimizer=sam"],
    "lbfgs": ["optimizer=lbfgs", "optimizer.max_iter=3"],
}


def window_gradient(weights: dict, micro_batches: list) -> dict[str, torch.Tensor]:
    """The gradient of the window's loss (the mean over its micro-batches) at `weights`."""
    module = EvaluationProbe.module_at(weights).train()
    loss = sum(module.batch_loss(b) for b in micro_batches) / len(micro_batches)
    names, params = zip(*module.named_parameters(), strict=True)
    return dict(zip(names, torch.autograd.grad(loss, params), strict=True))


@pytest.mark.parametrize("name", CLOSURE_OPTIMIZERS)
def test_every_evaluation_takes_the_gradient_of_the_whole_window(name, tmp_path):
    images = write_image_folder(tmp_path / "images")
    overrides = [*PROBED_FIT, f"data.root={images}", *CLOSURE_OPTIMIZERS[name], "lr=0.1"]
    limits = ["epochs=1", "trainer.accumulate_grad_batches=2", "+trainer.limit_train_batches=2"]
    fit(compose_cfg([*overrides, *limits], tmp_path))
    micro_batches = EvaluationProbe.batches
    assert [len(b["evaluations"]) > 1 for b in micro_batches] == [False, True]  # one step
    for evaluation in micro_batches[1]["evaluations"]:
        expected = window_gradient(evaluation["weights"], [b["batch"] for b in micro_batches])
        for key, grad in expected.items():
            torch.testing.assert_close(evaluation["grads"][key], grad, rtol=1e-4, atol=1e-6)

    # Each micro-batch's first loss, once (Lightning backpropagates it divided by 2).
    first_losses = [2 * b["losses"][0] for b in micro_batches]
    rows = metrics_rows(tmp_path)
    (mean,) = [float(r["train/mean_loss"]) for r in rows if "train/mean_loss" in r]
    assert mean == pytest.approx(sum(first_losses) / 2, rel=1e-6)
