"""What the benchmarks share: a command timed, a real sweep run as a user runs it, and the
machine it ran on."""

import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "outputs" / "bench"
# Where CI puts the shared data: beside the repository.
CIFAR_SUBSET = ROOT.parent / "shared" / "data" / "cifar10-subset"


def timed(command: list[str], log: Path) -> float:
    """Runs a command from the repository root (its output in `log`); its wall seconds."""
    start = time.monotonic()
    with open(log, "w") as out:
        done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command)} exited {done.returncode}; see {log}")
    return seconds


def sweep(sweep_dir: Path, overrides: list[str], launcher: str = "local") -> float:
    """Runs one real sweep into `sweep_dir` (its output in <sweep_dir>.log); its wall seconds."""
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "train.py",
        "-m",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={sweep_dir}",
        "trainer.enable_progress_bar=false",
        *overrides,
    ]
    return timed(command, sweep_dir.parent / f"{sweep_dir.name}.log")


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
