"""A few-batch fit per task through the real Trainer, datamodules and torchvision loaders."""

import json
import pickle
import tarfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar

from helpers import (
    SHARED_OCR,
    TINY_OCR,
    compose_cfg,
    metrics_rows,
    options,
    trained,
    trained_classifier,
    write_cifar_folder,
)
from optsweep.errors import UserError
from optsweep.module import MODULES
from optsweep.train import fit, prepare


def test_ocr_synth_fit_writes_result_checkpoints_and_metrics(tmp_path_factory):
    run = trained(SHARED_OCR, tmp_path_factory)
    result = run.result
    assert result["status"] == "completed"
    assert [h["epoch"] for h in result["history"]] == [0, 1]
    for key in ("train/mean_loss", "train/lr", "val/loss", "val/word_acc", "val/cer"):
        assert result["history"][-1][key] is not None, key
    assert {"test/loss", "test/word_acc", "test/cer"} <= result["test"].keys()
    assert Path(result["checkpoints"]["best"]).is_file()
    assert Path(result["checkpoints"]["last"]).name == "last.ckpt"
    on_disk = json.loads((run.dir / "result.json").read_text())
    assert on_disk["status"] == "completed" and on_disk["history"] == result["history"]
    assert {"train/mean_loss", "val/loss"} <= {k for row in metrics_rows(run.dir) for k in row}


def test_testing_the_best_checkpoint_keeps_the_whole_history_and_the_mean_is_unweighted(
    tmp_path,
):
    # mode=max on val/loss makes an early epoch "best", so testing it restores an old state.
    # 80 samples in batches of 32: 32 + 32 + 16, so a batch-size-weighted mean would differ.
    overrides = [*TINY_OCR, "data.train_size=80", "epochs=3", "callbacks.model_checkpoint.mode=max"]
    result = fit(compose_cfg(overrides, tmp_path))
    assert result["best"]["epoch"] < result["final"]["epoch"] == 2
    assert [h["epoch"] for h in result["history"]] == [0, 1, 2]

    step_losses, epoch_means = defaultdict(list), {}
    for row in metrics_rows(tmp_path):
        if "train/loss" in row:
            step_losses[int(row["epoch"])].append(float(row["train/loss"]))
        if "train/mean_loss" in row:
            epoch_means[int(row["epoch"])] = float(row["train/mean_loss"])
    assert sorted(epoch_means) == sorted(step_losses) == [0, 1, 2]
    for epoch, losses in step_losses.items():
        assert len(losses) == 3
        assert epoch_means[epoch] == pytest.approx(sum(losses) / len(losses), rel=1e-5)
        weighted = (32 * losses[0] + 32 * losses[1] + 16 * losses[2]) / 80
        assert epoch_means[epoch] != pytest.approx(weighted, rel=1e-7)


def test_a_crash_is_recorded_as_failed_with_the_last_error_line(tmp_path):
    boom = ["+callbacks.boom._target_=killer.RaiseAtEpoch", "+callbacks.boom.epoch=1"]
    with pytest.raises(RuntimeError, match="boom at epoch 1"):
        fit(compose_cfg([*TINY_OCR, "epochs=3", *boom], tmp_path))
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "failed"
    assert result["error"] == "second line of the error"
    assert result["epochs_completed"] == 1


SCHEDULERS = options("scheduler")


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_scheduler_runs_in_a_real_fit_without_logger_or_progress_bar(tmp_path, scheduler):
    # No logger: result.json is still written. No progress bar, as Lightning spells it: the
    # callbacks config adds a rich bar, which Lightning refuses next to
    # enable_progress_bar=false; the user's intent wins, and the run trains.
    overrides = [*TINY_OCR, "epochs=2", f"scheduler={scheduler}", "test=false", "logger=none"]
    result = fit(compose_cfg([*overrides, "trainer.enable_progress_bar=false"], tmp_path))
    assert result["status"] == "completed" and len(result["history"]) == 2
    assert all(row["val/loss"] is not None for row in result["history"])
    assert json.loads((tmp_path / "result.json").read_text())["history"] == result["history"]
    assert not (tmp_path / "metrics.csv").exists()


def files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.fixture(scope="module")
def cifar_archive(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """cifar-10-python.tar.gz as a user would drop it in (100 train and 20 test images), and
    the files it holds."""
    root = write_cifar_folder(tmp_path_factory.mktemp("cifar"))
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return archive, files(root / "cifar-10-batches-py")


@pytest.mark.parametrize("model", ["simple_cnn", "resnet18"])
def test_cifar10_fit_from_the_archive_through_torchvision(
    cifar_archive, tmp_path, monkeypatch, model
):
    # Only the md5 check is bypassed: our batches are real pickles, not the real files.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5: True)
    archive, archived = cifar_archive
    batches = {name: pickle.loads(data) for name, data in archived.items()}
    root = tmp_path / "cifar"
    root.mkdir()
    (root / archive.name).write_bytes(archive.read_bytes())
    cfg = compose_cfg(
        ["data=cifar10", f"data.root={root}", f"model={model}", "batch_size=25"]
        + ["epochs=1", "trainer=cpu"],
        tmp_path / "run",
    )

    _, datamodule, _ = prepare(cfg)  # what fit() starts with
    assert files(root / "cifar-10-batches-py") == archived  # extracted on first use
    assert datamodule.classes == batches["batches.meta"]["label_names"]
    sizes = {split: len(dataset) for split, dataset in datamodule.datasets.items()}
    assert sizes == {"train": 90, "val": 10, "test": 20}  # data.val_fraction=0.1 of 100

    def images(*names: str) -> torch.Tensor:  # CIFAR rows are channel-major 3x32x32 images
        data = np.concatenate([batches[name]["data"] for name in names])
        return torch.from_numpy(data).reshape(-1, 3, 32, 32)

    test_images, test_labels = datamodule.datasets["test"].tensors
    assert torch.equal(test_images, images("test_batch"))
    assert test_labels.tolist() == batches["test_batch"]["labels"]

    # train + val: the five training batches, each image once, with its label.
    def pairs(images: torch.Tensor, labels) -> list[tuple[bytes, int]]:
        return sorted(zip(map(bytes, images.flatten(1).numpy()), labels, strict=True))

    split_images, split_labels = (
        torch.cat([datamodule.datasets[split].tensors[i] for split in ("train", "val")])
        for i in (0, 1)
    )
    names = [f"data_batch_{i}" for i in range(1, 6)]
    assert pairs(split_images, split_labels.tolist()) == pairs(
        images(*names), [label for name in names for label in batches[name]["labels"]]
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


def test_image_folder_fit_learns_two_visible_classes(tmp_path_factory):
    result = trained_classifier(tmp_path_factory).result
    assert result["status"] == "completed"
    assert result["test"]["test/acc"] >= 0.9


SHARED_RUNS = {
    "ocr": lambda factory: trained(SHARED_OCR, factory),
    "classification": trained_classifier,
}


@pytest.mark.parametrize("task", SHARED_RUNS)
def test_a_history_row_holds_exactly_the_metrics_a_sweep_can_rank_by(tmp_path_factory, task):
    for row in SHARED_RUNS[task](tmp_path_factory).result["history"]:
        assert set(row) - {"epoch"} == set(MODULES[task].epoch_metrics())
