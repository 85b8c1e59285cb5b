"""Every optimizer config, built the way training builds it, optimizes and resumes exactly."""

import pytest
import torch
from omegaconf import OmegaConf

from helpers import compose_cfg, options
from optsweep.lr_free import is_lr_free
from optsweep.optim import build_optimizer

OPTIMIZERS = options("optimizer")


def problem(seed: int = 0):
    """A small least-squares fit: model, inputs, targets."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 8, generator=generator)
    y = x @ torch.randn(8, 1, generator=generator)
    torch.manual_seed(seed)
    return torch.nn.Linear(8, 1), x, y


def step(model, optimizer, x, y) -> float:
    """One step through a closure, as Lightning steps; the loss at the step's start weights."""
    losses = []

    def closure() -> torch.Tensor:  # SAM calls it twice, L-BFGS once per iteration
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        losses.append(loss.item())
        return loss

    optimizer.step(closure)
    return losses[0]


def lr_for(name: str, tmp_path) -> str:
    """0.01, an LR every optimizer lowers this loss with in 30 steps. An LR-free one's lr
    multiplies the step size d it estimates, and d grows only once lr * steps / 2 > 1 (after
    ~200 steps at 0.01): it gets 0.5, below its default 1, at which D-Adapt Adam's first
    estimate overshoots on this 9-parameter fit (the loss x60 at step 15, back down by 45)."""
    return "0.5" if is_lr_free(compose_cfg([f"optimizer={name}"], tmp_path).optimizer) else "0.01"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_lowers_a_loss_and_resumes_to_the_same_next_step(name, tmp_path):
    composed = compose_cfg([f"optimizer={name}", f"lr={lr_for(name, tmp_path)}"], tmp_path)
    cfg = OmegaConf.to_container(composed.optimizer, resolve=True)
    model, x, y = problem()
    optimizer = build_optimizer(cfg, model)
    losses = [step(model, optimizer, x, y) for _ in range(30)]
    assert losses[-1] < 0.9 * losses[0], losses

    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "s.pt"
    )
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    twin, _, _ = problem(seed=1)  # other initial weights: everything must come from the file
    twin.load_state_dict(saved["model"])
    twin_optimizer = build_optimizer(cfg, twin)
    twin_optimizer.load_state_dict(saved["optimizer"])

    step(model, optimizer, x, y)
    step(twin, twin_optimizer, x, y)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
