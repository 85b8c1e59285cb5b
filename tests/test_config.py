"""The Hydra tree: every option composes, knobs reach the groups, the CLI documents itself."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from helpers import compose_cfg, run_cli
from optsweep.optim import build_optimizer, build_scheduler
from optsweep.train import CONFIG_DIR

GROUPS = ["data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks", "paths"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


ALL_OPTIONS = [(g, o) for g in [*GROUPS, "experiment", "sweep"] for o in options(g)]


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_every_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_cfg([f"{group}={option}"], tmp_path)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["lr"] > 0
    if group in ("data", "model", "optimizer"):
        assert "_target_" in resolved[group]


def test_top_level_knobs_reach_the_groups(tmp_path):
    cfg = compose_cfg(["lr=0.05", "batch_size=16", "epochs=3", "weight_decay=0.1"], tmp_path)
    assert cfg.optimizer.lr == 0.05
    assert cfg.optimizer.weight_decay == 0.1
    assert cfg.data.batch_size == 16
    assert cfg.trainer.max_epochs == 3


@pytest.mark.parametrize("name", options("optimizer"))
def test_every_optimizer_config_builds_its_optimizer(name, tmp_path):
    cfg = compose_cfg([f"optimizer={name}", "lr=0.01"], tmp_path)
    model = torch.nn.Linear(3, 2)
    optimizer = build_optimizer(OmegaConf.to_container(cfg.optimizer, resolve=True), model)
    assert optimizer.param_groups[0]["lr"] == 0.01
    # The name's words are the class's, in any order (schedulefree_adamw: AdamWScheduleFree).
    assert all(word in type(optimizer).__name__.lower() for word in name.split("_"))
    # Its state goes into checkpoints, which must load the safe way.

    def closure() -> torch.Tensor:  # SAM and L-BFGS need one; Lightning always passes it
        loss = model(torch.ones(4, 3)).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    torch.save(optimizer.state_dict(), tmp_path / "optimizer.pt")
    torch.load(tmp_path / "optimizer.pt", weights_only=True)


@pytest.mark.parametrize("name", options("scheduler"))
def test_every_scheduler_config_carries_its_interval(name, tmp_path):
    cfg = compose_cfg([f"scheduler={name}"], tmp_path)
    cfg = OmegaConf.to_container(cfg, resolve=True)["scheduler"]
    assert cfg["interval"] in ("step", "epoch")
    trainer = type("T", (), {"estimated_stepping_batches": 100})()
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    scheduler = build_scheduler(cfg, optimizer, trainer)
    if name == "none":
        assert scheduler is None
    else:
        assert scheduler["interval"] == cfg["interval"]
    if name in ("onecycle", "wsd"):
        assert scheduler["scheduler"].total_steps == 100  # filled from the trainer
    if name == "cosine":
        assert scheduler["scheduler"].T_max == 100
    if name in ("linear", "polynomial"):
        assert scheduler["scheduler"].total_iters == 100
    if name == "plateau":
        assert scheduler["monitor"] == "val/loss" and scheduler["scheduler"].factor == 0.5


@pytest.mark.parametrize("name", options("model"))
def test_every_model_config_builds_a_network(name, tmp_path):
    cfg = compose_cfg([f"model={name}"], tmp_path)
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.model).items() if k != "task"}
    net = instantiate(kwargs, num_classes=5)
    images = torch.rand(2, 1, 32, 128) if cfg.model.task == "ocr" else torch.rand(2, 3, 32, 32)
    assert net(images).shape[-1] == 5


def test_help_lists_every_group_with_its_choices(tmp_path):
    lines = run_cli(["--help"], tmp_path).stdout.splitlines()
    for group in GROUPS:
        assert f"{group}: {', '.join(options(group))}" in lines, group


def test_experiment_and_sweep_overlays_set_the_top_level_knobs(tmp_path):
    cfg = compose_cfg(["experiment=cifar10_resnet18"], tmp_path)
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.weight_decay) == (0.1, 128, 30, 5e-4)
    assert cfg.optimizer.lr == 0.1 and cfg.data.batch_size == 128
    assert compose_cfg(["sweep=default"], tmp_path).trainer.max_epochs == 3


def test_cfg_job_prints_the_resolved_config(tmp_path):
    out = run_cli(["--cfg", "job", "--resolve", "optimizer=sgd", "lr=0.02"], tmp_path).stdout
    assert "_target_: torch.optim.SGD" in out
    assert "lr: 0.02" in out
    assert "momentum: 0.9" in out
