"""Sweep trials side by side on one machine: each trial in a fresh process, each process on a
GPU of its own (CUDA_VISIBLE_DEVICES), the rest queued until a GPU frees up.

Why not joblib or submitit's local executor: both hand every job the parent's environment, so
every trial lands on the same GPU (Hydra issue 2757), and joblib reuses worker processes, so
CUDA state outlives a trial. A trial here is a child `python -m optsweep.train -m <its
overrides>`: a one-trial multirun in the same sweep dir, so it lands in the same trial dir and
gets the same skip/resume/failure handling (sweep/trial.py) as under any other launcher.
"""

import ctypes
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
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, open_dict

from optsweep.callbacks import read_result
from optsweep.sweep.trial import FINISHED

log = logging.getLogger(__name__)

# A child runs its one trial with the basic launcher, and the parent prints the summary.
CHILD_HYDRA_OVERRIDES = ["hydra/launcher=basic", "~hydra.callbacks.sweep_summary"]
# The parent's own Hydra overrides the children do not inherit: their launcher, and the
# sweep dir, which they get resolved (a `${now:...}` in it would differ in a child).
NOT_INHERITED = ("hydra/launcher", "hydra.launcher", "hydra.sweep.dir")


@dataclass
class Trial:
    index: int
    overrides: list[str]
    dir: Path


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else every GPU."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


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


def _die_with_parent() -> None:
    # Linux: a child gets SIGTERM when the launcher dies, even by SIGKILL, instead of
    # training on unattended (it records `interrupted` and can be resumed).
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start(trial: Trial, gpu: str | None, threads: int, hydra_args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    command = [sys.executable, "-m", "optsweep.train", "-m", *trial.overrides, *hydra_args]
    trial.dir.mkdir(parents=True, exist_ok=True)
    with open(trial.dir / "launcher.log", "ab") as output:
        return subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )


def run_trials(trials: list[Trial], places: list[str | None], hydra_args: list[str]) -> None:
    """Start trials as places free up; return when all have ended."""
    threads = max(1, (os.cpu_count() or 1) // len(places))
    pending, free = deque(trials), list(places)
    running: dict[subprocess.Popen, tuple[Trial, str | None, float]] = {}
    try:
        while pending or running:
            while pending and free:
                trial, gpu = pending.popleft(), free.pop(0)
                running[_start(trial, gpu, threads, hydra_args)] = (trial, gpu, time.monotonic())
                where = f"GPU {gpu}" if gpu is not None else f"{threads} CPU threads"
                log.info("#%d started on %s: %s", trial.index, where, " ".join(trial.overrides))
            time.sleep(0.2)
            for proc in [p for p in running if p.poll() is not None]:
                trial, gpu, started = running.pop(proc)
                free.append(gpu)
                status = (read_result(trial.dir) or {}).get("status", f"exit {proc.returncode}")
                log.info(
                    "#%d %s after %.0fs: %s",
                    trial.index,
                    status,
                    time.monotonic() - started,
                    trial.dir.name,
                )
    finally:
        for proc in running:  # Ctrl-C or an error here: the children stop and record it
            proc.send_signal(signal.SIGINT)
        for proc in running:
            proc.wait()


def launch(
    config: DictConfig,
    hydra_context,
    job_overrides,
    initial_job_idx: int,
    gpus: list | None,
    trials_per_gpu: int,
    n_jobs: int | None,
) -> list[JobReturn]:
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep_dir = str(Path(config.hydra.sweep.dir).resolve())
    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    trials = []
    for index, overrides in enumerate(job_overrides, start=initial_job_idx):
        trial_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(trial_config):
            trial_config.hydra.job.num = index
        HydraConfig.instance().set_config(trial_config)  # so the trial's subdir resolves
        subdir = trial_config.hydra.sweep.subdir
        trials.append(Trial(index, list(filter_overrides(overrides)), Path(sweep_dir) / subdir))
    gpu_ids = [str(g) for g in gpus] if gpus is not None else visible_gpus()
    places = slots(gpu_ids, trials_per_gpu, n_jobs)
    # A finished trial would only start a process to say so (sweep/trial.py): skip it here.
    todo = [t for t in trials if (read_result(t.dir) or {}).get("status") not in FINISHED]
    for trial in trials:
        if trial not in todo:
            print(f"trial {trial.dir.name}: already {read_result(trial.dir)['status']}, skipped")
    log.info("%d trials to run, %d at a time, in %s", len(todo), len(places), sweep_dir)
    inherited = [o for o in config.hydra.overrides.hydra if not o.startswith(NOT_INHERITED)]
    hydra_args = [*inherited, f"hydra.sweep.dir={sweep_dir}", *CHILD_HYDRA_OVERRIDES]
    run_trials(todo, places, hydra_args)
    return [
        JobReturn(
            overrides=trial.overrides,
            working_dir=str(trial.dir),
            status=JobStatus.COMPLETED,  # a trial's own outcome is in its result.json
            _return_value=(read_result(trial.dir) or {}).get("status"),
        )
        for trial in trials
    ]
