"""The end-of-sweep console summary is the report's ranking: its leaderboard by report.metric
(seeds grouped), its verdict, and the trials it does not rank, counted. Trials are result.json
files written through the real schema (results.new_result), read by the real Hydra callback."""

import json
import re

import pytest
from omegaconf import OmegaConf

from helpers import console_leaderboard, console_not_ranked
from optsweep.results import COMPLETED, DIVERGED, FAILED, RESULT_FILE, new_result
from optsweep.sweep.summary import SweepSummary

# (optimizer, lr, seed, status, final train/mean_loss, final val/acc). Ranked by the training
# loss, adam 0.1 is best; ranked by val/acc, sgd 0.1 (mean of two seeds) is.
TRIALS = [
    ("adam", "0.1", 0, COMPLETED, 0.2, 0.5),
    ("adam", "0.001", 0, COMPLETED, 0.3, 0.6),
    ("sgd", "0.1", 0, COMPLETED, 0.4, 0.8),
    ("sgd", "0.1", 1, COMPLETED, 0.5, 0.7),
    ("sgd", "10", 0, FAILED, None, None),
    ("adam", "10", 0, DIVERGED, None, None),
]


def write_trial(sweep_dir, optimizer, lr, seed, status, loss, acc):
    overrides = [f"optimizer={optimizer}", f"lr={lr}", f"seed={seed}"]
    history = [
        {"epoch": e, "train/mean_loss": loss + 1 - e, "val/acc": acc - 0.1 + 0.1 * e}
        for e in range(2)
        if loss is not None
    ]
    result = new_result(
        status,
        overrides,
        choices={"optimizer": optimizer, "lr": float(lr), "seed": seed, "scheduler": "none"},
        history=history,
        wall_seconds=5.0,
    )
    trial_dir = sweep_dir / ",".join(sorted(overrides))
    trial_dir.mkdir(parents=True)
    (trial_dir / RESULT_FILE).write_text(json.dumps(result))


def end_of_sweep(sweep_dir, metric: str, capsys) -> str:
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}, "report": {}})
    config.report.metric = metric
    SweepSummary().on_multirun_end(config)
    return capsys.readouterr().out


def report_settings(sweep_dir) -> list[str]:
    """The settings of report.md's leaderboard, in its order."""
    board = (sweep_dir / "report.md").read_text().split("## Leaderboard")[1].split("##")[0]
    return [line.split(" | ")[1] for line in board.splitlines() if re.match(r"\| \d", line)]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            "val/acc",
            ["lr=0.1, optimizer=sgd", "lr=0.001, optimizer=adam", "lr=0.1, optimizer=adam"],
        ),
        ("train/mean_loss", ["lr=0.1, optimizer=adam", "lr=0.001, optimizer=adam"]),
    ],
)
def test_the_console_ranks_as_the_report_does(tmp_path, capsys, metric, expected):
    for trial in TRIALS:
        write_trial(tmp_path, *trial)
    out = end_of_sweep(tmp_path, metric, capsys)
    board = console_leaderboard(out)
    settings = [row[1] for row in board]
    assert settings[: len(expected)] == expected
    assert settings == report_settings(tmp_path)  # one ranking: the console's is the report's
    assert [row[0] for row in board] == ["1", "2", "3"]
    # The seeds of sgd 0.1 are one row, as mean ± std over them.
    (sgd,) = [row for row in board if row[1] == "lr=0.1, optimizer=sgd"]
    assert sgd[2] == ("0.75 ± 0.071 (n=2)" if metric == "val/acc" else "0.45 ± 0.071 (n=2)")
    assert f"Best: {expected[0]}, final {metric} " in out
    assert console_not_ranked(out) == {"diverged": 1, "failed": 1}
    assert f"report: {tmp_path / 'report.md'} and {tmp_path / 'report.html'}" in out


def test_the_console_shows_the_top_ten_settings(tmp_path, capsys):
    for i in range(12):
        write_trial(tmp_path, "adam", f"{i + 1}e-3", 0, COMPLETED, 0.1 * (i + 1), 0.5)
    out = end_of_sweep(tmp_path, "train/mean_loss", capsys)
    board = console_leaderboard(out)
    assert [row[1] for row in board] == [f"lr={i + 1}e-3" for i in range(10)]
    assert "(10 of 12 settings; all in report.md)" in out
    assert console_not_ranked(out) == {}


def test_a_failed_report_says_how_to_redo_it(tmp_path, capsys):
    for trial in TRIALS:
        write_trial(tmp_path, *trial)
    out = end_of_sweep(tmp_path, "val/acx", capsys)
    assert out.strip() == (
        f"sweep {tmp_path}: report failed (report.metric=val/acx: no trial in {tmp_path} logged "
        f"it; they logged train/mean_loss, val/acc); retry: python -m optsweep.report {tmp_path}"
    )
