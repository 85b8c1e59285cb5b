"""The fault test's driver: one real training run SIGKILLed again and again, at random moments
and in the middle of checkpoint writes, each time continued with `ckpt_path=last`, then
finished; with $TMPDIR on another file system than the outputs (a tmpfs, as on clusters).

After every kill: last.ckpt is absent or loads with weights_only=True, result.json parses,
nothing was left in $TMPDIR, and the checkpoints dir does not pile up. After the end: the run
completed, its history and metrics.csv hold every epoch and step exactly once, and only
last.ckpt and the best checkpoint are left. `make chaos` runs it with 24 kills; the suite runs
a short form (tests/test_chaos.py).
"""

import csv
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from helpers import ROOT, cli_env, write_image_folder

# ResNet-18 with Adam: 134 MB per checkpoint, so writing one takes a visible share of an
# epoch of 3 batches. Guards off: the tiny data makes the loss jump, and the run must go on.
ARGS = [
    "model=resnet18",
    "data=image_folder",
    "batch_size=8",
    "trainer=cpu",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "test=false",
    "divergence.factor=null",
    "stall.patience=null",
]


@dataclass
class Tally:
    kills: int = 0
    mid_write: int = 0  # kills sent while a checkpoint file was being written
    readable: int = 0  # last.ckpt present and loadable after a kill
    absent: int = 0  # no last.ckpt yet after a kill
    corrupt: int = 0  # last.ckpt present but not loadable: must stay 0
    tmp_left: int = 0  # files left in $TMPDIR by killed processes: must stay 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"chaos: {self.kills} kills ({self.mid_write} during a checkpoint write), "
            f"last.ckpt readable {self.readable}, absent {self.absent}, corrupt {self.corrupt}, "
            f"temp files left {self.tmp_left}"
        )


def _run_dirs(outputs: Path) -> list[Path]:
    return sorted(p for p in outputs.glob("runs/*/*") if p.is_dir())


def _writing(checkpoints: Path, tmpdir: Path) -> bool:
    """A checkpoint write is under way: a temp file beside the checkpoints or in $TMPDIR."""
    beside = checkpoints.is_dir() and any(
        p.is_file() and not p.name.endswith(".ckpt") for p in checkpoints.iterdir()
    )
    return beside or any(p.is_file() for p in tmpdir.iterdir())


def _start(args: list[str], outputs: Path, tmpdir: Path, log) -> subprocess.Popen:
    resume = ["ckpt_path=last"] if list(outputs.glob("runs/*/*/checkpoints/last.ckpt")) else []
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args, *resume, f"paths.log_dir={outputs}"],
        cwd=outputs.parent,
        env={**cli_env(), "TMPDIR": str(tmpdir)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _last_saved(outputs: Path) -> float | None:
    """When the newest last.ckpt was written: it moves on once per epoch."""
    saved = [p.stat().st_mtime for p in outputs.glob("runs/*/*/checkpoints/last.ckpt")]
    return max(saved, default=None)


def _kill_at_a_moment(proc: subprocess.Popen, outputs: Path, tmpdir: Path, mid_write: bool):
    """SIGKILL as soon as a checkpoint write is seen, or at a random moment of the epoch after
    the run has saved one more epoch (so every such kill comes after progress). Returns
    whether the kill came during a write, or None if the run ended first."""
    saved_before, moment, seen_writing = _last_saved(outputs), None, False
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if mid_write:
            runs = _run_dirs(outputs)
            if runs and _writing(runs[-1] / "checkpoints", tmpdir):
                seen_writing = True
                time.sleep(random.uniform(0, 0.05))  # somewhere in the write
                break
        elif moment is None and _last_saved(outputs) != saved_before:
            moment = time.monotonic() + random.uniform(0, 3)
        elif moment is not None and time.monotonic() >= moment:
            break
        time.sleep(0.002)
    if proc.poll() is not None:
        return None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return seen_writing


def _check_after_kill(outputs: Path, tmpdir: Path, tally: Tally) -> None:
    leftovers = [p for p in tmpdir.rglob("*") if p.is_file()]
    tally.tmp_left += len(leftovers)
    for path in leftovers:  # counted once: the next kill's count starts from zero
        path.unlink()
    for run in _run_dirs(outputs):
        last = run / "checkpoints" / "last.ckpt"
        if not last.exists():
            tally.absent += 1
        else:
            try:
                torch.load(last, map_location="cpu", weights_only=True, mmap=True)
                tally.readable += 1
            except Exception as err:  # any failure to load is a corrupt checkpoint
                tally.corrupt += 1
                tally.problems.append(f"{last}: {err}")
        if (run / "result.json").exists():
            try:
                json.loads((run / "result.json").read_text())
            except json.JSONDecodeError as err:
                tally.problems.append(f"{run}/result.json: {err}")
        # The best-so-far, its successor and last.ckpt, and one temp file mid-write: no more.
        files = list((run / "checkpoints").glob("*")) if (run / "checkpoints").is_dir() else []
        if len(files) > 4:
            tally.problems.append(f"{run}/checkpoints piles up: {sorted(p.name for p in files)}")


def _check_finished_run(run: Path, epochs: int, tally: Tally) -> None:
    result = json.loads((run / "result.json").read_text())
    if result["status"] != "completed":
        tally.problems.append(f"the run ended {result['status']}")
    if [h["epoch"] for h in result["history"]] != list(range(epochs)):
        tally.problems.append(f"history epochs {[h['epoch'] for h in result['history']]}")
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    steps = Counter(int(r["step"]) for r in rows if r.get("train/loss"))
    per_epoch = Counter(int(r["epoch"]) for r in rows if r.get("val/loss"))
    mean_loss = Counter(int(r["epoch"]) for r in rows if r.get("train/mean_loss"))
    total_steps = max(steps) + 1 if steps else 0
    if sorted(steps) != list(range(total_steps)) or set(steps.values()) != {1}:
        missing = sorted(set(range(total_steps)) - set(steps))
        twice = sorted(s for s, n in steps.items() if n > 1)
        tally.problems.append(f"metrics.csv steps: missing {missing}, twice {twice}")
    if per_epoch != Counter(range(epochs)):
        tally.problems.append(f"metrics.csv val rows per epoch: {dict(per_epoch)}")
    if mean_loss != Counter(range(epochs)):
        tally.problems.append(f"metrics.csv train/mean_loss rows per epoch: {dict(mean_loss)}")
    left = sorted(p.name for p in run.rglob("*") if p.is_file() and "tmp" in p.name.lower())
    if left:
        tally.problems.append(f"temp files left in the run dir: {left}")
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    if len(checkpoints) != 2 or "last.ckpt" not in checkpoints:
        tally.problems.append(f"checkpoints left: {checkpoints}")


def run_chaos(workdir: Path, kills: int, tmpdir: Path, seed: int = 0) -> Tally:
    random.seed(seed)
    images = write_image_folder(workdir / "images")
    outputs = workdir / "outputs"
    # Enough epochs that the kills, half of them after an epoch of progress, leave some.
    epochs = kills + 4
    args = [*ARGS, f"epochs={epochs}", f"data.root={images}"]
    tally = Tally()
    with open(workdir / "chaos.log", "ab") as log:
        attempts = 0
        while tally.kills < kills and attempts < 3 * kills:
            attempts += 1
            proc = _start(args, outputs, tmpdir, log)
            killed = _kill_at_a_moment(proc, outputs, tmpdir, mid_write=attempts % 2 == 0)
            if killed is None:  # the run finished before the kill: the test then fails
                break
            tally.kills += 1
            tally.mid_write += killed
            _check_after_kill(outputs, tmpdir, tally)
        proc = _start(args, outputs, tmpdir, log)
        if proc.wait() != 0:
            tally.problems.append(f"the final run exited {proc.returncode}: see chaos.log")
    finished = [r for r in _run_dirs(outputs) if (r / "checkpoints" / "last.ckpt").exists()]
    if len(finished) != 1:
        tally.problems.append(f"expected one run with checkpoints, found {finished}")
    else:
        _check_finished_run(finished[0], epochs, tally)
    return tally


if __name__ == "__main__":
    import tempfile

    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory() as work, tempfile.TemporaryDirectory(dir=shm) as tmp:
        result = run_chaos(Path(work), kills, Path(tmp))
        print(result.line())
        print("\n".join(result.problems) or "no problems")
        sys.exit(1 if result.problems or result.corrupt or result.tmp_left else 0)
