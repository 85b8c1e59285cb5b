"""`python -m optsweep.predict`: a checkpoint + images -> what the model sees in them, with the
preprocessing, charset and classes stored in the checkpoint."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import TINY_OCR, compose_cfg
from optsweep.data.ocr_image import to_model_input
from optsweep.data.ocr_synth import render_sample
from optsweep.predict import load_module, main
from optsweep.train import fit


def test_ocr_predict_matches_the_model_on_training_tensors(tmp_path, capsys):
    result = fit(compose_cfg([*TINY_OCR, "epochs=1", "test=false"], tmp_path / "run"))
    module = load_module(Path(result["checkpoints"]["best"]))
    charset = module.config["data"]["charset"]
    images = [render_sample(7, "predict", i, charset, 4, 8, (128, 32))[0] for i in range(3)]
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy()).save(tmp_path / f"line{i}.png")
    with torch.no_grad():
        expected = module.charset.greedy_decode(module(to_model_input(torch.stack(images))))

    capsys.readouterr()  # what training printed
    main([result["checkpoints"]["best"], str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        str(tmp_path / f"line{i}.png") for i in range(3)
    ]
    assert [line.split("\t")[1] for line in lines] == expected


def test_classifier_predict_names_the_classes_it_learned(image_folder, tmp_path, capsys):
    cfg = compose_cfg(
        ["data=image_folder", f"data.root={image_folder}", "model=simple_cnn", "batch_size=8"]
        + ["epochs=4", "trainer=cpu", "data.augment=false", "data.val_fraction=0.25"],
        tmp_path / "run",
    )
    result = fit(cfg)
    capsys.readouterr()  # what training printed
    main([result["checkpoints"]["best"], str(image_folder / "test")])
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 24
    correct = sum(Path(path).parent.name == label for path, label, _ in lines)
    assert correct / len(lines) >= 0.9
    assert all(0.0 <= float(prob) <= 1.0 for _, _, prob in lines)


def test_predict_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "x.ckpt").write_text("nope")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "x.ckpt"), str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: checkpoint")
