"""`python -m optsweep.predict`: a checkpoint + images -> what the model sees in them, with the
preprocessing, charset and classes stored in the checkpoint."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers import SHARED_OCR, classifier_images, trained, trained_classifier
from optsweep import predict
from optsweep.data.ocr_image import to_model_input
from optsweep.data.ocr_synth import render_sample


def test_ocr_predict_sees_what_the_model_saw_in_training(tmp_path_factory, tmp_path, capsys):
    run = trained(SHARED_OCR, tmp_path_factory)
    module = predict.load_module(Path(run.result["checkpoints"]["best"]))
    data = module.config["data"]
    samples = [
        render_sample(7, "predict", i, data["charset"], 4, 8, (data["width"], data["height"]))
        for i in range(3)
    ]
    paths = [tmp_path / f"line{i}.png" for i in range(3)]
    for (image, _), path in zip(samples, paths, strict=True):
        Image.fromarray(image[0].numpy()).save(path)
    # The tensors training feeds the network, and those predict makes from the image files.
    trained_input = to_model_input(torch.stack([image for image, _ in samples]))
    with torch.no_grad():
        from_files = []
        for path in paths:
            with Image.open(path) as image:
                from_files.append(predict.prepare(module, image))
        assert torch.equal(torch.stack(from_files), trained_input)
        logits = module(trained_input)
        torch.testing.assert_close(module(torch.stack(from_files)), logits, rtol=0, atol=0)
    expected = module.charset.greedy_decode(logits)
    assert all(expected), expected  # text, not blanks: an equal '' would prove nothing

    capsys.readouterr()  # what training printed
    predict.main([run.result["checkpoints"]["best"], str(tmp_path)])
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert lines == [[str(path), text] for path, text in zip(paths, expected, strict=True)]


def test_classifier_predict_names_the_classes_it_learned(tmp_path_factory, capsys):
    run = trained_classifier(tmp_path_factory)
    images = classifier_images(tmp_path_factory) / "test"
    capsys.readouterr()  # what training printed
    predict.main([run.result["checkpoints"]["best"], str(images)])
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 24
    correct = sum(Path(path).parent.name == label for path, label, _ in lines)
    assert correct / len(lines) >= 0.9
    assert all(0.0 <= float(prob) <= 1.0 for _, _, prob in lines)


def test_predict_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "x.ckpt").write_text("nope")
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(tmp_path / "x.ckpt"), str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: checkpoint")
