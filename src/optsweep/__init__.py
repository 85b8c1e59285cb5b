"""optsweep: find the best optimizer, learning rate and LR schedule for a model."""

from pathlib import Path

# The Hydra config tree, conf/ at the repository root. Absolute: a relative config_path would be
# taken as a Python package by Hydra. Here, not in optsweep.train, so that a command that only
# reads configs (python -m optsweep.study) does not load torch for it.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
