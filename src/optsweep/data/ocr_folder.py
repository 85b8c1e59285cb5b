"""Real OCR data: a folder with gt.txt of `path<TAB>label` lines, the format of
clovaai/deep-text-recognition-benchmark. Paths are relative to the folder."""

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from rich.progress import track

from optsweep.data.loaders import check_val_fraction, seeded_split
from optsweep.data.ocr import OCRDataModule
from optsweep.data.ocr_image import line_to_tensor
from optsweep.errors import UserError

GT_FILE = "gt.txt"


def read_gt(folder: Path) -> list[tuple[Path, str]]:
    gt = folder / GT_FILE
    if not gt.is_file():
        raise UserError(f"no {GT_FILE} in {folder}: expected lines of `image_path<TAB>label`")
    entries = []
    for number, line in enumerate(gt.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        path, sep, label = line.partition("\t")
        if not sep or not label:
            raise UserError(f"{gt}:{number}: expected `image_path<TAB>label`, got {line!r}")
        entries.append((folder / path, label))
    if not entries:
        raise UserError(f"{gt} lists no images")
    return entries


def load_lines(entries: list[tuple[Path, str]], height: int, width: int) -> torch.Tensor:
    images = []
    for path, _ in track(entries, description="loading text lines"):
        try:
            with Image.open(path) as image:
                images.append(line_to_tensor(image, height, width))
        except (FileNotFoundError, UnidentifiedImageError) as err:
            raise UserError(f"cannot read image {path} listed in {GT_FILE}: {err}") from None
    return torch.stack(images)


class FolderOCRDataModule(OCRDataModule):
    def __init__(
        self,
        train_dir: str,
        val_dir: str | None,
        val_fraction: float,
        charset: str | None,
        height: int,
        width: int,
        seed: int,
        batch_size: int,
        num_workers: int = 0,
    ) -> None:
        self.entries = {"train": read_gt(Path(train_dir))}
        if val_dir:
            self.entries["val"] = read_gt(Path(val_dir))
        else:
            check_val_fraction(val_fraction)
        labels = [label for split in self.entries.values() for _, label in split]
        super().__init__(
            charset or "".join(sorted(set("".join(labels)))),
            height,
            width,
            batch_size,
            seed,
            num_workers,
        )
        unknown = set().union(*(self.charset.unknown(label) for label in labels))
        if unknown:
            raise UserError(
                f"labels use characters missing from data.charset: {''.join(sorted(unknown))!r}"
            )
        self.val_fraction = val_fraction

    def splits(self) -> dict[str, tuple[torch.Tensor, list[str]]]:
        train = self.entries["train"]
        if "val" in self.entries:
            val = self.entries["val"]
        else:
            train_idx, val_idx = seeded_split(len(train), self.val_fraction, self.seed)
            train, val = [train[i] for i in train_idx], [train[i] for i in val_idx]
        out = {}
        for name, entries in (("train", train), ("val", val)):
            out[name] = (load_lines(entries, self.height, self.width), [e[1] for e in entries])
        out["test"] = out["val"]  # a folder has no separate test split; give one as val_dir
        return out
