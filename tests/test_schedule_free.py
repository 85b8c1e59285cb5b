"""Schedule-free optimizers train at y and promise x, the average of their iterates: validation,
every checkpoint and the end of a fit have x; the warmup is optsweep's, applied once.

One real fit per optimizer, 2 epochs of 3 steps, validated only after the second: the first
epoch's checkpoint is saved with no validation before it."""

import pytest
import torch

from helpers import TINY_OCR, compose_cfg, logged_lrs
from killer import AveragedWeightsProbe
from optsweep.predict import load_module
from optsweep.train import _build_datamodule, fit
from optsweep.warmup import Warmup

LR = 0.01
RUN = [*TINY_OCR, "epochs=2", "+trainer.check_val_every_n_epoch=2", f"lr={LR}", "warmup_steps=4"]
RUN += ["test=false", "+callbacks.probe._target_=killer.AveragedWeightsProbe"]


@pytest.fixture(scope="module", params=["schedulefree_adamw", "schedulefree_sgd"])
def run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    AveragedWeightsProbe.reset()
    cfg = compose_cfg([*RUN, f"optimizer={request.param}"], out)
    result = fit(cfg)
    probe = {k: getattr(AveragedWeightsProbe, k) for k in ("trained", "averaged", "saved")}
    probe |= {k: getattr(AveragedWeightsProbe, k) for k in ("step_lrs", "at_end")}
    return cfg, out, result, probe


def assert_averaged(weights: dict, epoch: int, probe: dict) -> None:
    """`weights` are x of that epoch, and y is far enough from x for that to mean something."""
    x, y = probe["averaged"][epoch], probe["trained"][epoch]
    for name in x:
        torch.testing.assert_close(weights[name], x[name], rtol=1e-5, atol=1e-7, msg=name)
    assert max((x[n] - y[n]).abs().max().item() for n in x) > 1e-4


def val_loss(cfg, module) -> float:
    """The validation loss as TaskModule logs it (the mean of the batch losses), recomputed."""
    datamodule = _build_datamodule(cfg.data)
    datamodule.setup("fit")
    batches = [datamodule.on_after_batch_transfer(b, 0) for b in datamodule.val_dataloader()]
    with torch.no_grad():
        losses = [module.loss(module(b[0]), b).item() for b in batches]
    return sum(losses) / len(losses)


def test_every_checkpoint_holds_the_averaged_weights(run):
    _, out, _, probe = run
    # Epoch 0: last.ckpt only (no val/loss yet for the best); epoch 1: the best, then last.
    assert [epoch for epoch, _ in probe["saved"]] == [0, 1, 1]
    for epoch, weights in probe["saved"]:
        assert_averaged(weights, epoch, probe)
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert_averaged(last["state_dict"], 1, probe)
    assert last["optimizer_states"][0]["param_groups"][0]["train_mode"] is False


def test_validation_is_of_the_averaged_weights(run):
    cfg, out, result, probe = run
    logged = result["history"][1]["val/loss"]
    module = load_module(out / "checkpoints" / "last.ckpt")
    assert val_loss(cfg, module) == pytest.approx(logged, rel=1e-5)
    module.load_state_dict(probe["trained"][1], strict=False)
    assert val_loss(cfg, module) != pytest.approx(logged, rel=1e-3)


def test_the_fit_ends_with_the_averaged_weights(run):
    _, _, _, probe = run
    assert_averaged(probe["at_end"], 1, probe)


def test_the_warmup_is_optsweeps_alone(run):
    _, out, _, probe = run
    # The LR each step used as the optimizer saw it: our warmup once, its own warmup off.
    warmup = Warmup(steps=4, start_factor=0.1)
    assert probe["step_lrs"] == pytest.approx([LR * warmup.factor(k) for k in range(6)])
    assert logged_lrs(out) == pytest.approx(probe["step_lrs"], rel=1e-6)
