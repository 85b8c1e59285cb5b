"""The Hydra entry point: compose -> validate -> seed -> build -> fit/resume -> test -> result.json.

python train.py optimizer=adamp lr=3e-4 scheduler=onecycle
python train.py -m optimizer=adam,sgd,adamp lr=1e-3,1e-1
python train.py ckpt_path=last            # continue the last run of this command
"""

import logging
import shutil
import warnings
from contextlib import nullcontext
from pathlib import Path

from optsweep.frozen_imports import frozen_imports

# Run as a script (python -m optsweep.train: fresh trials, a study's sweeps), it loads torch,
# Lightning and Hydra with the garbage collector off and then freezes the process's objects
# (frozen_imports.py; the root train.py does the same around its import). Imported, it leaves
# the importer's collector and objects alone.
with frozen_imports() if __name__ == "__main__" else nullcontext():
    import hydra
    import pytorch_lightning as pl
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf
    from pytorch_lightning.callbacks import ProgressBar

    from optsweep import CONFIG_DIR, run_lock
    from optsweep.checkpoints import check_compatible, resolve_ckpt_path
    from optsweep.config_tree import show_config
    from optsweep.durable import remove_temp_files
    from optsweep.errors import UserError, exit_with, user_errors_unwrapped
    from optsweep.guards import DivergenceGuard, StallGuard, TrialStopped
    from optsweep.loggers import ContinueLogs
    from optsweep.lr_find import find_lr, report
    from optsweep.lr_free import is_lr_free
    from optsweep.lr_scaling import register_resolver as register_lr_resolver
    from optsweep.module import MODULES
    from optsweep.result_writer import ResultWriter
    from optsweep.results import COMPLETED, schedule_of
    from optsweep.run_dirs import register_resolvers
    from optsweep.script_exit import run_as_script
    from optsweep.sweep.trial import run_trial
    from optsweep.validate import check_knobs

GROUPS = ("data", "model", "optimizer", "scheduler", "trainer", "logger", "callbacks", "prune")
# Choices nested in a group's option, recorded where made: SAM's base optimizer.
NESTED_CHOICES = ("optimizer@optimizer.base",)
KNOBS_IN_RESULT = (
    *("lr", "effective_lr", "lr_scaling", "base_batch_size", "batch_size", "epochs", "seed"),
    *("weight_decay", "decay_1d_params", "min_lr", "warmup_steps", "warmup_epochs"),
    "warmup_start_factor",
)

log = logging.getLogger(__name__)

register_resolvers()
register_lr_resolver()

# Noise the user cannot act on: Lightning trips over a deprecation inside torch's pytree.
warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")


def _build_datamodule(data_cfg: DictConfig) -> pl.LightningDataModule:
    kwargs = {
        k: v for k, v in OmegaConf.to_container(data_cfg, resolve=True).items() if k != "task"
    }
    with user_errors_unwrapped():
        return instantiate(kwargs)


def _format_metrics(row: dict | None, keys: tuple[str, ...] = ("val/", "test/")) -> str:
    row = row or {}
    return " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith(keys) and v is not None)


def prepare(cfg: DictConfig) -> tuple[pl.LightningModule, pl.LightningDataModule, str | None]:
    """Checked knobs, seeded RNGs, the datamodule, the module, and the checkpoint to resume."""
    check_knobs(cfg)
    output_dir = Path(cfg.paths.output_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.mode == "lr_find" and cfg.ckpt_path:
        raise UserError("mode=lr_find tests fresh weights: run it without ckpt_path")
    ckpt_path, trained_config = resolve_ckpt_path(cfg.ckpt_path, output_dir)

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = _build_datamodule(cfg.data)
    data_facts = datamodule.describe()
    config["data"].update(data_facts)
    if ckpt_path:
        check_compatible(ckpt_path, trained_config, config, data_facts)
    with user_errors_unwrapped():  # the network refuses an input size it cannot take
        module = MODULES[cfg.data.task](config)
    # Only now, when nothing can refuse the run: a refused run leaves its dir as it was.
    show_config(config, output_dir)
    log.info(
        "effective lr %g (lr=%g, lr_scaling=%s, batch_size=%d, base_batch_size=%d)",
        *(cfg[k] for k in ("effective_lr", "lr", "lr_scaling", "batch_size", "base_batch_size")),
    )
    return module, datamodule, ckpt_path


def _pruning(cfg: DictConfig, hydra_cfg, choices: dict) -> pl.Callback:
    """The sweep's pruner, deciding for this trial (pruning.py)."""
    from optsweep.pruning import Pruning

    overrides = list(hydra_cfg.overrides.task)
    return Pruning(
        cfg.prune.pruner,
        metric=cfg.report.metric,
        sweep_dir=hydra_cfg.sweep.dir,
        trial_name=Path(cfg.paths.output_dir).name,
        schedule=schedule_of(choices, overrides),
        overrides=overrides,
    )


def fit(cfg: DictConfig) -> dict:
    hydra_cfg = HydraConfig.get()
    if cfg.prune.pruner and hydra_cfg.mode != RunMode.MULTIRUN:
        raise UserError("prune compares the trials of a sweep: run it with -m, or set prune=none")
    module, datamodule, ckpt_path = prepare(cfg)
    output_dir = Path(cfg.paths.output_dir)
    remove_temp_files(output_dir)  # of result.json or metrics.csv, left by a kill mid-write
    choices = {g: hydra_cfg.runtime.choices.get(g) for g in GROUPS}
    choices |= {
        g: hydra_cfg.runtime.choices[g] for g in NESTED_CHOICES if g in hydra_cfg.runtime.choices
    }
    choices |= {k: cfg[k] for k in KNOBS_IN_RESULT}
    choices["lr_free"] = is_lr_free(cfg.optimizer)  # the report reads its lr as a multiplier
    writer = ResultWriter(str(output_dir), list(hydra_cfg.overrides.task), choices)
    loggers = [instantiate(c) for c in (cfg.logger or {}).values()]
    guards = [
        DivergenceGuard(cfg.divergence.factor),
        StallGuard(cfg.stall.patience, cfg.stall.tolerance),
    ]
    # The guards come after the writer, so the epoch that stops a trial is in its history.
    # ContinueLogs keeps the loggers' history whole over resumes (see optsweep.loggers).
    callbacks = [instantiate(c) for c in cfg.callbacks.values()] + [writer, *guards]
    callbacks += [ContinueLogs()] if loggers else []
    callbacks += [_pruning(cfg, hydra_cfg, choices)] if cfg.prune.pruner else []
    if not cfg.trainer.get("enable_progress_bar", True):
        # Lightning refuses a progress bar callback with the bar off; the intent is clear.
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)

    # A crash, Ctrl-C or a guard's stop is recorded in result.json by ResultWriter.on_exception.
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    except TrialStopped:
        return writer.last
    test = {}
    if cfg.test:
        best = trainer.checkpoint_callback.best_model_path or None
        (test,) = trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)
    return writer.write(COMPLETED, test={k: float(v) for k, v in test.items()})


def _discard_if_untouched(output_dir: Path) -> None:
    """Remove a run dir that holds only what Hydra wrote before we refused the input."""
    if output_dir.is_dir() and {p.name for p in output_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(output_dir)
        if not any(output_dir.parent.iterdir()):
            output_dir.parent.rmdir()  # the <overrides> folder, if this was its only run


def run(cfg: DictConfig) -> float | None:
    """One run as the command line asks for it: an LR range test, or a fit and its outcome."""
    if cfg.mode == "lr_find":
        return report(find_lr(cfg, *prepare(cfg)[:2]), cfg)
    result = fit(cfg)
    best = result["best"] or {}
    if result["status"] != COMPLETED:  # stopped by a guard
        print(f"{result['status']}: {result['stopped']['reason']} | {_format_metrics(best)}")
        return None
    print(
        f"done: {result['checkpoints']['best']} | {_format_metrics(best, ('val/',))} "
        f"| {_format_metrics(result['test'])}"
    )
    return best.get(result["monitor"])


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return run_trial(cfg, run)
    output_dir = Path(cfg.paths.output_dir)
    try:
        # `ckpt_path=last` continues a run in place: not while another process trains it.
        with run_lock.hold(output_dir):
            return run(cfg)
    except run_lock.Busy as err:
        exit_with(err)  # the dir is the other process's: leave it as it is
    except UserError as err:
        _discard_if_untouched(output_dir)
        exit_with(err)


if __name__ == "__main__":  # python -m optsweep.train: fresh trials of `local`, a study's sweeps
    run_as_script(main)
