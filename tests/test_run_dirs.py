"""Where a run lands: `outputs/runs/<overrides>/<stamp>`, `ckpt_path=last` back in the newest
run of the same overrides, and a name too long for the file system cut and hashed."""

import os
import shutil
from pathlib import Path

from hydra import compose, initialize_config_dir

from helpers import SHARED_OCR, compose_run, trained
from optsweep.run_dirs import MAX_NAME, trial_name
from optsweep.train import CONFIG_DIR, prepare


def test_ckpt_path_last_continues_the_newest_run_of_the_same_overrides(tmp_path_factory, tmp_path):
    shared = trained(SHARED_OCR, tmp_path_factory)
    runs = Path(compose_run(SHARED_OCR, tmp_path).paths.output_dir).parent  # of this command
    older, newer = runs / "2026-01-01_00-00-00", runs / "2026-01-02_00-00-00"
    for age, run_dir in enumerate((newer, older)):
        shutil.copytree(shared.dir / "checkpoints", run_dir / "checkpoints")
        for checkpoint in (run_dir / "checkpoints").iterdir():
            os.utime(checkpoint, (1e9 - 3600 * age,) * 2)  # the older run's files an hour older
    # A later run of it that was killed before its first checkpoint, and a later run of
    # another command: neither is one to continue.
    (runs / "2026-01-03_00-00-00" / ".hydra").mkdir(parents=True)
    other = Path(compose_run([*SHARED_OCR, "seed=1"], tmp_path).paths.output_dir)
    shutil.copytree(shared.dir / "checkpoints", other / "checkpoints")

    cfg = compose_run([*SHARED_OCR, "ckpt_path=last"], tmp_path)
    assert Path(cfg.paths.output_dir) == newer  # continued in place
    assert prepare(cfg)[2] == str(newer / "checkpoints" / "last.ckpt")


def test_a_name_too_long_for_the_file_system_is_cut_and_hashed(tmp_path):
    # A data folder deep enough that the overrides make a name over 255 bytes, the limit of
    # most file systems.
    folder = "/".join(["validation_lines"] * 16)
    overrides = ["data=ocr_folder", f"data.train_dir=/{folder}", "lr=0.01"]
    typed = ",".join(sorted(overrides))
    assert len(typed.encode()) > 255

    name = trial_name(typed)
    assert len(name.encode()) <= MAX_NAME + 11 < 255
    head, digest = name.rsplit("-", 1)
    assert typed.replace("/", "_").startswith(head) and len(digest) == 10
    # The same command always gets the same name; another long one another name.
    assert trial_name(typed) == name
    assert trial_name(typed.replace("lr=0.01", "lr=0.02")) != name
    # A cut inside a character drops that character: the name stays valid UTF-8.
    assert len(trial_name("data.train_dir=" + "é" * 150).encode()) <= MAX_NAME + 11

    # Both a single run and a sweep trial land there, and the directories can be made.
    run_dir = Path(compose_run(overrides, tmp_path).paths.output_dir)
    assert run_dir.parent.name == name
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        hydra = compose("train", overrides, return_hydra_config=True).hydra
    assert hydra.sweep.subdir == name
    run_dir.mkdir(parents=True)
    (tmp_path / hydra.sweep.subdir).mkdir()
