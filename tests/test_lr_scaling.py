"""The batch-size rule: every optimizer and every step gets `lr` scaled by
batch_size / base_batch_size (linear) or its square root (sqrt), and result.json has both."""

import json
import logging

import pytest
import torch
from omegaconf import OmegaConf

from helpers import TINY_OCR, compose_cfg, logged_lrs, options
from optsweep.optim import build_optimizer
from optsweep.train import fit

OPTIMIZERS = options("optimizer")
RULES = {
    "off": (["batch_size=256"], 0.01),
    "linear, 2x the batch": (["lr_scaling=linear", "batch_size=256"], 0.02),
    "linear, 1/4 the batch": (["lr_scaling=linear", "batch_size=32"], 0.0025),
    "sqrt, 4x the batch": (["lr_scaling=sqrt", "batch_size=512"], 0.02),
    "sqrt, other base": (["lr_scaling=sqrt", "batch_size=16", "base_batch_size=64"], 0.005),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize(("overrides", "expected"), RULES.values(), ids=RULES.keys())
def test_every_optimizer_gets_the_scaled_lr(name, overrides, expected, tmp_path):
    cfg = compose_cfg([f"optimizer={name}", "lr=0.01", *overrides], tmp_path)
    optimizer_cfg = OmegaConf.to_container(cfg.optimizer, resolve=True)
    optimizer = build_optimizer(optimizer_cfg, torch.nn.Linear(3, 2))
    assert cfg.effective_lr == pytest.approx(expected)
    groups = optimizer.param_groups  # decay and no_decay; one for lbfgs, which takes one only
    assert [g["lr"] for g in groups] == pytest.approx([expected] * len(groups))


def test_a_fit_steps_with_the_scaled_lr_and_records_both(tmp_path, caplog):
    # batch 32 against a base of 128, sqrt rule: 0.02 * sqrt(1/4) = 0.01 at OneCycle's peak.
    caplog.set_level(logging.INFO, logger="optsweep")
    overrides = ["lr=0.02", "lr_scaling=sqrt", "scheduler=onecycle", "data.train_size=320"]
    result = fit(compose_cfg([*TINY_OCR, *overrides, "epochs=2", "test=false"], tmp_path))
    assert (
        "effective lr 0.01 (lr=0.02, lr_scaling=sqrt, batch_size=32, base_batch_size=128)"
        in caplog.messages
    )
    assert max(logged_lrs(tmp_path)) == pytest.approx(0.01, rel=1e-5)
    assert result["choices"]["lr"] == 0.02
    assert result["choices"]["effective_lr"] == pytest.approx(0.01)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["choices"]["effective_lr"] == pytest.approx(0.01)
