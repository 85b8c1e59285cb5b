"""SAM: two forward and backward passes per step through Lightning's closure, the first one
at the weights w is what train/loss, train/mean_loss and BatchNorm's statistics count, the
second at w + rho * g/|g| gives the gradient the base optimizer steps from w with, at the LR
the schedule and the warmup set; over any base of the catalogue but the two that need a
closure of their own."""

import copy
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from helpers import (
    CONFIG_DIR,
    PROBED_FIT,
    compose_cfg,
    logged_lrs,
    metrics_rows,
    options,
    write_image_folder,
)
from killer import EvaluationProbe
from optsweep.lr_free import is_lr_free
from optsweep.optim import build_optimizer
from optsweep.sam import NOT_A_BASE
from optsweep.train import fit
from optsweep.validate import check_knobs
from optsweep.warmup import lr_multiplied

OPTIMIZERS = Path(CONFIG_DIR) / "optimizer"
CATALOGUE = options("optimizer")


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


def _target(name: str) -> str:
    return OmegaConf.load(OPTIMIZERS / f"{name}.yaml")._target_


BASES = [name for name in CATALOGUE if _target(name) not in NOT_A_BASE]


def test_only_the_bases_that_need_a_closure_of_their_own_are_refused():
    assert sorted(set(CATALOGUE) - set(BASES)) == ["lbfgs", "sam"]


@pytest.mark.parametrize("base", BASES)
def test_any_base_steps_from_w_with_the_gradient_at_the_perturbed_weights(tmp_path, base):
    """SAM over `base` against `base` alone on a twin model, fed by hand the gradient at
    w + rho * g/|g|: the same weights after each step, the same param groups (muon's split),
    and the same averaged weights in eval mode (schedule-free)."""
    cfg = compose_cfg(["optimizer=sam", f"optimizer@optimizer.base={base}"], tmp_path)
    check_knobs(cfg)  # accepted, no error line
    assert cfg.lr == (1.0 if is_lr_free(cfg.optimizer) else 1e-3)  # LR-free: a multiplier of 1
    cfg = OmegaConf.to_container(cfg, resolve=True)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
        torch.nn.Linear(8, 2),
    )  # fmt: skip
    twin = copy.deepcopy(model)
    sam = build_optimizer(cfg["optimizer"], model)
    alone = build_optimizer(cfg["optimizer"]["base"], twin)
    assert [g.get("group") for g in sam.param_groups] == [
        g.get("group") for g in alone.param_groups
    ]
    x, y = torch.randn(16, 4), torch.randn(16, 2)

    def closure() -> torch.Tensor:
        sam.zero_grad()
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        return loss

    for _ in range(3):
        twin.zero_grad()
        (twin(x) - y).pow(2).mean().backward()
        params = list(twin.parameters())
        norm = torch.cat([p.grad.flatten() for p in params]).norm() + 1e-12
        at_w = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p in params:
                p.add_(0.05 * p.grad / norm)
        twin.zero_grad()
        (twin(x) - y).pow(2).mean().backward()
        with torch.no_grad():
            for p, w in zip(params, at_w, strict=True):
                p.copy_(w)
        alone.step()
        sam.step(closure)
        for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(mine, theirs)
    if callable(getattr(alone, "eval", None)):
        sam.eval()
        alone.eval()
        assert not sam.param_groups[0]["train_mode"]
        for mine, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(mine, theirs)


# Each base's own behaviour, and the run that shows it.
BRINGS_MORE = {
    "muon": ["epochs=1"],
    "schedulefree_adamw": ["epochs=1"],
    "prodigy": ["epochs=1"],
    "adam_to_sgd": ["epochs=2", "optimizer.base.switch_epoch=1"],
}


@pytest.mark.parametrize("base", BRINGS_MORE)
def test_a_fit_with_a_base_that_brings_more_than_a_step(tmp_path, base):
    """Muon's own groups, schedule-free's averaged weights in every checkpoint, LR-free's step
    size as train/lr, Adam-to-SGD's switch: through SAM in a real fit as without it."""
    images = write_image_folder(tmp_path / "images")
    overrides = [*PROBED_FIT, f"data.root={images}", *BRINGS_MORE[base]]
    fit(compose_cfg([*overrides, "optimizer=sam", f"optimizer@optimizer.base={base}"], tmp_path))
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    groups = ckpt["optimizer_states"][0]["param_groups"]
    if base == "muon":
        assert [g["group"] for g in groups][0] == "muon" and groups[0]["use_muon"]
    if base == "schedulefree_adamw":
        assert all(g["train_mode"] is False for g in groups)  # saved in eval mode: x
    if base == "prodigy":
        # d * lr, not the multiplier 1: d0 = 1e-6 over these steps, and d grew after them.
        assert logged_lrs(tmp_path) == pytest.approx([1e-6] * 3)
        assert groups[0]["lr"] == 1.0 and groups[0]["d"] > 2e-6
    if base == "adam_to_sgd":  # Adam at lr for epoch 0, SGD at sgd_lr from epoch 1
        assert logged_lrs(tmp_path) == pytest.approx([1e-3] * 3 + [0.05] * 3)
        assert all(g["phase"] == "sgd" for g in groups)
