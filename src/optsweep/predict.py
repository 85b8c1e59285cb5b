"""Use a trained model: a checkpoint + images -> recognised text or class per image.

    python -m optsweep.predict <checkpoint> <image or folder> [...]

The network, charset, image size and normalisation all come from the checkpoint, so the
images are prepared exactly as in training.
"""

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from optsweep.checkpoints import load_checkpoint
from optsweep.data.augment import normalize
from optsweep.data.images import image_to_tensor
from optsweep.data.ocr_image import line_to_tensor, to_model_input
from optsweep.errors import UserError
from optsweep.module import MODULES, TaskModule

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_module(checkpoint_path: Path) -> TaskModule:
    checkpoint = load_checkpoint(checkpoint_path)
    config = checkpoint["hyper_parameters"]["config"]
    module = MODULES[config["data"]["task"]](config)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()


def image_paths(targets: list[str]) -> list[Path]:
    paths = []
    for target in map(Path, targets):
        if target.is_dir():
            paths += sorted(p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif target.is_file():
            paths.append(target)
        else:
            raise UserError(f"{target}: no such file or folder")
    if not paths:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(targets)}")
    return paths


def prepare(module: TaskModule, image: Image.Image) -> torch.Tensor:
    data = module.config["data"]
    if module.config["data"]["task"] == "ocr":
        return to_model_input(line_to_tensor(image, data["height"], data["width"]))
    pixels = image_to_tensor(image, data["image_size"]).float().div(255).unsqueeze(0)
    return normalize(pixels, data["mean"], data["std"])[0]


@torch.no_grad()
def predict(module: TaskModule, paths: list[Path]) -> list[str]:
    """One tab-separated line per image: path, then text (OCR) or class and probability."""
    lines = []
    for path in paths:
        try:
            with Image.open(path) as image:
                batch = prepare(module, image).unsqueeze(0)
        except UnidentifiedImageError:
            raise UserError(f"{path} is not an image Pillow can read") from None
        outputs = module(batch)
        if module.config["data"]["task"] == "ocr":
            lines.append(f"{path}\t{module.charset.greedy_decode(outputs)[0]}")
        else:
            prob, index = outputs.softmax(-1)[0].max(0)
            lines.append(f"{path}\t{module.config['data']['classes'][index]}\t{prob:.3f}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m optsweep.predict", description=__doc__)
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by a training run")
    parser.add_argument("images", nargs="+", help="image files and/or folders of images")
    args = parser.parse_args(argv)
    try:
        module = load_module(args.checkpoint)
        for line in predict(module, image_paths(args.images)):
            print(line)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
