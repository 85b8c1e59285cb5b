"""Sweep trials side by side on one machine: each trial in a process of its own, each process on
a GPU of its own (CUDA_VISIBLE_DEVICES), the rest queued until a GPU frees up.

Why not joblib or submitit's local executor: both hand every job the parent's environment, so
every trial lands on the same GPU (Hydra issue 2757), and joblib reuses worker processes, so
CUDA state outlives a trial. A trial here runs `python -m optsweep.train -m <its overrides>`: a
one-trial multirun in the same sweep dir, so it lands in the same trial dir and gets the same
skip/resume/failure handling (sweep/trial.py) as under any other launcher. By default its
process is forked from one that has already imported everything (sweep/preload.py);
`start=fresh` runs it in a new interpreter instead.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf

from optsweep import train
from optsweep.results import FAILED, RUNNING, mark_failed, status_of
from optsweep.sweep.grid import quoted
from optsweep.sweep.preload import ForkedTrial, TrialServer, die_with_parent
from optsweep.sweep.trial import finished
from optsweep.sweep.trial_dirs import trial_subdirs
from optsweep.validate import one_of, positive_int

log = logging.getLogger(__name__)

# A child runs its one trial with the basic launcher and the trial sweeper (which saves no
# multirun.yaml over the sweep's); the parent prints the summary.
CHILD_HYDRA_OVERRIDES = [
    "hydra/launcher=basic",
    "hydra/sweeper=trial",
    "~hydra.callbacks.sweep_summary",
]
# The parent's own Hydra overrides the children do not inherit: launcher and sweeper, and the
# trial's dir, which they get as the parent resolved it (`${now:...}` or `${hydra.job.num}` in
# it would resolve otherwise in a child).
NOT_INHERITED = ("hydra/launcher", "hydra.launcher", "hydra/sweeper", "hydra.sweeper")
NOT_INHERITED += ("hydra.sweep.dir", "hydra.sweep.subdir")


LOG_FILE = "launcher.log"  # a trial's console output, in its dir


@dataclass
class Trial:
    index: int
    overrides: list[str]
    sweep_dir: Path
    subdir: str

    @property
    def dir(self) -> Path:
        return self.sweep_dir / self.subdir


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else every GPU."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# Trials at once on a CPU-only machine unless n_jobs says otherwise: on a 2-core machine a
# 2x2 OCR grid took 74 s with 2 trials of 1 thread each, 89 s one after another with 2.
CPU_JOBS = 2


def slots(gpus: list[str], trials_per_gpu: int, n_jobs: int | None) -> list[str | None]:
    """One entry per trial that may run at once: a GPU id, or None on a CPU-only machine.
    GPUs are interleaved (0, 1, 0, 1), so k trials per GPU fill every GPU before doubling up."""
    if gpus:
        per_gpu = [gpu for _ in range(trials_per_gpu) for gpu in gpus]
        return per_gpu[: n_jobs or len(per_gpu)]
    return [None] * (n_jobs or CPU_JOBS)


# How a trial's process starts: forked from the trial server (preload.py), which takes about a
# second, or a new interpreter, which imports torch, Lightning and Hydra first (6-7 s): for code
# edited while the sweep runs, which forked trials do not see.
STARTS = ("fork", "fresh")


def _start(
    trial: Trial, gpu: str | None, threads: int, hydra_args: list[str], server: TrialServer | None
) -> subprocess.Popen | ForkedTrial:
    # No GPU for this trial: none visible, even on a machine that has some.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu or "")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    args = ["-m", *trial.overrides, *hydra_args]
    args.append(f"hydra.sweep.subdir={quoted(trial.subdir, always=True)}")
    trial.dir.mkdir(parents=True, exist_ok=True)
    if server:
        return server.start([train.__file__, *args], env, trial.dir / LOG_FILE)
    parent = os.getpid()
    with open(trial.dir / LOG_FILE, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "optsweep.train", *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C reaches the launcher only, which stops each child once.
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(parent),
        )


def _ended(trial: Trial, returncode: int) -> str:
    """The trial's status; a child that died without recording its end is marked failed."""
    status = status_of(trial.dir)
    if returncode != 0 and status in (None, RUNNING):
        lines = (trial.dir / LOG_FILE).read_text(errors="replace").strip().splitlines()
        error = f"process exited with {returncode}" + (f": {lines[-1]}" if lines else "")
        mark_failed(trial.dir, trial.overrides, error)
        return FAILED
    return status or f"exit {returncode}"


def _stop(running: dict) -> None:
    """SIGINT to each running trial, once: it records `interrupted` and exits."""
    for proc in running:
        proc.send_signal(signal.SIGINT)
    for proc in running:
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


def run_trials(
    trials: list[Trial],
    places: list[str | None],
    hydra_args: list[str],
    server: TrialServer | None,
) -> None:
    """Start trials as places free up (forked by `server`, or fresh without one); return when
    all have ended."""
    threads = max(1, _cpus() // len(places))
    pending, free = deque(trials), list(places)
    running: dict[subprocess.Popen | ForkedTrial, tuple[Trial, str | None, float]] = {}
    try:
        while pending or running:
            while pending and free:
                trial, gpu = pending.popleft(), free.pop(0)
                proc = _start(trial, gpu, threads, hydra_args, server)
                running[proc] = (trial, gpu, time.monotonic())
                where = f"GPU {gpu}" if gpu is not None else f"{threads} CPU threads"
                log.info("#%d started on %s: %s", trial.index, where, " ".join(trial.overrides))
            time.sleep(0.2)
            for proc in [p for p in running if p.poll() is not None]:
                trial, gpu, started = running.pop(proc)
                free.append(gpu)
                status = _ended(trial, proc.returncode)
                log.info(
                    "#%d %s after %.0fs: %s",
                    trial.index,
                    status,
                    time.monotonic() - started,
                    trial.dir.name,
                )
    except KeyboardInterrupt:  # Ctrl-C: it reaches this process only (see _start)
        _stop(running)
        print(
            f"\ninterrupted: {len(running)} running trial{'s' * (len(running) != 1)} stopped; "
            "run the same command again to continue them",
            file=sys.stderr,
        )
        sys.exit(130)
    except BaseException:  # an error here: the children stop and record it
        _stop(running)
        raise


def _gpu_list(gpus) -> list[str]:
    if gpus is None:
        return visible_gpus()
    if isinstance(gpus, str | int):  # hydra.launcher.gpus=0,1 typed without brackets
        gpus = str(gpus).split(",")
    return [str(g).strip() for g in gpus if str(g).strip()]


def check_settings(start, trials_per_gpu, n_jobs) -> None:
    """hydra.launcher's settings, checked before the sweep writes anything."""
    one_of("hydra.launcher.start", start, STARTS)
    positive_int("hydra.launcher.trials_per_gpu", trials_per_gpu)
    if n_jobs is not None:  # null: one trial per GPU slot
        positive_int("hydra.launcher.n_jobs", n_jobs)


def launch(
    config: DictConfig,
    hydra_context,
    job_overrides,
    initial_job_idx: int,
    gpus,
    trials_per_gpu: int,
    n_jobs: int | None,
    server: TrialServer | None,
) -> list[JobReturn]:
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = Path(config.hydra.sweep.dir).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    subdirs = trial_subdirs(config, hydra_context, job_overrides, initial_job_idx)
    trials = [
        Trial(index, list(filter_overrides(overrides)), sweep_dir, subdir)
        for index, (overrides, subdir) in enumerate(
            zip(job_overrides, subdirs, strict=True), start=initial_job_idx
        )
    ]
    places = slots(_gpu_list(gpus), trials_per_gpu, n_jobs)
    # A finished trial would only start a process to say so (sweep/trial.py): skip it here.
    todo = [trial for trial in trials if not finished(trial.dir)]
    log.info("%d trials to run, %d at a time, in %s", len(todo), len(places), sweep_dir)
    typed = OmegaConf.to_container(config.hydra.overrides.hydra)  # as typed, not resolved
    inherited = [o for o in typed if not o.lstrip("+~").startswith(NOT_INHERITED)]
    hydra_args = [
        *inherited,
        f"hydra.sweep.dir={quoted(str(sweep_dir), always=True)}",
        *CHILD_HYDRA_OVERRIDES,
    ]
    run_trials(todo, places, hydra_args, server)
    return [
        # A trial's own outcome (failed, diverged, ...) is in its result.json; a failed
        # JobReturn would make Hydra end the sweep.
        JobReturn(overrides=trial.overrides, working_dir=str(trial.dir), status=JobStatus.COMPLETED)
        for trial in trials
    ]
