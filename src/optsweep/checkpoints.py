"""Checking a checkpoint before resuming from it, so a wrong file is one clear line instead of
a traceback from deep inside Lightning; and choosing the checkpoint a run continues from."""

import logging
import pickle
import re
from pathlib import Path

import torch

from optsweep.errors import UserError
from optsweep.optim import keeps_run_length
from optsweep.run_dirs import LAST_CHECKPOINT

REQUIRED_KEYS = {"state_dict", "optimizer_states", "lr_schedulers", "loops", "hyper_parameters"}

log = logging.getLogger(__name__)


class UnreadableCheckpoint(UserError):
    """The file's content is no checkpoint we can resume from: cut short, foreign, or holding
    objects that could run code. (An I/O error is not this: the file may be fine.)"""


def load_checkpoint(path: Path) -> dict:
    """The checkpoint dict, loaded the safe way, as every one of ours allows. weights_only=True
    is passed explicitly: torch lets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turn weights-only off
    only for a call that leaves it unset (torch/serialization.py, load)."""
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except OSError as err:  # EIO, ESTALE, EACCES: the disk's state, not the file's content
        raise UserError(f"checkpoint {path} cannot be read: {err}") from None
    except Exception as err:  # torch raises many types for a truncated or foreign file
        refused = re.search(r"WeightsUnpickler error: (.+?)(\.\s|$)", str(err), re.MULTILINE)
        if isinstance(err, pickle.UnpicklingError) and refused:
            raise UnreadableCheckpoint(
                f"checkpoint {path} holds pickled objects other than tensors and plain "
                f"containers ({refused[1]}): loading it could run code, so optsweep does not"
            ) from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnreadableCheckpoint(
            f"checkpoint {path} cannot be read (truncated, or not a PyTorch checkpoint: {reason})"
        ) from None
    if not isinstance(checkpoint, dict) or not checkpoint.keys() >= REQUIRED_KEYS:
        raise UnreadableCheckpoint(
            f"{path} is not an optsweep training checkpoint (no model + optimizer + loop state)"
        )
    return checkpoint


def newest_readable(checkpoint_dir: Path) -> tuple[Path, dict]:
    """The checkpoint a run continues from, loaded: its last.ckpt, or when that cannot be read
    (cut short by a kill before writes were atomic, a damaged disk) the newest other checkpoint
    of the run that can, after saying so in one log line. UnreadableCheckpoint when none can;
    an I/O error is raised as it comes, rather than taken for a bad file and skipped."""
    last = checkpoint_dir / LAST_CHECKPOINT.name
    newest_first = sorted(
        checkpoint_dir.glob("*.ckpt"), key=lambda p: (p != last, -p.stat().st_mtime)
    )
    unreadable = [] if last.is_file() else [f"{last} is missing"]
    for path in newest_first:
        try:
            checkpoint = load_checkpoint(path)
        except UnreadableCheckpoint as err:
            unreadable.append(str(err))
            continue
        if unreadable:
            log.warning(
                "%s; resuming from %s, the newest one that can be read", unreadable[0], path
            )
        return path, checkpoint
    raise UnreadableCheckpoint(f"no checkpoint in {checkpoint_dir} can be read: {unreadable[-1]}")


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> tuple[str | None, dict]:
    """The file to resume from (None for a fresh run) and the config it was trained with,
    checked to be a readable training checkpoint before any data is touched."""
    if ckpt_path is None:
        return None, {}
    if ckpt_path == "last":
        checkpoint_dir = output_dir / LAST_CHECKPOINT.parent
        if not any(checkpoint_dir.glob("*.ckpt")):
            raise UserError(
                f"ckpt_path=last: no earlier run with these overrides has a checkpoint "
                f"under {output_dir.parent}; run without ckpt_path to start one"
            )
        path, checkpoint = newest_readable(checkpoint_dir)
    else:
        path = Path(str(ckpt_path))
        checkpoint = load_checkpoint(path)
    return str(path), checkpoint["hyper_parameters"].get("config", {})


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
    # Continued to another length, such a schedule would follow the old one: cosine climbs back
    # up past the old end, onecycle stops with a traceback.
    if saved.get("epochs") != config["epochs"] and keeps_run_length(config["scheduler"]):
        raise UserError(
            f"checkpoint {path} was trained for epochs={saved.get('epochs')} with a "
            f"{config['scheduler']['scheduler']['_target_']} whose state keeps that run length: "
            "continue it with the same epochs, or train with scheduler=wsd, which takes its "
            "length from the run it continues in"
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
