"""The optimizer benchmark: today's optimizers on the CIFAR-10 subset, each at its own best LR.

Two real sweeps (`python train.py -m ...`, hydra/launcher=local) under outputs/bench/optimizers/:
  lr/     each optimizer over its own 4-point LR grid (prodigy, LR-free, at lr=1 only);
  seeds/  each optimizer at the best LR of lr/, with seeds 0, 1, 2.
Both are ordinary sweeps with their own report. Every trial runs Lightning's SimpleProfiler, so
the time of a training epoch (with its validation) and of one optimizer step (its forward and
backward passes included) are read from the trial's fit-profile.txt, not from wall clocks that
include process start. The table goes to outputs/bench/optimizers.md, SAM's step time against
Adam's to optimizers.json (see figures.py).

    python bench/optimizers.py            # about 15 min on a 2-core CPU
    python bench/optimizers.py --quick    # a smoke run of the same steps (a few minutes)
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime

from figures import Figure, write
from sweeps import CIFAR_SUBSET, OUT, cpu_name, sweep

from optsweep.errors import UserError, exit_with
from optsweep.report.trials import Trial, higher_is_better, read_trials
from optsweep.results import RANKED
from optsweep.sweep.grid import settings_override

METRIC, ACCURACY = "train/mean_loss", "val/acc"
PROFILER = [
    "+trainer.profiler._target_=pytorch_lightning.profilers.SimpleProfiler",
    "+trainer.profiler.filename=profile",
]


@dataclass
class Entry:
    overrides: list[str]  # what picks the optimizer
    lrs: list[str]  # its LR grid: 4 points spaced by about 3x around where it usually works


# The LR grids follow each optimizer's usual range: Lion takes 3-10x less than Adam, SGD and SAM
# (both with momentum 0.9) about 30x more, Schedule-Free AdamW somewhat more than Adam.
ENTRIES = {
    "adam": Entry(["optimizer=adam"], ["3e-4", "1e-3", "3e-3", "1e-2"]),
    "sgd": Entry(["optimizer=sgd"], ["1e-2", "3e-2", "1e-1", "3e-1"]),
    "muon": Entry(["optimizer=muon"], ["3e-3", "1e-2", "3e-2", "1e-1"]),
    "schedulefree_adamw": Entry(["optimizer=schedulefree_adamw"], ["1e-3", "3e-3", "1e-2", "3e-2"]),
    "prodigy": Entry(["optimizer=prodigy"], ["1"]),
    "lion": Entry(["optimizer=lion"], ["3e-5", "1e-4", "3e-4", "1e-3"]),
    "sam(sgd)": Entry(["optimizer=sam"], ["1e-2", "3e-2", "1e-1", "3e-1"]),
}


# simple_cnn on the 4.7k-image subset at 16x16 pixels, a quarter of the compute of 32x32: at
# 32x32 an epoch takes about 20 s on one of this machine's cores, and the 46 trials would take
# over an hour.
def task(image_size: int) -> list[str]:
    return [
        "data=image_folder",
        f"data.root={CIFAR_SUBSET}",
        "model=simple_cnn",
        "batch_size=64",
        f"data.image_size={image_size}",
        "test=false",
        f"report.metric={METRIC}",
    ]


@dataclass
class Scale:
    epochs: int
    seeds: str
    entries: dict[str, Entry]
    task: list[str]


FULL = Scale(epochs=10, seeds="0,1,2", entries=ENTRIES, task=task(16))
QUICK = Scale(
    epochs=2,
    seeds="0,1",
    entries={name: Entry(e.overrides, e.lrs[1:3] or e.lrs) for name, e in ENTRIES.items()},
    task=task(8),
)


def entry_of(trial: Trial, entries: dict[str, Entry]) -> str:
    """The entry a trial ran: the one whose overrides it has (the most specific one)."""
    overrides = set(trial.result["overrides"])
    names = [name for name, e in entries.items() if set(e.overrides) <= overrides]
    return max(names, key=lambda name: len(entries[name].overrides))


def lr_of(trial: Trial) -> str:
    return next(o.split("=", 1)[1] for o in trial.result["overrides"] if o.startswith("lr="))


def final(trial: Trial, metric: str) -> float | None:
    return trial.final(metric) if trial.status in RANKED else None


def profile(trial: Trial) -> dict[str, float]:
    """Mean seconds of a training epoch and of an optimizer step, from SimpleProfiler's table."""
    text = (trial.dir / "fit-profile.txt").read_text()
    means = {}
    for action, key in (("run_training_epoch", "epoch"), (r"\S*\.optimizer_step", "step")):
        match = re.search(rf"\|\s+{action}\s+\|\s+([0-9.e-]+)", text)
        if match:
            means[key] = float(match.group(1))
    return means


def best_lrs(trials: list[Trial], scale: Scale) -> dict[str, tuple[str, list[str]]]:
    """Each entry's best LR in the LR sweep, and notes (an LR on the grid's edge, none ranked)."""
    sign = -1 if higher_is_better(METRIC) else 1
    chosen = {}
    for name, entry in scale.entries.items():
        ranked = sorted(
            (sign * final(t, METRIC), lr_of(t))
            for t in trials
            if entry_of(t, scale.entries) == name and final(t, METRIC) is not None
        )
        if not ranked:
            exit_with(UserError(f"{name}: no trial of its LR grid completed; see the lr/ report"))
        lr = ranked[0][1]
        notes = []
        if len(entry.lrs) > 1 and float(lr) in (float(entry.lrs[0]), float(entry.lrs[-1])):
            notes.append("best LR on the grid's edge")
        chosen[name] = (lr, notes)
    return chosen


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4g} ± {std:.2g}"


def leaderboard(scale: Scale, seed_trials: list[Trial], chosen) -> list[dict]:
    """Each optimizer at its best LR over the seeds: final metrics, epoch and step times, best
    first."""
    rows = []
    for name in scale.entries:
        trials = [t for t in seed_trials if entry_of(t, scale.entries) == name]
        profiles = [profile(t) for t in trials]
        rows.append(
            {
                "name": name,
                "lr": chosen[name][0],
                "loss": [v for t in trials if (v := final(t, METRIC)) is not None],
                "acc": [v for t in trials if (v := final(t, ACCURACY)) is not None],
                "done": sum(t.status in RANKED for t in trials),
                "runs": len(trials),
                "epoch": statistics.median(p["epoch"] for p in profiles if "epoch" in p),
                "step": statistics.median(p["step"] for p in profiles if "step" in p),
            }
        )
    sign = -1 if higher_is_better(METRIC) else 1
    rows.sort(key=lambda r: sign * statistics.fmean(r["loss"]) if r["loss"] else float("inf"))
    return rows


def table(scale: Scale, lr_trials, rows: list[dict], chosen, run: dict) -> str:
    lines = [
        f"# Optimizer benchmark ({datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"`{run['command']}` on {os.cpu_count()} CPUs ({cpu_name()}), {run['minutes']:.0f} min in "
        f"all, hydra/launcher=local (2 trials at a time, one thread each); load average "
        f"{run['loads'][0]:.1f} at the start, {run['loads'][1]:.1f} at the end.",
        "",
        f"Task: {' '.join(scale.task)}, {scale.epochs} epochs. Sweeps and their reports: "
        "outputs/bench/optimizers/{lr,seeds}/.",
        "",
        f"## Each optimizer's LR grid (final {METRIC}, seed 42)",
        "",
        "| optimizer | " + " | ".join(f"lr {i + 1}" for i in range(4)) + " | best lr |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in scale.entries.items():
        cells = []
        for lr in entry.lrs:
            (trial,) = [
                t for t in lr_trials if entry_of(t, scale.entries) == name and lr_of(t) == lr
            ]
            value = final(trial, METRIC)
            cells.append(f"{lr}: {value:.4g}" if value is not None else f"{lr}: {trial.status}")
        cells += ["-"] * (4 - len(cells))
        lr, notes = chosen[name]
        note = f" ({', '.join(notes)})" if notes else ""
        lines.append(f"| {name} | {' | '.join(cells)} | {lr}{note} |")

    adam = next(r for r in rows if r["name"] == "adam")
    lines += [
        "",
        f"## Leaderboard: each at its best LR, seeds {scale.seeds}",
        "",
        f"Ranked by the mean final {METRIC}. Time: the median over the optimizer's seed trials of"
        " SimpleProfiler's mean `run_training_epoch` (training and validation) and mean "
        "`optimizer_step` (the step with its forward and backward passes), relative to adam.",
        "",
        f"| rank | optimizer | lr | {METRIC} | {ACCURACY} | completed | epoch s | epoch / adam |"
        " step s | step / adam |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rank, r in enumerate(rows, 1):
        lines.append(
            f"| {rank} | {r['name']} | {r['lr']} | {spread(r['loss'])} | {spread(r['acc'])} | "
            f"{r['done']}/{r['runs']} | {r['epoch']:.2f} | {r['epoch'] / adam['epoch']:.2f} | "
            f"{r['step'] * 1000:.1f} ms | {r['step'] / adam['step']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def figures(rows: list[dict]) -> list[Figure]:
    """The step time people ask about: SAM's (two forward and backward passes) against Adam's."""
    by_name = {r["name"]: r for r in rows}
    if "sam(sgd)" not in by_name:
        return []
    return [
        Figure(
            "optimizers",
            "sam(sgd) optimizer step with its passes, ms (median over its seeds)",
            by_name["sam(sgd)"]["step"] * 1000,
            "adam's, ms",
            by_name["adam"]["step"] * 1000,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 LRs, 2 epochs, 8x8 pixels")
    parser.add_argument(
        "--only", action="append", choices=list(ENTRIES), help="repeatable; adam always runs"
    )
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    if args.only:
        keep = {"adam", *args.only}  # adam: the reference of the time ratios
        scale = replace(scale, entries={n: e for n, e in scale.entries.items() if n in keep})
    if not (CIFAR_SUBSET / "train").is_dir():
        exit_with(UserError(f"no CIFAR-10 subset at {CIFAR_SUBSET}"))
    base = OUT / "optimizers"
    shutil.rmtree(base, ignore_errors=True)
    start, start_load = time.monotonic(), os.getloadavg()[0]
    common = [*scale.task, *PROFILER, f"epochs={scale.epochs}"]

    grid = [[*e.overrides, f"lr={lr}"] for e in scale.entries.values() for lr in e.lrs]
    print(f"LR grids: {len(grid)} trials x {scale.epochs} epochs ...", flush=True)
    sweep(base / "lr", [*common, settings_override(grid)])
    lr_trials = read_trials(base / "lr")
    chosen = best_lrs(lr_trials, scale)

    best = [[*e.overrides, f"lr={chosen[name][0]}"] for name, e in scale.entries.items()]
    print(f"best LRs with seed={scale.seeds}: {len(best)} settings ...", flush=True)
    sweep(base / "seeds", [*common, settings_override(best), f"seed={scale.seeds}"])

    run = {
        "command": " ".join(["python bench/optimizers.py", *sys.argv[1:]]),
        "minutes": (time.monotonic() - start) / 60,
        "loads": (start_load, os.getloadavg()[0]),
    }
    rows = leaderboard(scale, read_trials(base / "seeds"), chosen)
    write("optimizers", figures(rows), table(scale, lr_trials, rows, chosen, run))


if __name__ == "__main__":
    main()
