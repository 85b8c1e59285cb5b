"""SAM: two forward and backward passes per step through Lightning's closure, the first one
at the weights w is what train/loss, train/mean_loss and BatchNorm's statistics count, the
second at w + rho * g/|g| gives the gradient the base optimizer steps from w with, at the LR
the schedule and the warmup set."""

import pytest
import torch
from killer import EvaluationProbe
from omegaconf import OmegaConf

from helpers import PROBED_FIT, compose_cfg, metrics_rows, write_image_folder
from optsweep.optim import build_optimizer
from optsweep.train import fit
from optsweep.warmup import lr_multiplied


@pytest.fixture(scope="module")
def sam_run(tmp_path_factory):
    """One epoch (3 steps) of SAM over SGD on a tiny image classification task."""
    root = tmp_path_factory.mktemp("sam")
    images = write_image_folder(root / "images")
    overrides = [*PROBED_FIT, f"data.root={images}", "optimizer=sam", "lr=0.1", "epochs=1"]
    fit(compose_cfg(overrides, root))
    return root, EvaluationProbe.batches


def test_each_step_takes_two_passes_the_second_at_the_perturbed_weights(sam_run):
    _, batches = sam_run
    assert len(batches) == 3
    for batch in batches:
        assert (batch["forwards"], len(batch["losses"]), len(batch["evaluations"])) == (2, 2, 2)
    first, second = batches[0]["evaluations"]
    g = first["grads"]
    norm = torch.cat([v.flatten() for v in g.values()]).norm()
    for name, w in first["weights"].items():  # w + e, e = rho * g / |g| (rho 0.05)
        torch.testing.assert_close(second["weights"][name], w + 0.05 * g[name] / norm)
    # SGD (momentum 0.9, whose first step is plain) steps from w with the second gradient.
    for name, w in first["weights"].items():
        torch.testing.assert_close(batches[0]["after"][name], w - 0.1 * second["grads"][name])


def test_the_losses_logged_and_the_batchnorm_statistics_are_the_first_pass(sam_run):
    root, batches = sam_run
    first_losses = [b["losses"][0] for b in batches]
    assert all(b["losses"][1] != b["losses"][0] for b in batches)  # w + e has another loss
    rows = metrics_rows(root)
    logged = [float(r["train/loss"]) for r in rows if "train/loss" in r]
    assert logged == pytest.approx(first_losses, rel=1e-6)
    (mean,) = [float(r["train/mean_loss"]) for r in rows if "train/mean_loss" in r]
    assert mean == pytest.approx(sum(first_losses) / 3, rel=1e-6)

    # Running statistics after the first step: one forward at w, as without SAM.
    module = EvaluationProbe.module_at(batches[0]["evaluations"][0]["weights"]).train()
    module.batch_loss(batches[0]["batch"])
    stats = {k: v for k, v in module.state_dict().items() if "running_" in k}
    assert stats
    for name, value in stats.items():
        torch.testing.assert_close(batches[0]["after"][name], value, msg=name)


def test_the_base_optimizer_steps_with_the_scheduled_and_warmed_up_lr(tmp_path):
    cfg = compose_cfg(["optimizer=sam", "optimizer.base.momentum=0", "lr=0.1"], tmp_path)
    cfg = OmegaConf.to_container(cfg, resolve=True)
    model = torch.nn.Linear(3, 1)
    optimizer = build_optimizer(cfg["optimizer"], model)
    optimizer.load_state_dict(optimizer.state_dict())  # as a resumed run does
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = model(torch.ones(4, 3)).pow(2).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    scheduler.step()  # 0.1 -> 0.05
    before = model.weight.detach().clone()
    with lr_multiplied(optimizer, 0.2):  # a warmup step at 20%
        optimizer.step(closure)
    # SGD without momentum: the step is -lr times the gradient it took last (at w + e).
    used = (before - model.weight.detach()) / model.weight.grad
    torch.testing.assert_close(used, torch.full_like(used, 0.05 * 0.2))
