"""optimizer=muon: torch's Muon on the hidden layers' weight matrices and conv kernels, torch's
AdamW on the rest (first layer, head, 1-D parameters), in one optimizer whose state saves and
reloads whole. (Kill and resume: test_resume.py.)"""

import logging

import pytest
import torch
from omegaconf import OmegaConf

from helpers import compose_cfg
from optsweep.models.crnn import CRNN
from optsweep.models.simple_cnn import SimpleCNN
from optsweep.optim import build_optimizer


def crnn_batch():
    return torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def cnn_batch():
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


BN = ("weight", "bias")
MODELS = {
    "crnn": (
        lambda: CRNN(num_classes=11),
        crnn_batch,
        [f"features.{i}.0.weight" for i in (1, 2, 3)]
        + [f"rnn.weight_{w}_l0{d}" for d in ("", "_reverse") for w in ("ih", "hh")],
        ["features.0.0.weight", "head.weight"],
    ),
    "simple_cnn": (
        lambda: SimpleCNN(num_classes=10),
        cnn_batch,
        ["1.0.weight", "2.0.weight"],
        ["0.0.weight", "5.weight"],
    ),
}


def step(model, optimizer, batch) -> None:
    optimizer.zero_grad()
    model(batch).square().mean().backward()
    optimizer.step()


@pytest.mark.parametrize("name", MODELS)
def test_muon_takes_the_hidden_matrices_adamw_the_rest_and_both_states_reload(
    name, tmp_path, caplog
):
    make, batch, to_muon, matrices_to_adamw = MODELS[name]
    cfg = compose_cfg(["optimizer=muon", "lr=0.01", "optimizer.adamw_lr=0.002"], tmp_path)
    cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    torch.manual_seed(0)
    model = make()
    caplog.set_level(logging.INFO, logger="optsweep")
    optimizer = build_optimizer(cfg, model)

    names = {id(p): n for n, p in model.named_parameters()}
    split = {g["group"]: [names[id(p)] for p in g["params"]] for g in optimizer.param_groups}
    one_d = [n for n, p in model.named_parameters() if p.ndim == 1]
    assert split == {"muon": to_muon, "adamw_decay": matrices_to_adamw, "adamw_no_decay": one_d}
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.01, 0.002, 0.002])
    first, head = (n.removesuffix(".weight") for n in matrices_to_adamw)
    assert f"Muon takes {len(to_muon)} hidden weight matrices" in caplog.text
    assert f"{first} (first layer), {head} (head)" in caplog.text

    # A hidden conv kernel's update is torch.optim.Muon's on the (out, in*k*k) matrix.
    kernel = dict(model.named_parameters())[to_muon[0]]
    matrix = torch.nn.Parameter(kernel.detach().clone().flatten(1))
    reference = torch.optim.Muon([matrix], lr=0.01, weight_decay=0, adjust_lr_fn="match_rms_adamw")
    for _ in range(2):
        step(model, optimizer, batch())
        matrix.grad = kernel.grad.flatten(1)
        reference.step()
        torch.testing.assert_close(kernel.flatten(1), matrix, rtol=0, atol=0)

    state = {names[id(p)]: set(s) for p, s in optimizer.state.items()}
    assert all(state[n] == {"momentum_buffer"} for n in to_muon)
    assert all(state[n] == {"step", "exp_avg", "exp_avg_sq"} for n in matrices_to_adamw + one_d)

    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "s")
    saved = torch.load(tmp_path / "s", weights_only=True)
    twin = make()  # other initial weights: everything must come from the file
    twin.load_state_dict(saved["model"])
    twin_optimizer = build_optimizer(cfg, twin)
    twin_optimizer.load_state_dict(saved["optimizer"])
    step(model, optimizer, batch())
    step(twin, twin_optimizer, batch())
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
