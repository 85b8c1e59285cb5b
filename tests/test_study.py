"""Studies (python -m optsweep.study): stages that are real sweeps, the next grid derived from
the previous stage's winner, a re-run that trains nothing, and the guards. Tiny OCR, the basic
launcher (trials in the sweep's own process) to keep it quick."""

import subprocess
import sys

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from helpers import TINY_OCR, cli_env, results
from optsweep.errors import UserError
from optsweep.report.trials import expected_trials
from optsweep.study.plan import derive, load_study, log_points
from optsweep.sweep.grid import grid_jobs

TASK = ["hydra/launcher=basic", *TINY_OCR, "epochs=2", "test=false"]


def run_study(study: dict, cwd, *args: str) -> subprocess.CompletedProcess:
    path = cwd / "study.yaml"
    OmegaConf.save({"overrides": TASK, **study}, path)
    return subprocess.run(
        [sys.executable, "-m", "optsweep.study", str(path), f"study.dir={cwd}/study", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    "center, tried, expected, how",
    [
        (1e-3, [1e-4, 1e-3, 1e-2], [2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3], "refined around it"),
        (1e-4, [1e-4, 1e-3, 1e-2], [6.25e-6, 1.25e-5, 2.5e-5, 5e-5, 1e-4], "extended below"),
        (1e-2, [1e-4, 1e-3, 1e-2], [1e-2, 2e-2, 4e-2, 8e-2, 0.16], "extended above"),
        # Carried, not tried at several values: no edge to go past.
        (1e-3, [1e-3], [2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3], "refined around it"),
    ],
)
def test_an_lr_grid_refines_around_the_winner_or_goes_past_the_edge_it_sits_on(
    center, tried, expected, how
):
    values, note = log_points(center, tried, points=5, factor=2)
    assert values == pytest.approx(expected) and how in note


def test_a_confirmation_stage_runs_the_top_settings_of_the_previous_one_over_seeds(tmp_path):
    path = tmp_path / "study.yaml"
    stages = {
        "schedule": {"grid": {"scheduler": ["none", "cosine"], "warmup_epochs": [0, 1]}},
        "confirm": {"carry": ["lr"], "top": 2, "grid": {"seed": [0, 1, 2]}},
    }
    OmegaConf.save({"stages": stages}, path)
    study = load_study(path, [])
    previous = {
        "winner": {"lr": "0.002", "scheduler": "cosine", "warmup_epochs": "1"},
        "ranking": [
            {"setting": {"scheduler": "cosine", "warmup_epochs": "1"}},
            {"setting": {"scheduler": "none", "warmup_epochs": "0"}},
            {"setting": {"scheduler": "cosine", "warmup_epochs": "0"}},
        ],
    }
    sweep = derive("confirm", study.stages.confirm, ["epochs=3"], [], previous)
    assert sweep.command() == [
        "epochs=3",
        "lr=0.002",
        "seed=0,1,2",
        "hydra.sweeper.settings=[['scheduler=cosine','warmup_epochs=1'],"
        "['scheduler=none','warmup_epochs=0']]",
    ]
    # What the sweep saves in multirun.yaml: the report counts 2 settings x 3 seeds.
    hydra = {"sweeper": {"params": None, "settings": sweep.settings}}
    hydra["overrides"] = {"task": ["epochs=3", "lr=0.002", "seed=0,1,2"]}
    OmegaConf.save({"hydra": hydra}, tmp_path / "multirun.yaml")
    assert expected_trials(tmp_path) == 6
    # A setting may not set what the grid sets: the trial would be ambiguous.
    with pytest.raises(UserError, match="settings sets seed, which the grid also sets"):
        grid_jobs(OverridesParser.create().parse_overrides(["seed=0,1"]), [["seed=2"]])


FINER = {"around": "lr", "points": 3, "factor": 2}
TWO_STAGES = {
    "stages": {
        "coarse": {"grid": {"lr": [1e-3, 1e-2]}},
        "fine": {"carry": ["optimizer"], "grid": {"lr": FINER}},
    }
}


def test_a_two_stage_study_derives_its_second_grid_and_a_rerun_trains_nothing(tmp_path):
    first = run_study(TWO_STAGES, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    study = tmp_path / "study"
    coarse, fine = results(study / "coarse"), results(study / "fine")
    assert all(r["status"] == "completed" for r in [*coarse.values(), *fine.values()])
    # Two LRs tried: the winner is on an edge, so the finer grid goes past it, not inside.
    winner = min(coarse.values(), key=lambda r: r["final"]["train/mean_loss"])["choices"]["lr"]
    expected = [2.5e-4, 5e-4, 1e-3] if winner == 1e-3 else [1e-2, 2e-2, 4e-2]
    assert sorted(r["choices"]["lr"] for r in fine.values()) == expected
    assert all(r["choices"]["optimizer"] == "adam" for r in fine.values())  # carried
    assert sorted(fine) == sorted(
        f"batch_size=32,data.test_size=32,data.train_size=96,data.val_size=32,epochs=2,"
        f"lr={lr},optimizer=adam,trainer.log_every_n_steps=1"
        for lr in expected
    )
    for stage in ("coarse", "fine"):
        assert (study / stage / "report.md").is_file() and (study / stage / "stage.json").is_file()

    # The study report: the chain, with links, margins, effort, and the verdict last.
    md = (study / "study.md").read_text()
    assert "## 1. coarse ([report](coarse/report.md))" in md
    assert "## 2. fine ([report](fine/report.md))" in md
    assert f"Grid: lr: 3 points x2 from the winner's lr={winner}" in md
    assert "Pruned: 0 of 2 trials. Epochs trained: 4 of 4 without pruning (100%)." in md
    assert "Seed noise: unknown (one seed per setting, and no stage repeats seeds)" in md
    assert (study / "study.html").read_text().count("<a href='") == 2
    verdict = first.stdout.strip().splitlines()[-1]
    assert verdict.startswith("verdict: optimizer=adam, lr=") and verdict in md

    # Run again: both stages are done, nothing trains, nothing is rewritten.
    files = {p: p.stat().st_mtime_ns for p in study.glob("*/*/result.json")}
    again = run_study(TWO_STAGES, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "stage 1/2 coarse: done earlier, skipped" in again.stdout
    assert "stage 2/2 fine: done earlier, skipped" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in study.glob("*/*/result.json")} == files

    # A changed study in the same dir is refused in one line, before it trains anything.
    changed = run_study(TWO_STAGES, tmp_path, "epochs=3")
    assert changed.returncode == 2 and changed.stdout.count("\n") <= 1
    assert changed.stderr.startswith("error: stage coarse in ") and "epochs=3" in changed.stderr
    assert changed.stderr.count("\n") == 1
    assert {p: p.stat().st_mtime_ns for p in study.glob("*/*/result.json")} == files


def test_a_stage_without_a_winner_stops_the_study_in_one_line(tmp_path):
    stages = {"huge": {"grid": {"lr": [1e30]}}, "next": {"carry": ["lr"], "grid": {"seed": [0]}}}
    proc = run_study({"stages": stages}, tmp_path, "epochs=1")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith("error: stage 1/2 huge has no winner")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "study" / "next").exists()
    assert "**No winner**" in (tmp_path / "study" / "study.md").read_text()
