"""Checking a checkpoint before resuming from it, so a wrong file is one clear line instead of
a traceback from deep inside Lightning."""

from pathlib import Path

import torch

from optsweep.errors import UserError
from optsweep.run_dirs import LAST_CHECKPOINT

REQUIRED_KEYS = {"state_dict", "optimizer_states", "lr_schedulers", "loops", "hyper_parameters"}


def load_checkpoint(path: Path) -> dict:
    """The checkpoint dict, loaded the safe way (weights_only), as every one of ours allows."""
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises many types for a truncated or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"checkpoint {path} cannot be read (truncated, or not a PyTorch checkpoint: {reason})"
        ) from None
    if not isinstance(checkpoint, dict) or not checkpoint.keys() >= REQUIRED_KEYS:
        raise UserError(
            f"{path} is not an optsweep training checkpoint (no model + optimizer + loop state)"
        )
    return checkpoint


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> tuple[str | None, dict]:
    """The file to resume from (None for a fresh run) and the config it was trained with,
    checked to be a readable training checkpoint before any data is touched."""
    if ckpt_path is None:
        return None, {}
    if ckpt_path == "last":
        path = output_dir / LAST_CHECKPOINT
        if not path.is_file():
            raise UserError(
                f"ckpt_path=last: no earlier run with these overrides has {LAST_CHECKPOINT} "
                f"under {output_dir.parent}; run without ckpt_path to start one"
            )
    else:
        path = Path(str(ckpt_path))
    return str(path), load_checkpoint(path)["hyper_parameters"].get("config", {})


def _target(config: dict, *keys: str):
    for key in keys:
        config = (config or {}).get(key)
    return config


def check_compatible(path: str, saved: dict, config: dict, data_facts: dict) -> None:
    """Refuse a checkpoint whose weights or optimizer/scheduler state do not fit the current
    run (Lightning would raise a size-mismatch traceback, or silently mis-load a scheduler)."""
    for what, keys in {
        "model": ("model", "_target_"),
        "data": ("data", "_target_"),
        "optimizer": ("optimizer", "_target_"),
        "scheduler": ("scheduler", "scheduler", "_target_"),
    }.items():
        trained_with, now = _target(saved, *keys), _target(config, *keys)
        if trained_with != now:
            raise UserError(
                f"checkpoint {path} was trained with {what} {trained_with}, not {now}: "
                f"resume with the {what} it was trained with"
            )
    # The parameter groups of the optimizer state follow this knob.
    if saved.get("decay_1d_params", "unset") != config["decay_1d_params"]:
        raise UserError(
            f"checkpoint {path} was trained with decay_1d_params="
            f"{saved.get('decay_1d_params', '(before the knob existed)')}, not "
            f"{config['decay_1d_params']}: its optimizer state has other parameter groups"
        )
    # The optimizer's hyperparameters (lr, betas, ...) live in its state and Lightning restores
    # them from the checkpoint: a changed value would be silently ignored.
    changed = {
        key: (saved["optimizer"].get(key), value)
        for key, value in config["optimizer"].items()
        if saved["optimizer"].get(key) != value
    }
    if changed:
        listed = ", ".join(
            f"optimizer.{k}={old!r}, not {new!r}" for k, (old, new) in changed.items()
        )
        raise UserError(
            f"checkpoint {path} was trained with {listed}: resuming restores the optimizer "
            "with its old values; resume with the settings it was trained with"
        )
    if saved.get("model") != config["model"]:
        raise UserError(f"checkpoint {path} has another model shape: {saved.get('model')}")
    for key, value in data_facts.items():
        trained_with = saved.get("data", {}).get(key)
        if trained_with != value:
            raise UserError(
                f"checkpoint {path} was trained with data.{key}={trained_with!r}, "
                f"the data now gives {value!r}"
            )
