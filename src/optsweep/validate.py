"""Early checks of the top-level knobs: one clear line before any data is touched."""

import math

from omegaconf import DictConfig

from optsweep.errors import UserError


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_number(name: str, value) -> None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number, got {name}={value!r}")


def _positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {name}={value!r}")


def check_knobs(cfg: DictConfig) -> None:
    _positive_number("lr", cfg.lr)
    _positive_int("batch_size", cfg.batch_size)
    _positive_int("epochs", cfg.epochs)
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise UserError(f"seed must be a non-negative integer, got seed={cfg.seed!r}")
    wd = cfg.weight_decay
    if not _is_number(wd) or not math.isfinite(wd) or wd < 0:
        raise UserError(f"weight_decay must be a number >= 0, got weight_decay={wd!r}")
    if cfg.model.task != cfg.data.task:
        raise UserError(
            f"model and data do not fit: the model is for {cfg.model.task}, "
            f"the data for {cfg.data.task} (pick e.g. model=crnn with OCR data, "
            "model=resnet18 or model=simple_cnn with image classification data)"
        )
