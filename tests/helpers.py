"""Test helpers: tiny configs composed through the real Hydra tree, tiny data written to
tmp_path, and a runner for the real `python train.py` command line."""

import contextlib
import csv
import hashlib
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Pipe
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from PIL import Image

from optsweep.sweep.preload import ForkedTrial, TrialServer
from optsweep.train import CONFIG_DIR, fit

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# A few batches of everything: seconds per fit on a 2-core CPU.
TINY_OCR = [
    "data.train_size=96",
    "data.val_size=32",
    "data.test_size=32",
    "batch_size=32",
    "trainer=cpu",
    "trainer.log_every_n_steps=1",
]

# A tiny image classification fit (data: write_image_folder) whose training batches the
# EvaluationProbe (killer.py) records.
PROBED_FIT = [
    *("data=image_folder", "model=simple_cnn", "batch_size=8", "trainer=cpu", "test=false"),
    *("trainer.log_every_n_steps=1", "+callbacks.probe._target_=killer.EvaluationProbe"),
]


def options(group: str) -> list[str]:
    """A config group's options: the names of its YAML files."""
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def compose_cfg(overrides: list[str], output_dir: Path | None):
    """The config `python train.py <overrides>` would get, with HydraConfig set as in a run,
    writing to `output_dir` (None: the run dir Hydra gives it)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir) if output_dir else cfg.hydra.run.dir
        del cfg.hydra
    return cfg


def metrics_rows(run_dir: Path) -> list[dict]:
    """Every row of a run's metrics.csv, in file order, empty cells left out."""
    with open(run_dir / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def logged_lrs(run_dir: Path) -> list[float]:
    """The LR of every optimizer step, as the step logged it (`train/lr` in metrics.csv)."""
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/lr")]
    return [float(r["train/lr"]) for r in sorted(rows, key=lambda r: int(r["step"]))]


def cli_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `train.py` the tests start (this process's now, or `environ`):
    tests/ importable (for killer.py), and PYTHONPATH prepended, not replaced, so a checkout on
    it (a worktree) keeps its sources."""
    environ = dict(os.environ if environ is None else environ)
    pythonpath = os.pathsep.join(filter(None, [str(TESTS), environ.get("PYTHONPATH")]))
    return {**environ, "PYTHONPATH": pythonpath, "COLUMNS": "200"}


def _cli(args: list[str], cwd: Path) -> list[str]:
    """The command line of `python train.py ...`, outputs under cwd/outputs."""
    # Flags (-m, --cfg) go first in args: argparse takes overrides only after them.
    return [sys.executable, str(ROOT / "train.py"), *args, f"paths.log_dir={cwd}/outputs"]


def results(sweep: Path) -> dict[str, dict]:
    """Each trial dir's result.json, by trial name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


def console_leaderboard(stdout: str) -> list[list[str]]:
    """The leaderboard a sweep prints when it ends: its rows, best first, as cells (rank,
    setting, final metric, epochs, wall)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank  setting  "))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith("("):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def console_not_ranked(stdout: str) -> dict[str, int]:
    """The trials the sweep's summary does not rank, counted by status."""
    line = next((ln for ln in stdout.splitlines() if ln.startswith("Not ranked: ")), None)
    if line is None:
        return {}
    counts = line.removeprefix("Not ranked: ").split(" (")[0].split(", ")
    return {status: int(n) for n, status in (c.split(" ", 1) for c in counts)}


# The environment the tests started in: the server's, whichever test first needs it.
_ENVIRONMENT = dict(os.environ)
_server: tuple[subprocess.Popen, TrialServer] | None = None


def _cli_server() -> TrialServer:
    """The server (tests/cli_server.py) this test process forks its `train.py` runs from,
    started on first use (again if it died) and ended with the process (it dies with its
    parent)."""
    global _server
    if _server is None or _server[0].poll() is not None:
        ours, theirs = Pipe()
        process = subprocess.Popen(
            [sys.executable, str(TESTS / "cli_server.py"), str(theirs.fileno())],
            cwd=ROOT,
            env=cli_env(_ENVIRONMENT),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        _server = process, TrialServer(ours, process.pid)
    return _server[1]


def start_cli(
    args: list[str], cwd: Path, output: Path, errors: Path | None = None, fresh: bool = False
) -> subprocess.Popen | ForkedTrial:
    """`python train.py ...` started in the background, its stdout and stderr into `output` (a
    file, not a pipe: a pipe nobody reads would stall a chatty run), or its stderr into `errors`.

    The process is forked from _cli_server, as the local launcher forks its trials: the same
    main on the same argv, in cwd, with this environment and exit code, without the 5 s of
    imports. `fresh=True` starts a new interpreter instead: for the tests of how a process
    starts, and of the command exactly as a user types it."""
    argv = _cli(args, cwd)
    if not fresh:
        for path in filter(None, (output, errors)):
            path.write_text("")  # the forked run appends, as trials do to their launcher.log
        return _cli_server().start(argv[1:], cli_env(), output, errors, cwd)
    with open(output, "w") as out, open(errors or os.devnull, "w") as err:
        stderr = err if errors else subprocess.STDOUT
        return subprocess.Popen(argv, cwd=cwd, env=cli_env(), stdout=out, stderr=stderr)


def run_cli(
    args: list[str], cwd: Path, check: bool = True, fresh: bool = False
) -> subprocess.CompletedProcess:
    """`python train.py ...` to its end (start_cli), outputs under cwd/outputs."""
    with tempfile.TemporaryDirectory() as console:
        out, err = Path(console) / "stdout", Path(console) / "stderr"
        process = start_cli(args, cwd, out, err, fresh)
        try:
            code = process.wait(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()  # not left training beside the tests that follow
            process.wait()
            raise
        proc = subprocess.CompletedProcess(args, code, out.read_text(), err.read_text())
    if check and proc.returncode != 0:
        raise AssertionError(
            f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def write_cifar_folder(root: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """A CIFAR-10 python-format folder (the same pickled batches) with random images."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def batch(name: str) -> None:
        labels = rng.integers(0, 10, per_batch).tolist()
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)

    for i in range(1, 6):
        batch(f"data_batch_{i}")
    batch("test_batch")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [*names, "truck"]}, f)
    return root


def write_image_folder(root: Path, classes=("circle", "square"), per_class: int = 12) -> Path:
    """An ImageFolder tree whose classes are visibly different, so a model can learn them."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8)
                pixels[10:30, 10:30, label] = 230  # a bright square in this class's channel
                Image.fromarray(pixels).save(root / split / name / f"{i:03d}.png")
    return root


def compose_run(overrides: list[str], cwd: Path):
    """The config `python train.py <overrides>` run in cwd gets, in the run dir Hydra would
    give it (conf/hydra/default.yaml): `outputs/runs/<overrides>/<stamp>`, or with
    `ckpt_path=last` the newest earlier run of these overrides."""
    return compose_cfg([*overrides, f"paths.log_dir={cwd}/outputs"], None)


@dataclass(frozen=True)
class Trained:
    dir: Path  # the run dir: read it, or copy it (shutil.copytree) to change anything in it
    result: dict  # what fit() returned
    printed: str  # what the fit printed on stdout


# One tiny OCR fit read by the fit, guards, tracking, predict, bad-input, re-run and run-dir
# tests.
# Its LR is small so that after its 6 steps the CRNN has not yet collapsed to CTC's all-blank
# output (at lr 1e-3 it has): predict then decodes text, which a preprocessing slip changes.
SHARED_OCR = [*TINY_OCR, "epochs=2", "lr=5e-5", "logger=tensorboard"]

_trained: dict[tuple[str, ...], Trained] = {}


def trained(overrides: list[str], tmp_path_factory) -> Trained:
    """The fit of `overrides`, run once per test process and shared by every test that asks
    for the same overrides, in any file (each pytest-xdist worker runs its own)."""
    key = tuple(overrides)
    if key not in _trained:
        run_dir = tmp_path_factory.mktemp("trained")
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            result = fit(compose_cfg(list(overrides), run_dir))
        _trained[key] = Trained(run_dir, result, printed.getvalue())
    return _trained[key]


def classifier_images(tmp_path_factory) -> Path:
    """write_image_folder's two classes, written once per test process."""
    root = tmp_path_factory.getbasetemp() / "classifier_images"
    return root if root.exists() else write_image_folder(root)


def _classifier(tmp_path_factory) -> list[str]:
    """simple_cnn on classifier_images, batches of 8, on the CPU."""
    data = ["data=image_folder", f"data.root={classifier_images(tmp_path_factory)}"]
    return [*data, "model=simple_cnn", "batch_size=8", "trainer=cpu"]


def trained_classifier(tmp_path_factory) -> Trained:
    """simple_cnn fitted on classifier_images, learnt well (4 epochs, no augmentation): read by
    the fit and predict tests."""
    overrides = [*_classifier(tmp_path_factory), "epochs=4"]
    overrides += ["data.augment=false", "data.val_fraction=0.25"]
    return trained(overrides, tmp_path_factory)


# Two classes, chance 0.5: stall.tolerance=0.5 calls every accuracy chance, 0.0 only an
# accuracy of exactly 0.5 or less (this task is learnt to > 0.5 in 3 epochs). Any training
# loss is above 0.01 x the first epoch's mean. So each guard alone stops this run, at its
# own place, and both set to null let it finish.
GUARDS = {
    "stalled": ["stall.patience=2", "stall.tolerance=0.5"],
    "completed": ["stall.patience=2", "stall.tolerance=0.0"],
    "diverged": ["stall.patience=2", "stall.tolerance=0.5", "divergence.factor=0.01"],
    "off": ["stall.patience=null", "stall.tolerance=0.5", "divergence.factor=null"],
}


def guarded_run(tmp_path_factory, *guards: str) -> Trained:
    """simple_cnn on classifier_images, sgd at lr 0.05 for 3 epochs, with the guard settings
    given (GUARDS): the runs test_guards checks, which test_rerun re-runs."""
    overrides = [*_classifier(tmp_path_factory), "optimizer=sgd", "lr=0.05", "epochs=3"]
    overrides += ["test=false", "trainer.log_every_n_steps=1", *guards]
    return trained(overrides, tmp_path_factory)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root, by its content: equal snapshots, nothing written, lost or added."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
