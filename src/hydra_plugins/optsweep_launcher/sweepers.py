"""optsweep's two sweepers (Hydra only accepts them from the `hydra_plugins` package).

`hydra/sweeper=grid`, the default (conf/hydra/default.yaml): Hydra's basic grid sweeper that
first refuses, before anything is written or trained, a grid in which two jobs would share a
trial dir (`-m logger=csv,tensorboard`: logger does not name trials), ranked by a report.metric
that no trial would log, or pruned with impossible settings; and says what a pruned comparison
of LR schedules means. It also takes explicit settings, each a list of quoted overrides crossed
with the grid (optsweep/sweep/grid.py), what a study's confirmation stage runs:
`hydra.sweeper.settings=[['scheduler=cosine','warmup_epochs=1'],['scheduler=none']] seed=0,1`.

`hydra/sweeper=trial`: what each child of the local launcher runs, its one trial. Unlike the
basic sweeper it does not save multirun.yaml: the sweep dir's multirun.yaml is the whole
sweep's, saved by the launcher's process before any trial starts, and what the report counts
the sweep's trials from, also while it runs and after its launcher was killed.
"""

from dataclasses import dataclass
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser

from optsweep.errors import UserError, exit_with
from optsweep.pruning import launch_order, note_schedules
from optsweep.sweep.grid import grid_jobs
from optsweep.sweep.trial_dirs import refuse_shared, trial_subdirs
from optsweep.validate import check_sweep


@dataclass
class GridSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.optsweep_launcher.sweepers.GridSweeper"
    # Lists of overrides, each crossed with the grid; null: the grid alone.
    settings: Any = None


@dataclass
class TrialSweeperConf(BasicSweeperConf):  # takes hydra.sweeper.params from a sweep overlay
    _target_: str = "hydra_plugins.optsweep_launcher.sweepers.TrialSweeper"


ConfigStore.instance().store(
    group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="optsweep"
)
ConfigStore.instance().store(
    group="hydra/sweeper", name="trial", node=TrialSweeperConf, provider="optsweep"
)


class GridSweeper(BasicSweeper):
    def __init__(self, max_batch_size=None, params=None, settings=None) -> None:
        super().__init__(max_batch_size, params)
        self.settings = [list(setting) for setting in settings or []]

    def split_arguments(self, overrides, max_batch_size):  # what BasicSweeper.sweep runs
        jobs = launch_order(self.config.prune, grid_jobs(overrides, self.settings))
        return list(self.split_overrides_to_chunks(jobs, max_batch_size))

    def sweep(self, arguments: list[str]):
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        # Composes every job, so it also does what validate_batch_is_legal would, for every
        # batch at once (a bad job is now reported before the sweep dir is made).
        try:
            jobs = grid_jobs(overrides, self.settings)
            subdirs = trial_subdirs(self.config, self.hydra_context, jobs, check=check_sweep)
            refuse_shared(jobs, subdirs)
        except UserError as err:
            exit_with(err)
        note_schedules(self.config.prune, jobs)
        return super().sweep(arguments)

    def validate_batch_is_legal(self, batch) -> None:
        """Done above: composing a job costs about 0.1 s, too much to do twice in a big grid."""


class TrialSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]):
        # The trial's overrides, as the launcher's process expanded them from the grid (and
        # from hydra.sweeper.params, which this sweeper leaves alone).
        (result,) = self.launcher.launch([arguments], initial_job_idx=0)
        _ = result.return_value  # raises what the trial raised, as the basic sweeper does
        return [result]
