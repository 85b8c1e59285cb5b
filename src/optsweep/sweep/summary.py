"""When a multirun ends: write the sweep's report and print its summary, the one ranking of the
sweep (by report.metric, seeds grouped; see report/render.py)."""

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from optsweep.errors import last_line
from optsweep.report.render import write_report


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            report = write_report(sweep_dir, config.report.metric)
        except Exception as err:  # the trials' results are on disk: the report can be redone
            print(
                f"\nsweep {sweep_dir}: report failed ({last_line(err)}); retry: "
                f"python -m optsweep.report {sweep_dir}"
            )
            return
        print(f"\n{report.summary}")
