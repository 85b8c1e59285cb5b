"""The Hydra tree: every option composes, knobs reach the groups, the CLI documents itself."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from helpers import compose_cfg, options, run_cli
from optsweep.optim import build_optimizer, build_scheduler
from optsweep.train import CONFIG_DIR

GROUPS = ["data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks", "paths"]


ALL_OPTIONS = [(g, o) for g in [*GROUPS, "prune", "experiment", "sweep"] for o in options(g)]


def load_option(group: str, option: str) -> tuple[bool, list, dict]:
    """(at the root?, its defaults list, the rest) of conf/<group>/<option>.yaml as written."""
    path = Path(CONFIG_DIR) / group / f"{option}.yaml"
    content = OmegaConf.to_container(OmegaConf.load(path)) or {}
    return "# @package _global_" in path.read_text(), content.pop("defaults", []), content


def assert_within(expected, composed, where: str) -> None:
    """Every key of `expected` is in `composed`, with the same value (interpolations as typed)."""
    if isinstance(expected, dict):
        assert isinstance(composed, dict), where
        for key, value in expected.items():
            assert key in composed, f"{where}.{key} is missing"
            assert_within(value, composed[key], f"{where}.{key}")
    else:
        assert composed == expected, f"{where}: {composed!r}, the YAML says {expected!r}"


def assert_defaults_applied(group: str, defaults: list, own: dict, cfg, where: str) -> None:
    """What the option's defaults list pulls in is in the composed config; its own keys win."""
    choices = cfg.hydra.runtime.choices
    for entry in defaults:
        if entry == "_self_":
            continue
        if isinstance(entry, str) and not entry.startswith("/"):  # another option of the group
            _, _, content = load_option(group, entry)
            content = {k: v for k, v in content.items() if k not in own}
            assert_within(content, OmegaConf.to_container(cfg[group]), f"{group}/{entry}")
        elif entry == "/lr_multiplier@_global_":
            assert cfg.lr == OmegaConf.load(Path(CONFIG_DIR) / "lr_multiplier.yaml").lr
        elif isinstance(entry, dict) and len(entry) == 1:
            ((key, option),) = entry.items()
            if key.startswith("override /"):  # an overlay picking another option of a group
                assert choices[key.removeprefix("override /")] == option, key
            else:  # /optimizer@base: sgd, an option of a group placed in this one
                other, at = key.removeprefix("/").split("@")
                _, _, content = load_option(other, option)
                assert_within(content, OmegaConf.to_container(cfg[where][at]), f"{where}.{at}")
        else:
            raise AssertionError(f"{group}/{where}: no check for the defaults entry {entry!r}")


@pytest.mark.parametrize(("group", "option"), ALL_OPTIONS, ids=[f"{g}={o}" for g, o in ALL_OPTIONS])
def test_every_option_composes_with_what_its_yaml_sets(group, option, tmp_path):
    at_root, defaults, own = load_option(group, option)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"{group}={option}"], return_hydra_config=True)
    assert cfg.hydra.runtime.choices[group] == option
    assert_within(own, OmegaConf.to_container(cfg if at_root else cfg[group]), group)
    assert_defaults_applied(group, defaults, own, cfg, group)
    # Every interpolation resolves, as in a run (Hydra sets its output dir).
    cfg.hydra.runtime.output_dir = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    assert OmegaConf.to_container(cfg, resolve=True)["lr"] > 0


def test_top_level_knobs_reach_the_groups(tmp_path):
    cfg = compose_cfg(["lr=0.05", "batch_size=16", "epochs=3", "weight_decay=0.1"], tmp_path)
    assert cfg.optimizer.lr == 0.05
    assert cfg.optimizer.weight_decay == 0.1
    assert cfg.data.batch_size == 16
    assert cfg.trainer.max_epochs == 3


def literals(args: dict) -> dict:
    """The arguments a YAML sets to a value of its own: not markers (`_target_`), not values
    interpolated from the knobs, not null (the library's default, which it fills in)."""
    return {
        k: v
        for k, v in args.items()
        if not k.startswith("_") and v is not None and not (isinstance(v, str) and "${" in v)
    }


# Where an optimizer keeps an argument under another name.
KEPT_AS = {("dadapt_adam", "d0"): "d"}


@pytest.mark.parametrize("name", options("optimizer"))
def test_every_optimizer_config_builds_its_optimizer(name, tmp_path):
    cfg = compose_cfg([f"optimizer={name}", "lr=0.01"], tmp_path)
    model = torch.nn.Linear(3, 2)
    optimizer = build_optimizer(OmegaConf.to_container(cfg.optimizer, resolve=True), model)
    assert optimizer.param_groups[0]["lr"] == 0.01
    # The name's words are the class's, in any order (schedulefree_adamw: AdamWScheduleFree).
    assert all(word in type(optimizer).__name__.lower() for word in name.split("_"))
    # Every value the YAML sets is the optimizer's (lists come back as tuples).
    for key, value in literals(load_option("optimizer", name)[2]).items():
        kept = optimizer.defaults[KEPT_AS.get((name, key), key)]
        assert (list(kept) if isinstance(kept, tuple) else kept) == value, key
    # Its state goes into checkpoints, which must load the safe way.

    def closure() -> torch.Tensor:  # SAM and L-BFGS need one; Lightning always passes it
        loss = model(torch.ones(4, 3)).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    torch.save(optimizer.state_dict(), tmp_path / "optimizer.pt")
    torch.load(tmp_path / "optimizer.pt", weights_only=True)


@pytest.mark.parametrize("name", options("scheduler"))
def test_every_scheduler_config_carries_its_interval_and_arguments(name, tmp_path):
    cfg = compose_cfg([f"scheduler={name}"], tmp_path)
    cfg = OmegaConf.to_container(cfg, resolve=True)["scheduler"]
    assert cfg["interval"] in ("step", "epoch")
    trainer = type("T", (), {"estimated_stepping_batches": 100})()
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    scheduler = build_scheduler(cfg, optimizer, trainer)
    if name == "none":
        assert scheduler is None
        return
    assert (scheduler["interval"], scheduler["frequency"]) == (cfg["interval"], cfg["frequency"])
    assert scheduler.get("monitor") == cfg["monitor"]
    built = scheduler["scheduler"]
    # Every value the YAML sets is the scheduler's; OneCycleLR keeps its own in the LRs.
    args = literals(load_option("scheduler", name)[2]["scheduler"])
    if name == "onecycle":
        peak = cfg["scheduler"]["max_lr"]  # the effective lr
        group, start = optimizer.param_groups[0], peak / args["div_factor"]
        assert (group["initial_lr"], group["max_lr"]) == (pytest.approx(start), peak)
        assert group["min_lr"] == pytest.approx(start / args["final_div_factor"])
        assert built._schedule_phases[0]["end_step"] == args["pct_start"] * 100 - 1
        assert built._anneal_func_type == args["anneal_strategy"]
    else:
        for key, value in args.items():
            kept = getattr(built, key)
            assert (sorted(kept.elements()) if key == "milestones" else kept) == value, key
    if name in ("onecycle", "wsd"):
        assert built.total_steps == 100  # filled from the trainer
    if name == "cosine":
        assert built.T_max == 100
    if name in ("linear", "polynomial"):
        assert built.total_iters == 100


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
