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


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path, config: dict) -> str | None:
    """The file to resume from (None for a fresh run), checked to fit the current config."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        path = output_dir / LAST_CHECKPOINT
        if not path.is_file():
            raise UserError(
                f"ckpt_path=last: no earlier run with these overrides has {LAST_CHECKPOINT} "
                f"under {output_dir.parent}; run without ckpt_path to start one"
            )
    else:
        path = Path(ckpt_path)
    saved = load_checkpoint(path)["hyper_parameters"].get("config", {})
    for group in ("model", "data"):
        trained_with = saved.get(group, {}).get("_target_")
        if trained_with != config[group]["_target_"]:
            raise UserError(
                f"checkpoint {path} was trained with {group} {trained_with}, "
                f"not {config[group]['_target_']}: pick the matching {group}=... override"
            )
    if saved.get("model") != config["model"]:
        raise UserError(f"checkpoint {path} has another model shape: {saved.get('model')}")
    if saved.get("optimizer", {}).get("_target_") != config["optimizer"]["_target_"]:
        raise UserError(
            f"checkpoint {path} holds {saved.get('optimizer', {}).get('_target_')} state, not "
            f"{config['optimizer']['_target_']}: resume with the optimizer it was trained with"
        )
    return str(path)
