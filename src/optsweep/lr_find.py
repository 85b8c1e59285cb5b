"""`mode=lr_find`: an LR range test (Smith, 2017) with the chosen optimizer and its config.

Lightning's own finder runs the test: it takes the optimizer our configure_optimizers built
from the partial config, swaps our scheduler for an exponential ramp from lr_find.min_lr to
lr_find.max_lr, and restores weights and optimizer afterwards. Lightning issue 19949 (the
finder wants an `lr` attribute on the model) concerns only `update_attr=True`, writing the
suggestion back into the model; here the suggestion is printed and saved instead.

The suggestion is ours, not `finder.suggestion()`: Lightning takes the loss slope per unit of
LR, which on an exponential ramp is ruled by the first, tightly spaced points. On the default
task it picked 6.6e-6, where the loss is flat; the loss starts to fall only after 1e-4.
"""

import csv
import math
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from matplotlib.figure import Figure
from omegaconf import DictConfig
from pytorch_lightning.tuner import Tuner

from optsweep.durable import write_json_atomic

CURVE_CSV, CURVE_PNG, RESULT_JSON = "lr_find.csv", "lr_find.png", "lr_find.json"
# Lightning's smoothed loss starts too low (its bias correction is one step off: the first
# point is about half the true loss), so the first points say nothing about the LR.
SKIP_BEGIN = 10


def _usable(lrs: list[float], losses: list[float]) -> list[tuple[float, float]]:
    points = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    return points[SKIP_BEGIN:]


def lowest_loss_lr(lrs: list[float], losses: list[float]) -> float | None:
    points = _usable(lrs, losses)
    return min(points, key=lambda p: p[1])[0] if points else None


def steepest_descent(lrs: list[float], losses: list[float]) -> float | None:
    """The LR where the smoothed loss falls fastest per decade of LR, looked for between the
    first steps and the loss minimum; None when the curve is too short or never falls."""
    points = _usable(lrs, losses)
    if len(points) < 3:
        return None
    lowest = min(range(len(points)), key=lambda i: points[i][1])
    points = points[: lowest + 1]
    if len(points) < 3:
        return None
    log_lrs, values = np.log10([p[0] for p in points]), np.array([p[1] for p in points])
    slopes = np.gradient(values, log_lrs)
    steepest = int(np.argmin(slopes))
    return points[steepest][0] if slopes[steepest] < 0 else None


def _plot(lrs, losses, suggested: float | None, title: str, path: Path) -> None:
    # A bare Figure, not pyplot: no GUI backend and no global figure registry on a server.
    axes = Figure(figsize=(6, 4)).subplots()
    axes.plot(lrs, losses)
    axes.set_xscale("log")
    axes.set(title=title, xlabel="learning rate", ylabel="training loss (smoothed)")
    if suggested is not None:
        axes.plot(suggested, losses[lrs.index(suggested)], "o", color="red", markersize=8)
        axes.annotate(f"  suggested {suggested:.2g}", (suggested, losses[lrs.index(suggested)]))
    axes.figure.savefig(path, dpi=120, bbox_inches="tight")


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
    suggested = steepest_descent(lrs, losses)
    name = cfg.optimizer._target_.rsplit(".", 1)[-1]
    _plot(lrs, losses, suggested, f"LR range test: {name}", output_dir / CURVE_PNG)
    result = {
        "mode": "lr_find",
        "suggested_lr": suggested,
        "lowest_loss_lr": lowest_loss_lr(lrs, losses),
        "steps": len(lrs),
        "lr_range": [settings.min_lr, settings.max_lr],
        "curve": {"csv": str(output_dir / CURVE_CSV), "png": str(output_dir / CURVE_PNG)},
    }
    write_json_atomic(output_dir / RESULT_JSON, result)
    return result


def report(result: dict, cfg: DictConfig) -> float | None:
    """Print the suggestion and where the curve is; the suggestion is the return value."""
    suggested = result["suggested_lr"]
    if suggested is None:
        print(
            f"no suggestion: the test stopped after {result['steps']} steps (the loss diverged "
            "early?); widen lr_find.min_lr..max_lr or raise lr_find.steps"
        )
    else:
        # The test ran at this batch size; under a scaling rule, `lr` is that LR unscaled.
        as_typed = suggested * cfg.lr / cfg.effective_lr
        rule = f" (type lr={as_typed:.3g} with lr_scaling={cfg.lr_scaling})"
        print(
            f"suggested lr: {suggested:.3g}{rule if cfg.lr_scaling != 'none' else ''}, where the "
            f"smoothed loss falls fastest (it is lowest at {result['lowest_loss_lr']:.3g})"
        )
    print(f"curve: {result['curve']['png']} and {result['curve']['csv']}")
    return suggested
