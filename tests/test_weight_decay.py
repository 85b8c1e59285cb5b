"""Weight-decay groups: biases and normalisation weights (1-D parameters) are not decayed by
default, everything is with decay_1d_params=true, and a run logs its groups."""

import logging

import torch
from omegaconf import OmegaConf

from helpers import TINY_OCR, compose_cfg
from optsweep.optim import build_optimizer
from optsweep.train import fit


def net() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    for param in model.parameters():  # nonzero everywhere: decay visibly moves every value
        torch.nn.init.constant_(param, 1.0)
    return model


def decayed_by_one_step(decay_1d: bool, tmp_path) -> dict[str, bool]:
    """Which parameters one SGD step with zero gradients changes: only weight decay can."""
    cfg = compose_cfg(["optimizer=sgd", "lr=0.1", "weight_decay=0.5"], tmp_path)
    model = net()
    optimizer = build_optimizer(
        OmegaConf.to_container(cfg.optimizer, resolve=True), model, decay_1d
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return {name: not torch.equal(p, before[name]) for name, p in model.named_parameters()}


def test_1d_parameters_are_not_decayed_by_default(tmp_path):
    changed = decayed_by_one_step(False, tmp_path)
    assert changed == {
        "0.weight": True,
        "0.bias": False,
        "1.weight": False,  # LayerNorm's scale
        "1.bias": False,
        "2.weight": True,
        "2.bias": False,
    }


def test_decay_1d_params_decays_everything(tmp_path):
    assert all(decayed_by_one_step(True, tmp_path).values())


def test_a_run_logs_its_parameter_groups(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="optsweep")
    overrides = [*TINY_OCR, "epochs=1", "test=false", "weight_decay=1e-4"]
    fit(compose_cfg(overrides, tmp_path))
    groups = [r.getMessage() for r in caplog.records if r.getMessage().startswith("param group")]
    # The CRNN has conv/linear/LSTM matrices (decayed), biases and BatchNorm weights (not).
    assert len(groups) == 2, groups
    assert groups[0].startswith("param group decay:") and "weight_decay=0.0001" in groups[0]
    assert groups[1].startswith("param group no_decay:") and "weight_decay=0.0" in groups[1]
    tensors = [int(g.split(": ")[1].split()[0]) for g in groups]
    assert all(n > 0 for n in tensors), groups
