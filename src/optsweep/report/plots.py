"""The report's four charts, as PNG files. Colour is the optimizer everywhere (line style the
LR), so a glance across charts follows one optimizer; bare matplotlib Figures, no pyplot and
no display needed."""

import math
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from optsweep.report.trials import Trial
from optsweep.results import BROKEN, RANKED

LINE_STYLES = ("-", "--", ":", "-.")


def _colours(names: list[str]) -> dict[str, object]:
    palette = colormaps["tab10"]
    return {name: palette(i % 10) for i, name in enumerate(sorted(set(names)))}


def _optimizer(trial: Trial) -> str:
    return str(trial.choices.get("optimizer", "?"))


def _lr(trial: Trial) -> float | None:
    lr = trial.choices.get("lr")
    return float(lr) if isinstance(lr, int | float) and lr > 0 else None


def _axes(title: str, xlabel: str, ylabel: str):
    axes = Figure(figsize=(7, 4.5)).subplots()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    return axes


def _save(axes, path: Path) -> Path:
    axes.figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def per_epoch(trials: list[Trial], metric: str, title: str, path: Path) -> Path:
    """One line per trial: `metric` against epoch, one legend entry per (optimizer, LR)
    whatever the seeds; a trial that stopped early ends where it stopped, marked x."""
    colours = _colours([_optimizer(t) for t in trials])
    lrs = sorted({_lr(t) for t in trials} - {None})
    styles = {lr: LINE_STYLES[i % len(LINE_STYLES)] for i, lr in enumerate(lrs)}
    axes = _axes(title, "epoch", metric)
    labelled = set()
    for trial in trials:
        points = [(h["epoch"], h[metric]) for h in trial.history if h.get(metric) is not None]
        if not points:
            continue
        name, lr = _optimizer(trial), _lr(trial)
        label = f"{name} lr={lr:g}" if lr else name
        epochs, values = zip(*points, strict=True)
        axes.plot(
            epochs,
            values,
            color=colours[name],
            linestyle=styles.get(lr, "-"),
            marker="o",
            markersize=3,
            alpha=0.85,
            label=None if label in labelled else label,
        )
        labelled.add(label)
        if trial.status in BROKEN:
            axes.plot(epochs[-1], values[-1], "x", color=colours[name], markersize=9)
    if metric.endswith("loss") and labelled:
        axes.set_yscale("log")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if labelled:
        axes.legend(fontsize=8, ncol=2 if len(labelled) > 8 else 1)
    return _save(axes, path)


def lr_sensitivity(trials: list[Trial], metric: str, path: Path) -> Path:
    """Final `metric` against LR (log axis), one line per optimizer (mean over seeds); trials
    that diverged, stalled or failed are marked x on the top edge, where no value exists."""
    colours = _colours([_optimizer(t) for t in trials])
    free = {_optimizer(t) for t in trials if t.lr_free}
    xlabel = "learning rate" if not free else "learning rate, or lr multiplier if LR-free"
    if free and all(t.lr_free for t in trials):
        xlabel = "lr multiplier (LR-free)"
    axes = _axes(f"LR sensitivity: final {metric} (x: no result)", xlabel, metric)
    by_optimizer: dict[str, dict[float, list[float]]] = {}
    broken: list[tuple[str, float, str]] = []
    for trial in trials:
        lr, value = _lr(trial), trial.final(metric)
        if lr is None:
            continue
        if trial.status in RANKED and value is not None and math.isfinite(value):
            by_optimizer.setdefault(_optimizer(trial), {}).setdefault(lr, []).append(value)
        elif trial.status in BROKEN:
            broken.append((_optimizer(trial), lr, trial.status))
    for name, values in sorted(by_optimizer.items()):
        lrs = sorted(values)
        means = [sum(values[lr]) / len(values[lr]) for lr in lrs]
        label = f"{name} (LR-free: lr multiplier)" if name in free else name
        axes.plot(lrs, means, marker="o", color=colours[name], label=label)
    edge = axes.get_xaxis_transform()  # x in data, y in axes units: the top edge
    for name, lr, _ in broken:
        axes.plot(lr, 0.96, "x", color=colours[name], markersize=10, transform=edge)
    for lr, status in sorted({(lr, status) for _, lr, status in broken}):
        axes.annotate(
            status,
            (lr, 0.96),
            xycoords=edge,
            xytext=(6, -12),
            textcoords="offset points",
            fontsize=7,
        )
    if metric.endswith("loss") and by_optimizer:
        axes.set_yscale("log")
    axes.set_xscale("log")
    if by_optimizer:
        axes.legend(title="optimizer", fontsize=8)
    return _save(axes, path)


def lr_schedules(trials: list[Trial], path: Path) -> Path:
    """The LR each optimizer step used, one line per scheduler (its first trial with a
    metrics.csv), relative to that trial's effective lr, so schedules share one axis. An
    LR-free optimizer's steps are d * lr, d its own estimate: one line per such optimizer and
    scheduler, on a log axis of their own (right), since d spans decades."""
    axes = _axes("LR schedule applied, per optimizer step", "optimizer step", "LR / lr")
    free_axes = None
    shown = set()
    for trial in trials:
        scheduler = str(trial.choices.get("scheduler", "?"))
        key = f"{_optimizer(trial)}, {scheduler}" if trial.lr_free else scheduler
        steps, lr = trial.steps_lr(), trial.choices.get("effective_lr") or _lr(trial)
        if key in shown or not steps or not lr:
            continue
        shown.add(key)
        x, y = zip(*steps, strict=True)
        line = {"color": f"C{len(shown) - 1}"}  # one colour cycle over both axes
        if trial.lr_free:
            if free_axes is None:
                free_axes = axes.twinx()
                free_axes.set(yscale="log", ylabel="LR-free: d * LR / lr (log)")
            free_axes.plot(x, [v / lr for v in y], "--", label=f"{key} (right)", **line)
        else:
            axes.plot(x, [v / lr for v in y], label=key, **line)
    if shown:
        lines = axes.get_lines() + (free_axes.get_lines() if free_axes else [])
        axes.legend(lines, [line.get_label() for line in lines], title="scheduler", fontsize=8)
    return _save(axes, path)
