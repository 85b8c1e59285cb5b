"""`hydra/launcher=local`: the Hydra side of optsweep's parallel launcher. Hydra only accepts
launchers from the `hydra_plugins` package; the work is in optsweep/sweep/launcher.py."""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher

from optsweep.errors import UserError, exit_with
from optsweep.sweep import launcher
from optsweep.sweep.preload import TrialServer


@dataclass
class LocalLauncherConf:
    _target_: str = "hydra_plugins.optsweep_launcher.local_launcher.LocalLauncher"
    # Trials at once. null: one per GPU slot (GPUs x trials_per_gpu), or 2 without GPUs.
    n_jobs: Any = None
    # GPU ids to spread trials over. null: every visible GPU (CUDA_VISIBLE_DEVICES or all).
    gpus: Any = None
    trials_per_gpu: int = 1
    # fork: each trial forked from a process that has imported torch, Lightning and optsweep
    # (about 1 s); fresh: a new interpreter per trial (6-7 s more), which sees code edited
    # while the sweep runs.
    start: str = "fork"


ConfigStore.instance().store(
    group="hydra/launcher", name="local", node=LocalLauncherConf, provider="optsweep"
)


class LocalLauncher(Launcher):
    def __init__(self, n_jobs=None, gpus=None, trials_per_gpu: int = 1, start="fork") -> None:
        self.n_jobs, self.gpus, self.trials_per_gpu = n_jobs, gpus, trials_per_gpu
        self.start = start

    def setup(self, *, hydra_context, task_function, config) -> None:
        try:  # here, before the sweeper writes the sweep dir
            launcher.check_settings(self.start, self.trials_per_gpu, self.n_jobs)
        except UserError as err:
            exit_with(err)
        self.hydra_context, self.config = hydra_context, config
        # Now, while this process has touched no GPU (the launch counts them); it serves every
        # batch of the sweep and ends with this process.
        self.server = TrialServer.fork() if self.start == "fork" else None

    def launch(self, job_overrides, initial_job_idx: int):
        return launcher.launch(
            self.config,
            self.hydra_context,
            job_overrides,
            initial_job_idx,
            gpus=list(self.gpus) if self.gpus is not None else None,
            trials_per_gpu=self.trials_per_gpu,
            n_jobs=self.n_jobs,
            server=self.server,
        )
