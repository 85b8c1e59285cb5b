"""Where runs and sweep trials live, as OmegaConf resolvers used by conf/hydra/default.yaml.

A run is named by its overrides, so `ckpt_path=last` can find the earlier run of the same
command, and a sweep trial always lands in the same directory (what makes sweeps resumable).
"""

import hashlib
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


# File systems refuse names over 255 bytes; keep room for a hash suffix.
MAX_NAME = 200


def trial_name(override_dirname: str) -> str:
    """`optimizer=adam,lr=0.001`; `default` without overrides. Slashes in values (paths) would
    nest directories, so they become underscores; a name too long for the file system is cut
    and suffixed with a hash of the whole, so it stays unique and the same for the same command.
    """
    name = override_dirname.replace("/", "_") or "default"
    if len(name.encode()) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = name.encode()[:MAX_NAME].decode(errors="ignore") + "-" + digest
    return name


def newest_run_with_checkpoint(runs_of_command: Path) -> Path | None:
    """Any checkpoint counts, not only last.ckpt: a kill can come between a run's first best
    checkpoint and its first last.ckpt, and the run then continues from the best one."""
    newest = {
        run: max(map(_mtime, checkpoints))
        for run in runs_of_command.glob("*")
        if (checkpoints := list((run / LAST_CHECKPOINT.parent).glob("*.ckpt")))
    }
    return max(newest, key=newest.get, default=None)


def _mtime(path: Path) -> float:
    """0 for a file gone since it was listed: a run still training replaces its best file."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def run_dir(base: str, override_dirname: str, stamp: str, ckpt_path: str | None) -> str:
    """A fresh `<base>/<overrides>/<stamp>`, or with `ckpt_path=last` the newest existing run
    of the same overrides that has a last.ckpt, so the resumed run continues in place."""
    runs_of_command = Path(base) / trial_name(override_dirname)
    if ckpt_path == "last" and (previous := newest_run_with_checkpoint(runs_of_command)):
        return str(previous)
    return str(runs_of_command / stamp)


def hydra_subdir(ckpt_path: str | None) -> str | None:
    """Where Hydra saves the composed config: `.hydra`, except when continuing a run in
    place, whose `.hydra` already describes it (and must survive a refused resume)."""
    return None if ckpt_path == "last" else ".hydra"


def experiment_name() -> str:
    """For trackers: a sweep's trials are runs of one experiment named after the sweep dir;
    single runs are runs of `runs`."""
    hydra = HydraConfig.get()
    return Path(hydra.sweep.dir).name if hydra.mode == RunMode.MULTIRUN else "runs"


def run_label(override_dirname: str) -> str:
    return override_dirname or "default"


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("experiment_name", experiment_name, replace=True)
    OmegaConf.register_new_resolver("run_label", run_label, replace=True)
    OmegaConf.register_new_resolver("run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver("hydra_subdir", hydra_subdir, replace=True)
    OmegaConf.register_new_resolver("trial_name", trial_name, replace=True)
