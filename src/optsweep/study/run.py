"""Runs a study: each stage a real sweep (`python -m optsweep.train -m ...` in a child process,
under the chosen launcher) in <study dir>/<stage>, the next stage derived from its decision.

A re-run skips the stages that are done and resumes the interrupted one: its sweep, run again
in the same dir, skips its finished trials and continues the others (sweep/trial.py).
"""

import subprocess
import sys
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from optsweep import CONFIG_DIR
from optsweep.errors import UserError, last_line
from optsweep.study import report
from optsweep.study.plan import chosen_keys, derive, key_of, load_study, quoted, study_path
from optsweep.study.record import (
    DONE,
    NO_WINNER,
    check_unchanged,
    decide,
    read_record,
    started,
    write_record,
)


def log_dir(overrides: list[str], config_dir: str) -> Path:
    """paths.log_dir as a run with these overrides gets it (outputs/ unless told otherwise)."""
    from hydra import compose, initialize_config_dir

    trained = [o for o in overrides if not key_of(o).startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            return Path(compose("train", overrides=trained).paths.log_dir)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(last_line(err)) from None


def _refuse_chosen(study: DictConfig, command_line: list[str]) -> None:
    chosen = chosen_keys(study)
    for override in command_line:
        if (key := key_of(override)) in chosen:
            stage = chosen[key]
            raise UserError(
                f"{override}: the study chooses {key} (stage {stage}); change its grid instead, "
                f"e.g. study.stages.{stage}.grid.{key}=[...]"
            )


def _sweep(stage_dir: Path, overrides: list[str], label: str) -> None:
    """The stage's sweep, in a child process that prints its own progress."""
    command = [sys.executable, "-m", "optsweep.train", "-m", *overrides]
    command.append(f"hydra.sweep.dir={quoted(str(stage_dir.resolve()), always=True)}")
    proc = subprocess.Popen(command)
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # the sweep had the Ctrl-C too: its trials record `interrupted`
        proc.wait()
        print(f"\ninterrupted in {label}: run the same command again to continue", file=sys.stderr)
        sys.exit(130)
    if code:
        raise UserError(f"{label}: its sweep exited with status {code} (its output is above)")


def run_study(name: str, args: list[str]) -> list[dict]:
    path = study_path(name, Path(CONFIG_DIR))
    study = load_study(path, [a for a in args if key_of(a).startswith("study.")])
    command_line = [a for a in args if not key_of(a).startswith("study.")]
    _refuse_chosen(study, command_line)
    common = [str(o) for o in study.get("overrides") or []]
    title = path.stem
    study_dir = Path(
        study.get("dir") or log_dir([*common, *command_line], CONFIG_DIR) / "studies" / title
    )
    stages = list(study.stages.items())
    print(f"study {title}: {len(stages)} stages in {study_dir}")
    records: list[dict] = []
    for index, (stage_name, stage) in enumerate(stages, 1):
        label = f"stage {index}/{len(stages)} {stage_name}"
        previous = records[-1] if records else None
        sweep = derive(str(stage_name), stage, common, command_line, previous)
        stage_dir = study_dir / str(stage_name)
        record = read_record(stage_dir)
        if record is not None:
            check_unchanged(record, sweep, stage_dir)
        if record is not None and record["status"] == DONE:
            print(f"{label}: done earlier, skipped. {report.outcome(record)}")
        else:
            write_record(stage_dir, started(sweep))
            print(f"\n{label}: python train.py -m {' '.join(sweep.command())}", flush=True)
            _sweep(stage_dir, sweep.command(), label)
            record = decide(stage_dir, sweep)
            write_record(stage_dir, record)
            print(f"\n{label}: {report.outcome(record)}", flush=True)
        records.append(record)
        if record["status"] == NO_WINNER:
            report.write_study_report(study_dir, title, records, None)
            raise UserError(
                f"{label} has no winner: none of its {record['trials']} trials finished with a "
                f"value (diverged, failed or pruned; see {stage_dir / 'report.md'}); the study "
                "stops here"
            )
        report.write_study_report(study_dir, title, records, None)
    verdict = report.final_verdict(records)
    study_md = report.write_study_report(study_dir, title, records, verdict)
    print(f"\nstudy {title}, {study_dir}:")
    for index, record in enumerate(records, 1):
        print(f"  {index}. {record['stage']}: {report.outcome(record)}")
    print(f"report: {study_md} and {study_md.with_suffix('.html')}")
    print(verdict)
    return records
