"""`mode=lr_find`: an LR range test (Smith, 2017) with the chosen optimizer and its config.

Lightning's own finder does the test: it takes the optimizer our configure_optimizers built
from the partial config, swaps our scheduler for an exponential ramp from lr_find.min_lr to
lr_find.max_lr, and restores weights and optimizer afterwards. Lightning issue 19949 (the
finder wants an `lr` attribute on the model) concerns only `update_attr=True`, writing the
suggestion back into the model; here the suggestion is printed and saved instead.
"""

import csv
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig
from pytorch_lightning.tuner import Tuner

from optsweep.callbacks import write_json_atomic

CURVE_CSV, CURVE_PNG, RESULT_JSON = "lr_find.csv", "lr_find.png", "lr_find.json"


def find_lr(
    cfg: DictConfig, module: pl.LightningModule, datamodule: pl.LightningDataModule
) -> dict:
    settings = cfg.lr_find
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # No epoch limit, so that only lr_find.steps (or divergence) ends the test; no logger or
    # checkpoints, which the finder would switch off during the test anyway.
    trainer: pl.Trainer = instantiate(
        cfg.trainer, max_epochs=-1, logger=False, enable_checkpointing=False, callbacks=[]
    )
    finder = Tuner(trainer).lr_find(
        module,
        datamodule=datamodule,
        min_lr=settings.min_lr,
        max_lr=settings.max_lr,
        num_training=settings.steps,
        mode="exponential",
        early_stop_threshold=settings.early_stop_threshold,
        update_attr=False,
    )
    lrs, losses = finder.results["lr"], finder.results["loss"]
    with open(output_dir / CURVE_CSV, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["lr", "smoothed_loss"])
        writer.writerows(zip(lrs, losses, strict=True))
    suggested = finder.suggestion()  # steepest descent of the smoothed loss; None if too short
    # A bare Figure, not pyplot: no GUI backend and no global figure registry on a server.
    axes = Figure(figsize=(6, 4)).subplots()
    finder.plot(suggest=suggested is not None, show=False, ax=axes)
    axes.set_title(f"LR range test: {cfg.optimizer._target_.rsplit('.', 1)[-1]}")
    axes.set_ylabel("training loss (smoothed)")
    axes.figure.savefig(output_dir / CURVE_PNG, dpi=120, bbox_inches="tight")
    result = {
        "mode": "lr_find",
        "suggested_lr": suggested,
        "steps": len(lrs),
        "lr_range": [settings.min_lr, settings.max_lr],
        "curve": {"csv": str(output_dir / CURVE_CSV), "png": str(output_dir / CURVE_PNG)},
    }
    write_json_atomic(output_dir / RESULT_JSON, result)
    return result
