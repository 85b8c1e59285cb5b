"""A few-batch fit per task through the real Trainer, datamodules and torchvision loaders."""

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest
import torchvision.datasets.cifar
from PIL import Image

from helpers import TINY_OCR, compose_cfg, write_cifar_folder
from optsweep.data.ocr_synth import render_sample
from optsweep.errors import UserError
from optsweep.train import CONFIG_DIR, fit


def epoch_rows(metrics_csv: Path) -> list[dict]:
    with open(metrics_csv) as f:
        return list(csv.DictReader(f))


def test_ocr_synth_fit_writes_result_checkpoints_and_metrics(tmp_path):
    result = fit(compose_cfg([*TINY_OCR, "epochs=2"], tmp_path))
    assert result["status"] == "completed"
    assert [h["epoch"] for h in result["history"]] == [0, 1]
    for key in ("train/mean_loss", "train/lr", "val/loss", "val/word_acc", "val/cer"):
        assert result["history"][-1][key] is not None, key
    assert {"test/loss", "test/word_acc", "test/cer"} <= result["test"].keys()
    assert Path(result["checkpoints"]["best"]).is_file()
    assert Path(result["checkpoints"]["last"]).name == "last.ckpt"
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["history"] == result["history"]


def test_testing_the_best_checkpoint_keeps_the_whole_history(tmp_path):
    # mode=max on val/loss makes an early epoch "best", so testing it restores an old state.
    overrides = [*TINY_OCR, "epochs=3", "callbacks.model_checkpoint.mode=max"]
    result = fit(compose_cfg(overrides, tmp_path))
    assert result["best"]["epoch"] < result["final"]["epoch"] == 2
    assert [h["epoch"] for h in result["history"]] == [0, 1, 2]


def test_fit_without_a_logger_still_writes_its_result(tmp_path):
    result = fit(compose_cfg([*TINY_OCR, "epochs=1", "logger=none", "test=false"], tmp_path))
    assert result["status"] == "completed" and result["history"][0]["val/loss"] is not None
    assert not (tmp_path / "metrics.csv").exists()


def test_a_crash_is_recorded_as_failed_with_the_last_error_line(tmp_path):
    boom = ["+callbacks.boom._target_=killer.RaiseAtEpoch", "+callbacks.boom.epoch=1"]
    with pytest.raises(RuntimeError, match="boom at epoch 1"):
        fit(compose_cfg([*TINY_OCR, "epochs=3", *boom], tmp_path))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "failed"
    assert result["error"] == "second line of the error"
    assert result["epochs_completed"] == 1


SCHEDULERS = sorted(p.stem for p in (Path(CONFIG_DIR) / "scheduler").glob("*.yaml"))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_runs_in_a_real_fit(tmp_path, scheduler):
    result = fit(
        compose_cfg([*TINY_OCR, "epochs=2", f"scheduler={scheduler}", "test=false"], tmp_path)
    )
    assert result["status"] == "completed" and len(result["history"]) == 2


def test_train_mean_loss_is_the_unweighted_mean_of_batch_losses(tmp_path):
    # 80 samples in batches of 32: 32 + 32 + 16, so a batch-size-weighted mean would differ.
    fit(compose_cfg([*TINY_OCR, "data.train_size=80", "epochs=2"], tmp_path))
    step_losses, epoch_means = defaultdict(list), {}
    for row in epoch_rows(tmp_path / "metrics.csv"):
        if row.get("train/loss"):
            step_losses[int(row["epoch"])].append(float(row["train/loss"]))
        if row.get("train/mean_loss"):
            epoch_means[int(row["epoch"])] = float(row["train/mean_loss"])
    assert sorted(epoch_means) == [0, 1]
    for epoch, losses in step_losses.items():
        assert len(losses) == 3
        assert epoch_means[epoch] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
        weighted = (32 * losses[0] + 32 * losses[1] + 16 * losses[2]) / 80
        assert epoch_means[epoch] != pytest.approx(weighted, rel=1e-7)


def write_ocr_folder(root: Path, count: int) -> Path:
    """gt.txt + line images of assorted sizes, some labels in lower case (not in the default
    synthetic charset), so the charset must come from the labels."""
    root.mkdir(parents=True)
    lines = []
    for i in range(count):
        image, text = render_sample(1, "folder", i, "abcXYZ019", 3, 6, (128, 32))
        size = (100 + 13 * (i % 7), 24 + 4 * (i % 5))
        Image.fromarray(image[0].numpy()).resize(size).save(root / f"line{i}.png")
        lines.append(f"line{i}.png\t{text}")
    (root / "gt.txt").write_text("\n".join(lines) + "\n")
    return root


def test_ocr_folder_reads_gt_txt_and_takes_the_charset_from_the_labels(tmp_path):
    folder = write_ocr_folder(tmp_path / "ocr", count=40)
    cfg = compose_cfg(
        ["data=ocr_folder", f"data.train_dir={folder}", "batch_size=16", "epochs=1", "trainer=cpu"],
        tmp_path / "run",
    )
    result = fit(cfg)
    assert result["status"] == "completed"
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["history"][0]["val/loss"] is not None
    from optsweep.data.ocr_folder import FolderOCRDataModule

    dm = FolderOCRDataModule(str(folder), None, 0.25, None, 32, 128, 0, 8)
    assert dm.charset.chars == "019XYZabc"
    dm.setup()
    assert len(dm.datasets["train"]) == 30 and len(dm.datasets["val"]) == 10
    assert dm.datasets["train"].tensors[0].shape[1:] == (1, 32, 128)


def test_ocr_folder_rejects_a_malformed_gt_line(tmp_path):
    folder = write_ocr_folder(tmp_path / "ocr", count=3)
    (folder / "gt.txt").write_text("line0.png\tAB\nline1.png no tab here\n")
    cfg = compose_cfg(["data=ocr_folder", f"data.train_dir={folder}"], tmp_path / "run")
    with pytest.raises(UserError, match=r"gt.txt:2: expected"):
        fit(cfg)


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    # Only the md5 check is bypassed: our batches are real pickles, not the real files.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5: True)
    return write_cifar_folder(tmp_path / "cifar")


@pytest.mark.parametrize("model", ["simple_cnn", "resnet18"])
def test_cifar10_fit_through_torchvision(cifar_root, tmp_path, model):
    cfg = compose_cfg(
        ["data=cifar10", f"data.root={cifar_root}", f"model={model}", "batch_size=25"]
        + ["epochs=1", "trainer=cpu"],
        tmp_path / "run",
    )
    result = fit(cfg)
    assert result["status"] == "completed"
    assert 0.0 <= result["history"][0]["val/acc"] <= 1.0
    assert "test/acc" in result["test"]


def test_cifar10_missing_files_say_where_to_put_the_archive(tmp_path):
    cfg = compose_cfg(
        ["data=cifar10", "model=simple_cnn", f"data.root={tmp_path / 'none'}"], tmp_path / "run"
    )
    with pytest.raises(UserError, match="cifar-10-python.tar.gz.*data.download=true"):
        fit(cfg)


def test_image_folder_fit_learns_two_visible_classes(image_folder, tmp_path):
    cfg = compose_cfg(
        ["data=image_folder", f"data.root={image_folder}", "model=simple_cnn", "batch_size=8"]
        + ["epochs=4", "trainer=cpu", "data.augment=false", "data.val_fraction=0.25"],
        tmp_path / "run",
    )
    result = fit(cfg)
    assert result["status"] == "completed"
    assert result["test"]["test/acc"] >= 0.9


def test_the_progress_bar_can_be_turned_off_as_lightning_spells_it(tmp_path):
    # The callbacks config adds a rich bar, which Lightning refuses next to
    # enable_progress_bar=false: the user's intent wins, and the run trains.
    cfg = compose_cfg(
        [*TINY_OCR, "epochs=1", "test=false", "trainer.enable_progress_bar=false"], tmp_path
    )
    assert fit(cfg)["status"] == "completed"


@pytest.mark.parametrize("task", ["ocr", "classification"])
def test_a_history_row_holds_exactly_the_metrics_a_sweep_can_rank_by(tmp_path, task, image_folder):
    from optsweep.module import MODULES

    data = TINY_OCR if task == "ocr" else ["data=image_folder", f"data.root={image_folder}"]
    data += [] if task == "ocr" else ["model=simple_cnn", "batch_size=8", "trainer=cpu"]
    result = fit(compose_cfg([*data, "epochs=1", "test=false", "logger=none"], tmp_path))
    assert set(result["history"][0]) - {"epoch"} == set(MODULES[task].epoch_metrics())
