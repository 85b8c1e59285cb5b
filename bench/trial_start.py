"""The trial-start benchmark: how long the `local` launcher takes from starting a trial to that
trial's first training step, with trials forked from the preloaded trial server (the default,
hydra.launcher.start=fork) against a fresh interpreter per trial (start=fresh, the yardstick).

Real sweeps of one tiny OCR trial each (`python train.py -m ...`, outputs/bench/trial_start/),
the two ways taking turns so that both see the same machine load. A trial's start is the time
of the launcher's `#N started` log line; its first step is when its first training batch begins
(FirstStep below, a callback the trial loads from this file). Between the two: the process's
start, Hydra composing the trial's config, building its data and model, and Lightning's sanity
check. The table goes to outputs/bench/trial_start.md, the figure to trial_start.json.

    python bench/trial_start.py            # 5 trials each way, about 3 min on a 2-core CPU
    python bench/trial_start.py --trials 2
"""

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import pytorch_lightning as pl
from figures import Figure, markdown_table, write
from sweeps import OUT, cpu_name, sweep

FIRST_STEP = "first_step.txt"  # in the trial dir: the wall time its first training batch began
TARGET = 1.5  # seconds, for a forked trial (issue 12)
TRIAL = [
    *("data.train_size=96", "data.val_size=32", "data.test_size=32", "batch_size=32"),
    *("trainer=cpu", "epochs=1", "test=false", "hydra.launcher.n_jobs=1"),
    "+callbacks.first_step._target_=trial_start.FirstStep",
]
STARTED = re.compile(r"^\[(\S+ \S+)\]\[HYDRA\] #0 started", re.MULTILINE)


class FirstStep(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == 0 and batch_idx == 0:
            (Path(trainer.default_root_dir) / FIRST_STEP).write_text(repr(time.time()))


def trial_start(sweep_dir: Path, start: str) -> float:
    """Seconds from the launcher starting the sweep's one trial to its first training step."""
    sweep(sweep_dir, [*TRIAL, f"hydra.launcher.start={start}"])
    log = sweep_dir.parent / f"{sweep_dir.name}.log"
    (started,) = STARTED.findall(log.read_text())
    (first_step,) = sweep_dir.glob(f"*/{FIRST_STEP}")
    started_at = datetime.strptime(started, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
    return float(first_step.read_text()) - started_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="trials each way (default 5)")
    parser.add_argument("--quick", action="store_true", help="3 trials each way")
    args = parser.parse_args()
    args.trials = 3 if args.quick else args.trials
    # The trials load FirstStep from this folder.
    bench = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [bench, os.environ.get("PYTHONPATH")]))
    base = OUT / "trial_start"
    shutil.rmtree(base, ignore_errors=True)
    loads = [os.getloadavg()[0]]
    seconds: dict[str, list[float]] = {"fork": [], "fresh": []}
    for i in range(args.trials):
        for start in ("fork", "fresh") if i % 2 else ("fresh", "fork"):
            seconds[start].append(trial_start(base / f"{start}-{i}", start))
            print(f"{start} #{i}: {seconds[start][-1]:.2f} s", flush=True)
    loads.append(os.getloadavg()[0])

    fork, fresh = (statistics.median(seconds[s]) for s in ("fork", "fresh"))
    figure = Figure(
        "trial start",
        f"launcher starting a trial to its first training step, forked (s, median of "
        f"{args.trials})",
        fork,
        "the same with a fresh interpreter per trial (hydra.launcher.start=fresh)",
        fresh,
        f"< {TARGET} s",
    )
    command = " ".join(["python bench/trial_start.py", *sys.argv[1:]])
    lines = [
        f"# Trial start ({datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"`{command}` on {os.cpu_count()} CPUs ({cpu_name()}); load average {loads[0]:.1f} at the "
        f"start, {loads[1]:.1f} at the end. One tiny OCR trial per sweep ({' '.join(TRIAL[:7])}),"
        " the two ways taking turns.",
        "",
        markdown_table([figure.row()]),
        "",
        "| start | " + " | ".join(f"trial {i + 1}" for i in range(args.trials)) + " | median |",
        "|---|" + "---|" * (args.trials + 1),
    ]
    for start, values in seconds.items():
        cells = " | ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {start} | {cells} | {statistics.median(values):.2f} s |")
    write("trial_start", [figure], "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
