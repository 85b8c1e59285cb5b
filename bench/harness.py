"""The harness benchmark: what optsweep costs over a plain PyTorch loop doing the same work.

`python train.py` on the embedded OCR task against bench/plain_loop.py (same lines, CRNN, Adam,
batch size, workers, precision and threads; a validation pass and a checkpoint of model +
optimizer per epoch), each a fresh process timed from start to exit, run in turns so that a
change of load on the machine falls on both. The figure is the median wall time of each; the
ratio harness / plain is the overhead: process start and imports (Lightning, Hydra,
torchmetrics), the sanity validation, logging, result.json and the checkpoints (last and best,
written atomically). A second figure leaves start-up out: the run from after the imports and
the config (result.json's wall_seconds) against the plain loop's time after its imports.

What differs, and why it must: the harness also renders a 1-line test split (it renders every
split it is given; test=false skips testing), runs 2 sanity validation batches, and keeps a
best checkpoint beside last.ckpt. The plain loop has no progress bar; the harness runs with
trainer.enable_progress_bar=false. Both on the CPU. The plain loop runs as a script does: it
imports with the garbage collector on (6 full collections, about 0.3 s) and ends with the
interpreter's teardown of torch's modules (about 0.5 s). `python train.py` skips both
(optsweep/frozen_imports.py, optsweep/script_exit.py): what a user's process pays.

    python bench/harness.py              # 2 epochs of 3,000 lines, median of 5 (about 3 min here)
    python bench/harness.py --quick      # 2 epochs of 600 lines: start-up weighs more in it
    python bench/harness.py --threads 1  # both with 1 torch thread (default: torch's, per core);
                                         # steadier on a machine other work keeps busy
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from datetime import datetime

from figures import Figure, markdown_table, write
from sweeps import OUT, ROOT, cpu_name, timed


def cpu_seconds() -> float:
    """User + system seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="600 lines instead of 3,000")
    # 5, not 3: one run of either can be 10% slow here (page faults, the host's load), and
    # the median of 5 moves less with such runs.
    parser.add_argument("--repeats", type=int, default=5, help="runs of each, for the median")
    parser.add_argument("--threads", type=int, help="torch threads of both (default: torch's)")
    args = parser.parse_args()
    if args.threads:  # inherited by both processes, read by torch when it loads
        os.environ.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    train_size, val_size, epochs = (600, 200, 2) if args.quick else (3000, 1000, 2)
    base = OUT / "harness"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)

    def harness(run: int) -> list[str]:
        return [
            *(sys.executable, "train.py", f"data.train_size={train_size}"),
            *(f"data.val_size={val_size}", "data.test_size=1", f"epochs={epochs}", "test=false"),
            *("trainer=cpu", "trainer.enable_progress_bar=false", f"hydra.run.dir={base}/h{run}"),
        ]

    def plain(run: int) -> list[str]:
        return [
            *(sys.executable, "bench/plain_loop.py", f"--train-size={train_size}"),
            *(f"--val-size={val_size}", f"--epochs={epochs}", f"--out={base}/p{run}"),
        ]

    # Untimed: the first process to import torch and Lightning reads them from disk.
    subprocess.run([sys.executable, "-c", "import optsweep.train"], cwd=ROOT, check=True)
    walls: dict[str, list[float]] = {"harness": [], "plain": []}
    cpus: dict[str, list[float]] = {"harness": [], "plain": []}
    for run in range(args.repeats):
        for name, command in (("plain", plain(run)), ("harness", harness(run))):
            before = cpu_seconds()
            walls[name].append(timed(command, base / f"{name}-{run}.log"))
            cpus[name].append(cpu_seconds() - before)
            print(
                f"{name} run {run + 1}/{args.repeats}: {walls[name][-1]:.1f} s wall, "
                f"{cpus[name][-1]:.1f} s CPU",
                flush=True,
            )

    def plain_lines(run: int, prefix: str) -> list[str]:
        lines = (base / f"plain-{run}.log").read_text().splitlines()
        return [line.split(": ", 1)[1] for line in lines if line.startswith(prefix)]

    results = [
        json.loads((base / f"h{run}" / "result.json").read_text()) for run in range(args.repeats)
    ]
    # The run itself, from after the imports and the config (the harness's result.json counts
    # from before its trainer exists) to the end: what start-up adds is the rest.
    runs_only = {
        "harness": [result["wall_seconds"] for result in results],
        "plain": [float(plain_lines(run, "run: ")[0].split()[0]) for run in range(args.repeats)],
    }
    result = results[-1]
    plain_last = plain_lines(args.repeats - 1, "epoch ")[-1]
    work = f"{epochs} epochs of {train_size:,} lines (val {val_size:,}), batch 64, CPU"

    def medians(figure: str, seconds: dict[str, list[float]], yardstick: str, target=None):
        """The harness's runs against the plain loop's, each side by its median."""
        median = {name: statistics.median(values) for name, values in seconds.items()}
        figure = f"{figure} (median of {args.repeats})"
        return Figure("harness", figure, median["harness"], yardstick, median["plain"], target)

    figures = [
        medians(
            f"python train.py wall, s; {work}",
            walls,
            "plain PyTorch loop, same work (bench/plain_loop.py)",
            "<= 1.03",
        ),
        medians(
            "the run after imports and config, wall s",
            runs_only,
            "the plain loop's, after its imports",
        ),
        # CPU time counts no wait for a core: steadier than wall time on a busy machine.
        medians("python train.py CPU, s (user + system)", cpus, "the plain loop's"),
    ]
    final = result["final"]

    def runs(name: str) -> str:
        pairs = zip(walls[name], cpus[name], strict=True)
        return " | ".join(f"{wall:.1f} s / {cpu:.1f} s" for wall, cpu in pairs)

    pair_ratios = " | ".join(
        f"{h / p:.3f}" for h, p in zip(walls["harness"], walls["plain"], strict=True)
    )
    markdown = "\n".join(
        [
            f"# Harness overhead ({datetime.now():%Y-%m-%d %H:%M})",
            "",
            f"`python bench/harness.py {' '.join(sys.argv[1:])}` on {cpu_name()}: {work}, "
            "each run a fresh process, in turns.",
            "",
            markdown_table([f.row() for f in figures]),
            "",
            "| run (wall / CPU) | " + " | ".join(str(i + 1) for i in range(args.repeats)) + " |",
            "|---|" + "---|" * args.repeats,
            *(f"| {name} | {runs(name)} |" for name in walls),
            f"| harness / plain (wall) | {pair_ratios} |",
            "",
            "Each ratio of the last row is one pair, run back to back: their spread is this "
            "machine's noise, which the medians above damp.",
            "",
            "The same work, the last run of each: harness "
            f"train/mean_loss={final['train/mean_loss']:.4f} val/loss={final['val/loss']:.4f} "
            f"val/word_acc={final['val/word_acc']:.4f} val/cer={final['val/cer']:.4f} "
            f"threads={result['placement']['cpu_threads']}; "
            f"plain loop {plain_last} (the shuffles differ: Lightning's sampler "
            "is seeded per epoch).",
        ]
    )
    write("harness", figures, markdown + "\n")


if __name__ == "__main__":
    main()
