"""Early checks of the top-level knobs: one clear line before any data is touched."""

import math

from omegaconf import DictConfig

from optsweep import lbfgs
from optsweep.errors import UserError
from optsweep.lr_scaling import RULES, lr_scale
from optsweep.module import MODULES
from optsweep.optim import stepping_cfg
from optsweep.wsd import DECAYS

MODES = ("train", "lr_find")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_number(name: str, value) -> None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number, got {name}={value!r}")


def positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {name}={value!r}")


def _non_negative_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UserError(f"{name} must be an integer >= 0, got {name}={value!r}")


def one_of(name: str, value, choices) -> None:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def _check_lr_knobs(cfg: DictConfig) -> None:
    _positive_number("lr", cfg.lr)
    one_of("lr_scaling", cfg.lr_scaling, tuple(RULES))
    positive_int("base_batch_size", cfg.base_batch_size)
    scale = lr_scale(cfg.lr_scaling, cfg.batch_size, cfg.base_batch_size)
    derived = {"effective_lr": (cfg.effective_lr, cfg.lr * scale)}
    optimizer = stepping_cfg(cfg.optimizer)  # SAM's base, or the optimizer itself
    if "lr_scale" in optimizer:  # optimizer=adam_to_sgd or muon
        derived["optimizer.lr_scale"] = (optimizer.lr_scale, scale)
    for name, (value, expected) in derived.items():
        if not _is_number(value) or not math.isclose(value, expected, rel_tol=1e-9):
            raise UserError(f"{name} is derived from lr, lr_scaling and base_batch_size: set those")
    if not _is_number(cfg.min_lr) or not 0 <= cfg.min_lr < cfg.effective_lr:
        raise UserError(
            f"min_lr must be >= 0 and below the LR ({cfg.effective_lr}), got min_lr={cfg.min_lr!r}"
        )
    if optimizer.get("adamw_lr") is not None:  # optimizer=muon
        _positive_number("optimizer.adamw_lr", optimizer.adamw_lr)
        if "max_lr" in (cfg.scheduler.scheduler or {}):
            raise UserError(
                "optimizer.adamw_lr cannot be kept by a scheduler with one peak LR for all "
                "param groups (max_lr): leave it null, or pick another scheduler"
            )
    if "switch_epoch" in optimizer:  # optimizer=adam_to_sgd
        _positive_number("optimizer.sgd_lr", optimizer.sgd_lr)
        switch = optimizer.switch_epoch
        if isinstance(switch, bool) or not isinstance(switch, int) or not 1 <= switch < cfg.epochs:
            raise UserError(
                f"optimizer.switch_epoch must be an integer from 1 to epochs-1={cfg.epochs - 1}, "
                f"got {switch!r}: the run would never switch to SGD"
            )


def _check_schedule_free(cfg: DictConfig) -> None:
    """A schedule-free optimizer's averaging is its schedule: another one on top would make the
    run neither schedule-free nor the schedule's (warmup is fine: a factor inside the step)."""
    scheduler = cfg.scheduler.get("scheduler")
    optimizer = stepping_cfg(cfg.optimizer)
    if optimizer.get("_schedule_free_") and scheduler is not None:
        raise UserError(
            f"{optimizer._target_} averages its iterates instead of following an LR schedule: "
            f"use scheduler=none (and warmup_steps or warmup_epochs for a warmup), "
            f"not {scheduler._target_}"
        )


def _check_warmup(cfg: DictConfig) -> None:
    _non_negative_int("warmup_steps", cfg.warmup_steps)
    _non_negative_int("warmup_epochs", cfg.warmup_epochs)
    if cfg.warmup_steps and cfg.warmup_epochs:
        raise UserError("set warmup_steps or warmup_epochs, not both")
    if cfg.warmup_epochs >= cfg.epochs:
        raise UserError(
            f"warmup_epochs={cfg.warmup_epochs} leaves no training after the warmup "
            f"(epochs={cfg.epochs})"
        )
    factor = cfg.warmup_start_factor
    if not _is_number(factor) or not 0 < factor <= 1:
        raise UserError(f"warmup_start_factor must be in (0, 1], got {factor!r}")


def _check_wsd(scheduler: DictConfig) -> None:
    if not scheduler or "decay_fraction" not in scheduler:
        return
    fraction = scheduler.decay_fraction
    if not _is_number(fraction) or not 0 <= fraction <= 1:
        raise UserError(f"scheduler.scheduler.decay_fraction must be in [0, 1], got {fraction!r}")
    one_of("scheduler.scheduler.decay", scheduler.decay, tuple(DECAYS))


def _check_lr_find(settings: DictConfig) -> None:
    _positive_number("lr_find.min_lr", settings.min_lr)
    _positive_number("lr_find.max_lr", settings.max_lr)
    if settings.min_lr >= settings.max_lr:
        raise UserError(
            f"lr_find.min_lr ({settings.min_lr}) must be below lr_find.max_lr ({settings.max_lr})"
        )
    positive_int("lr_find.steps", settings.steps)
    if settings.early_stop_threshold is not None:
        _positive_number("lr_find.early_stop_threshold", settings.early_stop_threshold)


def _check_guards(cfg: DictConfig) -> None:
    if cfg.divergence.factor is not None:
        _positive_number("divergence.factor", cfg.divergence.factor)
    if cfg.stall.patience is not None:
        positive_int("stall.patience", cfg.stall.patience)
    tolerance = cfg.stall.tolerance
    if not _is_number(tolerance) or not 0 <= tolerance < 1:
        raise UserError(f"stall.tolerance must be in [0, 1), got {tolerance!r}")


def check_report_metric(cfg: DictConfig) -> None:
    """The report ranks by a metric of the trials' history: a typo would rank nothing, after
    the whole sweep has run."""
    logged = MODULES[cfg.data.task].epoch_metrics()
    if cfg.report.metric not in logged:
        raise UserError(
            f"report.metric must be a metric that {cfg.data.task} trials log: "
            f"{', '.join(logged)}; got {cfg.report.metric!r}"
        )


def _check_prune(prune: DictConfig) -> None:
    if not prune.get("pruner"):
        return
    positive_int("prune.min_epochs", prune.min_epochs)
    one_of("prune.order", prune.order, ("shuffled", "typed"))
    factor = prune.get("reduction_factor", 2)
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 2:
        raise UserError(f"prune.reduction_factor must be an integer >= 2, got {factor!r}")


def check_sweep(cfg: DictConfig) -> None:
    """What a sweep checks in every job before it starts: a mistake here would show only once
    the whole sweep has run (the report), or fail every trial alike (the pruner)."""
    check_report_metric(cfg)
    _check_prune(cfg.prune)


def check_knobs(cfg: DictConfig) -> None:
    one_of("mode", cfg.mode, MODES)
    if cfg.mode == "lr_find":
        _check_lr_find(cfg.lr_find)
    positive_int("batch_size", cfg.batch_size)
    positive_int("epochs", cfg.epochs)
    _check_lr_knobs(cfg)
    _check_schedule_free(cfg)
    if cfg.optimizer.get("_target_") == "optsweep.sam.SAM":
        # Imported here: optsweep.sam imports pytorch_optimizer (1-2 s), which only a SAM run
        # should pay for at its start.
        from optsweep import sam

        sam.check(cfg)
    lbfgs.check(cfg)
    _check_warmup(cfg)
    _check_wsd(cfg.scheduler.scheduler)
    _check_guards(cfg)
    check_sweep(cfg)
    _non_negative_int("seed", cfg.seed)
    wd = cfg.weight_decay
    if not _is_number(wd) or not math.isfinite(wd) or wd < 0:
        raise UserError(f"weight_decay must be a number >= 0, got weight_decay={wd!r}")
    if not isinstance(cfg.decay_1d_params, bool):
        raise UserError(f"decay_1d_params must be true or false, got {cfg.decay_1d_params!r}")
    if cfg.model.task != cfg.data.task:
        raise UserError(
            f"model and data do not fit: the model is for {cfg.model.task}, "
            f"the data for {cfg.data.task} (pick e.g. model=crnn with OCR data, "
            "model=resnet18 or model=simple_cnn with image classification data)"
        )
