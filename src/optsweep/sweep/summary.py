"""Prints one line per trial when a multirun ends, read from each trial's result.json.

Trials are ranked by their last-epoch train/mean_loss, the figure optimizer comparisons use.
"""

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from optsweep.errors import last_line
from optsweep.report.render import write_report
from optsweep.results import COMPLETED, RESULT_FILE, STOPPED, read_result, where_stopped

MEAN_LOSS = "train/mean_loss"


def summary_lines(sweep_dir: Path) -> list[str]:
    results = [
        (path.parent.name, result)
        for path in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"))
        if (result := read_result(path.parent)) is not None
    ]

    def final_mean_loss(result: dict) -> float | None:
        return (result.get("final") or {}).get(MEAN_LOSS)

    def rank(item):
        name, result = item
        value = final_mean_loss(result)
        return (result["status"] != COMPLETED, value is None, value or 0.0, name)

    lines = []
    for name, result in sorted(results, key=rank):
        final = result.get("final") or {}
        metrics = " ".join(
            f"{k}={v:.4f}"
            for k, v in final.items()
            if (k == MEAN_LOSS or k.startswith("val/")) and v is not None
        )
        stopped = f" (stopped: {where_stopped(result)})" if result["status"] in STOPPED else ""
        lines.append(
            f"{name:<40} {result['status']:<10} epochs={result['epochs_completed']:<3} "
            f"{metrics} wall={result['wall_seconds']:.0f}s{stopped}"
        )
    return lines


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        lines = summary_lines(sweep_dir)
        print(f"\nsweep {sweep_dir}: {len(lines)} trials, lowest final {MEAN_LOSS} first")
        print("\n".join(lines))
        try:
            report = write_report(sweep_dir, config.report.metric)
        except Exception as err:  # the trials' results are on disk: the report can be redone
            print(
                f"\nreport failed ({last_line(err)}); retry: python -m optsweep.report {sweep_dir}"
            )
            return
        print(f"\nreport: {report} and {report.with_suffix('.html')}")
