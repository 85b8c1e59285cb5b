"""The sweep-wall benchmark: a 2x2 grid under the `local` launcher (trials side by side, one
per GPU, or 2 at a time with their share of the threads on a CPU) against the same grid under
Hydra's `basic` launcher (one trial after another, in the sweep's own process).

Tiny OCR trials, so that the fixed cost of a trial (its process, imports and data) weighs as it
does in a pruned or short sweep. The two take turns; each figure is the median wall time of its
sweeps, each into a fresh sweep dir under outputs/bench/sweep_wall/.

    python bench/sweep_wall.py            # 3 sweeps of each (a few minutes)
    python bench/sweep_wall.py --quick    # 1 of each
"""

import argparse
import os
import shutil
import statistics
import sys
from datetime import datetime

from figures import Figure, markdown_table, write
from sweeps import OUT, cpu_name, sweep

GRID = ["optimizer=adam,sgd", "lr=1e-3,1e-2"]
TINY_OCR = [
    *("data.train_size=640", "data.val_size=128", "data.test_size=128", "batch_size=64"),
    *("epochs=2", "trainer=cpu"),
]
LAUNCHERS = ("local", "basic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one sweep of each")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    base = OUT / "sweep_wall"
    shutil.rmtree(base, ignore_errors=True)
    start_load = os.getloadavg()[0]
    walls: dict[str, list[float]] = {launcher: [] for launcher in LAUNCHERS}
    for run in range(repeats):
        for launcher in LAUNCHERS:
            seconds = sweep(base / f"{launcher}-{run}", [*GRID, *TINY_OCR], launcher)
            walls[launcher].append(seconds)
            print(f"{launcher} sweep {run + 1}/{repeats}: {seconds:.1f} s", flush=True)

    what = " ".join(GRID + TINY_OCR)
    figure = Figure(
        "sweep_wall",
        f"2x2 grid under hydra/launcher=local, wall s (median of {repeats})",
        statistics.median(walls["local"]),
        "the same grid under hydra/launcher=basic",
        statistics.median(walls["basic"]),
    )
    markdown = "\n".join(
        [
            f"# Sweep wall ({datetime.now():%Y-%m-%d %H:%M})",
            "",
            f"`python bench/sweep_wall.py {' '.join(sys.argv[1:])}` on {os.cpu_count()} CPUs "
            f"({cpu_name()}): `python train.py -m {what}`, in turns; load average "
            f"{start_load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other work on "
            "the machine slows the basic launcher's trials, which use every core's thread, more "
            "than the local launcher's). Sweeps and logs: outputs/bench/sweep_wall/.",
            "",
            markdown_table([figure.row()]),
            "",
            "| launcher | " + " | ".join(f"sweep {i + 1}" for i in range(repeats)) + " |",
            "|---|" + "---|" * repeats,
            *(
                f"| {name} | " + " | ".join(f"{s:.1f} s" for s in seconds) + " |"
                for name, seconds in walls.items()
            ),
        ]
    )
    write("sweep_wall", [figure], markdown + "\n")


if __name__ == "__main__":
    main()
