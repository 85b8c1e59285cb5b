"""The sweep report, from a small real sweep: two optimizers x two LRs x two seeds on an image
folder, where the large LR diverges and one trial raises. The report is written when the
multirun ends; `python -m optsweep.report` rewrites it, with another metric too."""

import csv
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import ROOT, TINY_OCR, results, run_cli, write_image_folder
from optsweep.report.render import write_report
from optsweep.report.trials import expected_trials

CHARTS = ("train_mean_loss.png", "val_metric.png", "lr_sensitivity.png", "lr_schedule.png")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    images = write_image_folder(root / "images")
    boom = ["+callbacks.boom._target_=killer.RaiseAtEpoch", "+callbacks.boom.epoch=1"]
    boom += ["+callbacks.boom.lr=0.02"]
    proc = run_cli(
        ["-m", "optimizer=sgd,adam", "lr=0.05,1e30", "seed=0,1", "data=image_folder"]
        + [f"data.root={images}", "model=simple_cnn", "batch_size=8", "trainer=cpu"]
        + [
            "trainer.log_every_n_steps=1",
            "epochs=3",
            "test=false",
            f"hydra.sweep.dir={root}/sweep",
        ],
        root,
    )
    # One more trial into the same sweep dir, that fails: lr=0.02 raises at epoch 1.
    run_cli(
        ["-m", "optimizer=sgd", "lr=0.02", "seed=0", "data=image_folder", f"data.root={images}"]
        + ["model=simple_cnn", "batch_size=8", "trainer=cpu", "epochs=3", "test=false", *boom]
        + [f"hydra.sweep.dir={root}/sweep"],
        root,
    )
    return root / "sweep", proc


def test_the_multirun_ends_with_a_report(sweep):
    sweep_dir, proc = sweep
    assert f"report: {sweep_dir}/report.md" in proc.stdout
    for name in ("results.csv", "report.md", "report.html", *CHARTS):
        assert (sweep_dir / name).is_file(), name


def test_results_csv_has_one_row_per_trial(sweep):
    sweep_dir, _ = sweep
    with open(sweep_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["completed"] * 4 + ["diverged"] * 4 + ["failed"]
    completed = [r for r in rows if r["status"] == "completed"]
    assert all(float(r["final:train/mean_loss"]) > 0 and r["checkpoint"] for r in completed)
    assert all(int(r["epochs"]) == 3 for r in completed)
    diverged = [r for r in rows if r["status"] == "diverged"]
    assert all(
        r["stopped_at"].startswith("step ") and r["reason"] == "loss is nan" for r in diverged
    )


def test_report_ranks_groups_over_seeds_and_lists_the_rest(sweep):
    sweep_dir, _ = sweep
    report = (sweep_dir / "report.md").read_text()
    board = report.split("## Leaderboard")[1].split("##")[0]
    ranked = [line for line in board.splitlines() if re.match(r"\| \d", line)]
    assert len(ranked) == 2  # sgd and adam at lr 0.05, each over two seeds
    means = [float(line.split("|")[3].split("±")[0]) for line in ranked]
    assert means == sorted(means) and all("(n=2)" in line for line in ranked)
    assert "**Best: " in report and "runner-up" in report
    rest = report.split("## Trials without a ranked result")[1].split("## Charts")[0]
    assert rest.count("| diverged |") == 4 and rest.count("| failed |") == 1
    assert "second line of the error" in rest


def test_charts_are_real_pngs_and_the_html_needs_no_network(sweep):
    sweep_dir, _ = sweep
    for name in CHARTS:
        data = (sweep_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert 400 < width < 2000 and 300 < height < 1500, (name, width, height)
    page = (sweep_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(CHARTS)
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)


def leaderboard_rows(report: str) -> list[tuple[int, dict[str, str], float, int]]:
    """(rank, setting, mean, n) per leaderboard row of report.md."""
    rows = []
    for line in report.split("## Leaderboard")[1].split("##")[0].splitlines():
        if match := re.match(r"\| (\d+) \| (.+?) \| ([-\d.e+]+)(?: ± \S+)? \(n=(\d+)\) \|", line):
            rank, setting, mean, n = match.groups()
            pairs = (item.split("=", 1) for item in setting.split(", "))
            rows.append((int(rank), dict(pairs), float(mean), int(n)))
    return rows


def final_values(sweep_dir: Path, setting: dict[str, str], metric: str) -> list[float]:
    """The final `metric` of each completed trial of a setting, read from its result.json."""
    return [
        result["final"][metric]
        for result in results(sweep_dir).values()
        if result["status"] == "completed"
        and setting.items() <= dict(o.split("=", 1) for o in result["overrides"]).items()
    ]


def write_final_values(sweep_dir: Path, metric: str, values: dict[str, list[float]]) -> None:
    """Sets the final `metric` of each optimizer's completed trials, seed by seed."""
    for path in sorted(sweep_dir.glob("*/result.json")):
        result = json.loads(path.read_text())
        if result["status"] == "completed":
            seed = result["choices"]["seed"]
            result["final"][metric] = values[result["choices"]["optimizer"]][seed]
            path.write_text(json.dumps(result))


def test_the_cli_reranks_it_by_another_metric(sweep, tmp_path):
    sweep_dir = shutil.copytree(sweep[0], tmp_path / "sweep")  # the shared sweep stays as it is
    by_loss = [
        setting["optimizer"]
        for _, setting, *_ in leaderboard_rows((sweep_dir / "report.md").read_text())
    ]
    # The trials learnt this task to the same accuracy: give the one the loss ranks first the
    # lower accuracy, so that the new ranking is the other way round.
    write_final_values(sweep_dir, "val/acc", {by_loss[0]: [0.6, 0.7], by_loss[1]: [0.8, 0.9]})
    proc = subprocess.run(
        [sys.executable, "-m", "optsweep.report", str(sweep_dir), "report.metric=val/acc"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "ranked by the final val/acc (higher is better)" in proc.stdout
    report = (sweep_dir / "report.md").read_text()
    rows = leaderboard_rows(report)
    assert [(rank, setting["optimizer"], n) for rank, setting, _, n in rows] == [
        (1, by_loss[1], 2),
        (2, by_loss[0], 2),
    ]
    for _, setting, mean, _ in rows:  # each mean over the seeds' result.json
        assert mean == pytest.approx(statistics.fmean(final_values(sweep_dir, setting, "val/acc")))
    best = ", ".join(f"{k}={v}" for k, v in rows[0][1].items())
    assert f"**Best: {best}**, final val/acc 0.85 ± 0.071 (n=2)" in report


@pytest.mark.parametrize("separated", [True, False])
def test_the_verdict_says_when_the_margin_is_inside_the_seed_spread(sweep, tmp_path, separated):
    # Two seeds each, std 0.1414 in both groups; margins of 0.15 and of 0.05.
    sweep_dir = shutil.copytree(sweep[0], tmp_path / "sweep")
    runner_up = [1.15, 1.35] if separated else [1.05, 1.25]
    write_final_values(sweep_dir, "train/mean_loss", {"sgd": [1.0, 1.2], "adam": runner_up})
    report = write_report(sweep_dir).path.read_text()
    rows = [(setting["optimizer"], mean) for _, setting, mean, _ in leaderboard_rows(report)]
    assert rows == [("sgd", pytest.approx(1.1)), ("adam", pytest.approx(sum(runner_up) / 2))]
    if separated:
        assert "inside the seed-to-seed spread" not in report
    else:
        assert (
            "Note: the margin (0.05) is inside the seed-to-seed spread (std up to 0.141); "
            "these two settings are not separated by this sweep."
        ) in report


def test_the_cli_refuses_a_metric_no_trial_logged_and_writes_nothing(sweep):
    sweep_dir, _ = sweep
    before = {p.name: p.stat().st_mtime_ns for p in sweep_dir.iterdir()}
    proc = subprocess.run(
        [sys.executable, "-m", "optsweep.report", str(sweep_dir), "report.metric=val/acx"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: report.metric=val/acx: no trial in {sweep_dir} logged it; they logged "
        "train/lr, train/mean_loss, val/acc, val/loss"
    ]
    assert {p.name: p.stat().st_mtime_ns for p in sweep_dir.iterdir()} == before


def test_a_sweep_still_running_says_what_is_missing(tmp_path):
    # A 3-trial sweep killed in its second trial: one result, one running, one not started.
    sweep_dir = tmp_path / "sweep"
    kill = ["+callbacks.killer._target_=killer.KillAtEpoch", "+callbacks.killer.epoch=1"]
    kill += ["+callbacks.killer.lr=2e-3"]
    run_cli(
        ["-m", "lr=1e-3,2e-3,3e-3", *TINY_OCR, "epochs=2", "test=false", *kill]
        + [f"hydra.sweep.dir={sweep_dir}"],
        tmp_path,
        check=False,
    )
    proc = subprocess.run(
        [sys.executable, "-m", "optsweep.report", str(sweep_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "Incomplete: 2 of the 3 trials the sweep asks for have started." in proc.stdout
    assert "1 trial(s) have no final result yet" in proc.stdout


def test_the_trial_count_takes_a_grid_value_from_the_command_line_over_the_params(tmp_path):
    # `-m sweep=default lr=1e-3`: the sweep's params grid optimizer x lr, with lr pinned to one
    # value on the command line, is 5 trials (multirun.yaml as the sweeper saved it).
    params = {"optimizer": "sgd,adam,adamw,adamp,madgrad", "lr": "1e-3,1e-2"}
    task = ["sweep=default", "lr=1e-3"]
    hydra = {"sweeper": {"params": params}, "overrides": {"task": task}}
    OmegaConf.save({"hydra": hydra}, tmp_path / "multirun.yaml")
    assert expected_trials(tmp_path) == 5
