"""Checks of a whole multirun before any trial starts: a mistake in the command is one
`error:` line and exit 2 then, not N failed trials or a report that ranks nothing at the end."""

import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from optsweep.errors import UserError
from optsweep.validate import check_report_metric


class SweepChecks(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            check_report_metric(config)
        except UserError as err:
            # Nothing is on disk yet: the sweeper creates the sweep dir after this hook.
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
