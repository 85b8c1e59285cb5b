"""Where each job of a multirun will train, known before any job runs: the local launcher
starts each trial there, and the sweeper refuses a grid in which two jobs would share one."""

from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from optsweep.errors import UserError


def trial_subdirs(
    config: DictConfig,
    hydra_context,
    jobs,
    first_index: int = 0,
    check: Callable[[DictConfig], None] | None = None,
) -> list[str]:
    """Each job's trial dir under the sweep dir, as Hydra's launchers name it: the job's config
    composed as they compose it (hydra.job.override_dirname, then hydra.sweep.subdir). `check`
    sees each composed job config: what a job sweeps (`data=a,b`) is only in its own."""
    before = HydraConfig.instance().cfg
    subdirs = []
    try:
        for index, overrides in enumerate(jobs, start=first_index):
            job_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
            with open_dict(job_config):
                job_config.hydra.job.num = index
            HydraConfig.instance().set_config(job_config)  # `${hydra:...}` in the subdir
            if check:
                check(job_config)
            subdirs.append(str(job_config.hydra.sweep.subdir))
    finally:
        HydraConfig.instance().cfg = before
    return subdirs


def refuse_shared(jobs, subdirs: list[str]) -> None:
    """A UserError if two jobs would train in one trial dir: they would interleave their
    checkpoints, or under the basic launcher the second would find the first's trial finished
    and skip it, so that one of the two settings asked for would silently never run."""
    first_job: dict[str, list[str]] = {}
    for job, subdir in zip(jobs, subdirs, strict=True):
        other = first_job.setdefault(subdir, list(job))
        if other != list(job):
            only_other = [o for o in other if o not in job]
            only_this = [o for o in job if o not in other]
            keys = sorted({o.split("=", 1)[0].lstrip("+~") for o in only_other + only_this})
            raise UserError(
                f"{' '.join(only_other)} and {' '.join(only_this)} would train in one trial dir "
                f"({subdir}): {', '.join(keys)} does not name trials "
                "(hydra.job.config.override_dirname.exclude_keys); run one sweep for each, "
                "with its own hydra.sweep.dir"
            )
