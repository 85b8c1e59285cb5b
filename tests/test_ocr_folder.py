"""data=ocr_folder: your own text lines, a folder with gt.txt of `path<TAB>label` lines. The
charset comes from the labels unless data.charset is set; data.val_dir gives a separate
validation set (otherwise data.val_fraction of train is held out), which is also the test set."""

import json
from pathlib import Path

import pytest
from PIL import Image

from helpers import compose_cfg
from optsweep.data.ocr_folder import GT_FILE, load_lines, read_gt
from optsweep.data.ocr_synth import render_sample
from optsweep.errors import UserError
from optsweep.train import fit, prepare


def write_ocr_folder(root: Path, count: int, charset: str = "abcXYZ019", seed: int = 1) -> Path:
    """gt.txt + line images of assorted sizes, some labels in lower case (not in the default
    synthetic charset), so the charset must come from the labels."""
    root.mkdir(parents=True)
    lines = []
    for i in range(count):
        image, text = render_sample(seed, "folder", i, charset, 3, 6, (128, 32))
        size = (100 + 13 * (i % 7), 24 + 4 * (i % 5))
        Image.fromarray(image[0].numpy()).resize(size).save(root / f"line{i}.png")
        lines.append(f"line{i}.png\t{text}")
    (root / GT_FILE).write_text("\n".join(lines) + "\n")
    return root


def folder_cfg(tmp_path: Path, *overrides: str):
    return compose_cfg(["data=ocr_folder", "batch_size=16", *overrides], tmp_path / "run")


def texts(datamodule, split: str) -> list[str]:
    _, targets, lengths = datamodule.datasets[split].tensors
    return datamodule.charset.decode_targets(targets, lengths)


def is_the_val_set(datamodule) -> bool:
    test, val = (datamodule.datasets[split].tensors for split in ("test", "val"))
    return len(test) == len(val) and all(t.equal(v) for t, v in zip(test, val, strict=True))


def test_ocr_folder_reads_gt_txt_and_takes_the_charset_from_the_labels(tmp_path):
    folder = write_ocr_folder(tmp_path / "ocr", count=40)
    cfg = folder_cfg(tmp_path, f"data.train_dir={folder}", "epochs=1", "trainer=cpu")
    result = fit(cfg)
    assert result["status"] == "completed"
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["history"][0]["val/loss"] is not None

    module, datamodule, _ = prepare(folder_cfg(tmp_path, f"data.train_dir={folder}"))
    assert datamodule.charset.chars == module.config["data"]["charset"] == "019XYZabc"
    datamodule.setup()
    # data.val_fraction (0.1) of the 40 lines held out.
    assert len(datamodule.datasets["train"]) == 36 and len(datamodule.datasets["val"]) == 4
    assert is_the_val_set(datamodule)  # the test set is the validation set
    labels = [label for _, label in read_gt(folder)]
    assert sorted(texts(datamodule, "train") + texts(datamodule, "val")) == sorted(labels)
    assert datamodule.datasets["train"].tensors[0].shape[1:] == (1, 32, 128)


def test_val_dir_is_the_validation_and_test_set(tmp_path):
    train = write_ocr_folder(tmp_path / "train", count=12)
    # A character only the validation labels use ('Q'): the charset covers both folders.
    val = write_ocr_folder(tmp_path / "val", count=5, charset="QQQQ019", seed=2)
    cfg = folder_cfg(tmp_path, f"data.train_dir={train}", f"data.val_dir={val}")
    module, datamodule, _ = prepare(cfg)
    labels = [label for folder in (train, val) for _, label in read_gt(folder)]
    assert "Q" in datamodule.charset.chars == module.config["data"]["charset"]
    assert datamodule.charset.chars == "".join(sorted(set("".join(labels))))
    datamodule.setup()
    assert texts(datamodule, "train") == [label for _, label in read_gt(train)]  # all of it
    assert texts(datamodule, "val") == [label for _, label in read_gt(val)]
    val_images = datamodule.datasets["val"].tensors[0]
    assert val_images.equal(load_lines(read_gt(val), 32, 128))
    assert is_the_val_set(datamodule)  # the test set is the validation set


def test_data_charset_is_taken_as_given(tmp_path):
    folder = write_ocr_folder(tmp_path / "ocr", count=6)
    # Characters no label uses, in the user's order: the network gets one output each.
    charset = "zyx019XYZabc"
    cfg = folder_cfg(tmp_path, f"data.train_dir={folder}", f"data.charset={charset}")
    module, datamodule, _ = prepare(cfg)
    assert datamodule.charset.chars == module.config["data"]["charset"] == charset
    assert module.charset.num_classes == len(charset) + 1  # and CTC's blank

    # A label character the given charset lacks is refused, not dropped.
    used = sorted(set("".join(label for _, label in read_gt(folder))))
    cfg = folder_cfg(tmp_path, f"data.train_dir={folder}", f"data.charset={''.join(used[:-1])}")
    with pytest.raises(UserError, match=f"missing from data.charset: '{used[-1]}'"):
        prepare(cfg)


def test_ocr_folder_rejects_a_malformed_gt_line(tmp_path):
    folder = write_ocr_folder(tmp_path / "ocr", count=3)
    (folder / "gt.txt").write_text("line0.png\tAB\nline1.png no tab here\n")
    cfg = compose_cfg(["data=ocr_folder", f"data.train_dir={folder}"], tmp_path / "run")
    with pytest.raises(UserError, match=r"gt.txt:2: expected"):
        fit(cfg)
