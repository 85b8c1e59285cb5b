"""The pruning benchmark: one grid with and without pruning, side by side in one run.

For each task it runs three kinds of real sweeps (`python train.py -m ...`, hydra/launcher=local)
under outputs/bench/pruning/<task>/:
  full/      the whole grid, every trial trained to the last epoch;
  pruned/    the same grid with prune=asha;
  seeds/...  the full grid's winner and runner-up (and the pruned winner, when it is neither)
             again with extra seeds, to measure how far a setting moves from seed to seed.
It reports the ratio of epochs trained, the ratio of wall time (pruned sweep / full sweep), and
whether pruning names the full grid's winner or one inside its seed spread, and writes the
table to outputs/bench/pruning.md (the two ratios also to pruning.json, see figures.py). A
task's dir is emptied first: a sweep dir that holds finished trials would skip them and measure
nothing.

    python bench/pruning.py                 # both tasks (about 80 min on a 2-core CPU)
    python bench/pruning.py --quick         # a smoke run of the same steps (a few minutes)
    python bench/pruning.py --task cifar    # one task
"""

import argparse
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime

from figures import Figure, write
from sweeps import CIFAR_SUBSET, OUT, cpu_name, sweep

from optsweep.errors import UserError, exit_with
from optsweep.report.trials import Group, Trial, higher_is_better, read_trials
from optsweep.results import RANKED

# The grid's axes; a setting is one value of each.
AXES = ("optimizer", "lr")
# The embedded generator cut to digits, 3 to 5 on a 96 px line (sizes below replace its own).
OCR_DIGITS = ["experiment=ocr_digits"]
CIFAR = ["data=image_folder", f"data.root={CIFAR_SUBSET}", "model=simple_cnn", "batch_size=64"]
REDUCTION_FACTOR = 3


@dataclass
class Task:
    overrides: list[str]
    epochs: int
    # ASHA's rungs fall at min_epochs * reduction_factor^k; none at the last epoch. With
    # epochs = min_epochs * 9 the rungs fall after 1/9 and 1/3 of the run.
    min_epochs: int


@dataclass
class Scale:
    grid: dict[str, str]  # axis -> comma-separated values
    seeds: str  # the extra seeds of the seed reruns (the grid itself runs the default seed)
    tasks: dict[str, Task]


FULL = Scale(
    grid={"optimizer": "sgd,adam,adamw,adamp,madgrad", "lr": "1e-4,1e-3,1e-2,1e-1"},
    seeds="0,1,2",
    tasks={
        # The default study's task as it is (1,200 lines of 3 to 5 digits, batch 16, 75 steps an
        # epoch). Its CTC loss sits on a plateau (about 2.7) for the first 2 to 3 epochs, and the
        # settings that end best leave it later than the fast, coarse ones: a rung inside the
        # plateau cuts them (after 1 epoch MADGRAD lr 1e-3 ranks 9th of 20, after 9 it ranks
        # 1st). So the first rung falls after 3 epochs and the run is 27 epochs long.
        "ocr": Task(OCR_DIGITS, epochs=27, min_epochs=3),
        # The 4.7k-image subset at 16x16 pixels: a quarter of the compute of 32x32. It has no
        # plateau; the ranking after 1 epoch already holds.
        "cifar": Task([*CIFAR, "data.image_size=16"], epochs=9, min_epochs=1),
    },
)
QUICK = Scale(
    grid={"optimizer": "sgd,adam", "lr": "1e-4,1e-2,1e-1"},
    seeds="0,1",
    tasks={
        "ocr": Task(
            [
                *OCR_DIGITS,
                "data.train_size=64",
                "data.val_size=32",
                "data.test_size=32",
                "batch_size=16",
            ],
            epochs=3,
            min_epochs=1,
        ),
        "cifar": Task([*CIFAR, "data.image_size=8"], epochs=3, min_epochs=1),
    },
)


def setting(trial: Trial) -> str:
    """A trial's grid point as overrides, e.g. `optimizer=adam lr=0.001`."""
    values = dict(o.split("=", 1) for o in trial.result["overrides"])
    return " ".join(f"{axis}={values[axis]}" for axis in AXES)


def ranked(trials: list[Trial], metric: str) -> list[tuple[float, str]]:
    """(final metric, setting) of the completed trials, best first."""
    sign = -1 if higher_is_better(metric) else 1
    values = [
        (t.final(metric), setting(t))
        for t in trials
        if t.status in RANKED and t.final(metric) is not None and math.isfinite(t.final(metric))
    ]
    return sorted(values, key=lambda v: sign * v[0])


def epochs_trained(trials: list[Trial]) -> int:
    return sum(t.result.get("epochs_completed", 0) for t in trials)


def bench_task(name: str, task: Task, scale: Scale, metric: str, reduction_factor: int) -> dict:
    base = OUT / "pruning" / name
    shutil.rmtree(base, ignore_errors=True)
    common = [*task.overrides, f"epochs={task.epochs}", f"report.metric={metric}"]
    grid = [f"{axis}={values}" for axis, values in scale.grid.items()]
    size = math.prod(len(v.split(",")) for v in scale.grid.values())
    prune = [
        "prune=asha",
        f"prune.min_epochs={task.min_epochs}",
        f"prune.reduction_factor={reduction_factor}",
    ]

    print(f"{name}: full grid, {size} trials x {task.epochs} epochs ...", flush=True)
    wall_full = sweep(base / "full", common + grid)
    print(f"{name}: full grid took {wall_full:.0f} s; the same grid pruned ...", flush=True)
    wall_pruned = sweep(base / "pruned", common + grid + prune)
    print(f"{name}: pruned grid took {wall_pruned:.0f} s", flush=True)

    full, pruned = read_trials(base / "full"), read_trials(base / "pruned")
    full_rank, pruned_rank = ranked(full, metric), ranked(pruned, metric)
    if not full_rank:
        sys.exit(f"error: no trial of {base / 'full'} completed with a {metric}")
    winner = full_rank[0][1]
    pruned_winner = pruned_rank[0][1] if pruned_rank else None

    # The seed reruns: each setting's grid trial (the default seed) plus the extra seeds.
    rerun = [s for _, s in full_rank[:2]]
    if pruned_winner and pruned_winner not in rerun:
        rerun.append(pruned_winner)
    spreads = {}
    for chosen in rerun:
        print(f"{name}: {chosen} with seed={scale.seeds} ...", flush=True)
        # Not named by its overrides: `=` and `,` in hydra.sweep.dir would need quoting.
        sweep_dir = base / "seeds" / chosen.replace("=", "-").replace(" ", "_")
        sweep(sweep_dir, [*common, *chosen.split(), f"seed={scale.seeds}"])
        values = [v for v, s in full_rank if s == chosen]
        values += [v for v, _ in ranked(read_trials(sweep_dir), metric)]
        spreads[chosen] = Group(chosen, trials=[], values=values)  # mean, std over seeds

    return {
        "task": name,
        "setup": task,
        "prune": prune,
        "trials": len(full),
        "pruned_trials": sum(t.status == "pruned" for t in pruned),
        "epochs_full": epochs_trained(full),
        "epochs_pruned": epochs_trained(pruned),
        "wall_full": wall_full,
        "wall_pruned": wall_pruned,
        "winner": winner,
        "pruned_winner": pruned_winner,
        "spreads": spreads,
        "verdict": judge(winner, pruned_winner, spreads, metric),
    }


def judge(winner: str, pruned_winner: str | None, spreads: dict, metric: str) -> tuple[bool, str]:
    """Same winner, or one within the seed spread: the pruned winner's mean over seeds is worse
    than the full winner's mean by at most one standard deviation of the full winner's seeds."""
    if pruned_winner is None:
        return False, "no pruned trial completed"
    if pruned_winner == winner:
        return True, "same winner"
    w, p = spreads[winner], spreads[pruned_winner]
    worse = (w.mean - p.mean) if higher_is_better(metric) else (p.mean - w.mean)
    inside = worse <= w.std
    return inside, (
        f"{'within' if inside else 'OUTSIDE'} the seed spread: mean {p.mean:.4g} vs "
        f"{w.mean:.4g} ± {w.std:.3g}"
    )


# The target: pruning trains at most this share of the full grid's epochs.
EPOCHS_TARGET = 0.40


def table(rows: list[dict], metric: str, scale: Scale, run: dict) -> str:
    lines = [
        f"# Pruning benchmark ({datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"`{run['command']}` on {os.cpu_count()} CPUs ({cpu_name()}), {run['minutes']:.0f} min in "
        f"all; load average {run['loads'][0]:.1f} at the start, {run['loads'][1]:.1f} at the end "
        "(the wall times depend on what else runs on the machine). Sweep dirs and logs: "
        "outputs/bench/pruning/<task>/.",
        "",
        f"Grid: {' x '.join(f'{a}={v}' for a, v in scale.grid.items())}, "
        f"hydra/launcher=local. Ranked by final {metric}.",
        "",
        *(
            f"- {r['task']}: {' '.join(r['setup'].overrides)}, {r['setup'].epochs} epochs; "
            f"pruned with {' '.join(r['prune'])}"
            for r in rows
        ),
        "",
        "| task | trials (pruned) | epochs full | epochs pruned | epochs ratio | wall full |"
        " wall pruned | wall ratio | full winner | pruned winner | winner check |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['trials']} ({r['pruned_trials']}) | {r['epochs_full']} | "
            f"{r['epochs_pruned']} | {r['epochs_pruned'] / r['epochs_full']:.0%} | "
            f"{r['wall_full']:.0f} s | {r['wall_pruned']:.0f} s | "
            f"{r['wall_pruned'] / r['wall_full']:.0%} | {r['winner']} | {r['pruned_winner']} | "
            f"{r['verdict'][1]} |"
        )
    lines += [
        "",
        f"Seed spread: each setting's final {metric} over its grid trial and seeds "
        f"{scale.seeds}. Criterion: the pruned winner is within the spread when its mean is worse"
        " than the full winner's mean by at most one standard deviation of the full winner's "
        "seeds.",
        "",
        "| task | setting | seeds completed | mean | std | values |",
        "|---|---|---|---|---|---|",
    ]
    runs = 1 + len(scale.seeds.split(","))  # the grid's trial and the extra seeds
    for r in rows:
        for name, s in r["spreads"].items():
            values = ", ".join(f"{v:.4g}" for v in s.values)
            lines.append(
                f"| {r['task']} | {name} | {len(s.values)}/{runs} | {s.mean:.4g} | "
                f"{s.std:.3g} | {values} |"
            )
    lines += [
        "",
        f"Targets: at most {EPOCHS_TARGET:.0%} of the full grid's epochs, and the same winner or "
        "one within the seed spread.",
    ]
    for r in rows:
        ratio = r["epochs_pruned"] / r["epochs_full"]
        epochs = "met" if ratio <= EPOCHS_TARGET else "MISSED"
        winner = "met" if r["verdict"][0] else "MISSED"
        lines.append(f"- {r['task']}: epochs {epochs} ({ratio:.0%}); winner {winner}.")
    return "\n".join(lines) + "\n"


def figures(rows: list[dict]) -> list[Figure]:
    """Per task: the epochs and the wall time of the pruned grid against the full grid's."""
    out = []
    for r in rows:
        task = r["task"]
        out.append(
            Figure(
                "pruning",
                f"{task}: epochs trained, prune=asha",
                r["epochs_pruned"],
                f"{task}: epochs of the full grid",
                r["epochs_full"],
                f"<= {EPOCHS_TARGET}",
            )
        )
        out.append(
            Figure(
                "pruning",
                f"{task}: sweep wall s, prune=asha",
                r["wall_pruned"],
                f"{task}: the full grid's wall s",
                r["wall_full"],
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small grid on tiny data")
    parser.add_argument("--task", choices=["ocr", "cifar"], action="append", help="repeatable")
    parser.add_argument("--metric", default="train/mean_loss", help="report.metric to rank by")
    parser.add_argument("--epochs", type=int, help="every task's epochs (default: the task's)")
    parser.add_argument(
        "--min-epochs", type=int, help="every task's prune.min_epochs (default: the task's)"
    )
    parser.add_argument(
        "--reduction-factor", type=int, default=REDUCTION_FACTOR, help="prune.reduction_factor"
    )
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    tasks = args.task or ["ocr", "cifar"]
    if "cifar" in tasks and not (CIFAR_SUBSET / "train").is_dir():
        exit_with(UserError(f"no CIFAR-10 subset at {CIFAR_SUBSET} (or use --task ocr)"))

    start, start_load = time.monotonic(), os.getloadavg()[0]
    rows = []
    for name in tasks:
        task = scale.tasks[name]
        task = replace(
            task,
            epochs=args.epochs or task.epochs,
            min_epochs=args.min_epochs or task.min_epochs,
        )
        rows.append(bench_task(name, task, scale, args.metric, args.reduction_factor))
    run = {
        "command": " ".join(["python bench/pruning.py", *sys.argv[1:]]),
        "minutes": (time.monotonic() - start) / 60,
        "loads": (start_load, os.getloadavg()[0]),
    }
    write("pruning", figures(rows), table(rows, args.metric, scale, run))


if __name__ == "__main__":
    main()
