"""The augmentation benchmark: optsweep's batched augmentation against torchvision's
per-sample pipelines, on the CIFAR-10 subset, in images per second.

All three turn the same uint8 training images (held in memory, as the datamodules hold them)
into normalised float batches of 64 with a random 4-pixel-padded crop and a random horizontal
flip drawn per image:
  batched      ImageClassificationDataModule.to_input, what training runs (data/augment.py);
  PIL          the classic torchvision pipeline, as torchvision's CIFAR10 dataset runs it:
               Image.fromarray, RandomCrop, RandomHorizontalFlip, ToTensor, Normalize per
               image, then the DataLoader's collate (torch.stack);
  v2 tensors   torchvision.transforms.v2 on each uint8 tensor: RandomCrop,
               RandomHorizontalFlip, ToDtype(scale), Normalize, then torch.stack.
One process, on the CPU, one torch thread by default (what each trial of a `local` sweep gets
on a 2-core machine; the per-sample transforms are too small to use more); the three take
turns, and each figure is the median of its passes over the images.

    python bench/augment.py               # the 4.7k training images, 3 passes each
    python bench/augment.py --quick       # 1,000 of them
    python bench/augment.py --threads 2   # torch threads
"""

import argparse
import statistics
import sys
import time
from datetime import datetime

import torch
from figures import Figure, markdown_table, write
from PIL import Image
from sweeps import CIFAR_SUBSET, cpu_name
from torchvision import transforms
from torchvision.transforms import v2

from optsweep.data.image_folder import ImageFolderDataModule
from optsweep.data.images import CROP_PADDING
from optsweep.errors import UserError, exit_with

BATCH = 64


def batches(images: torch.Tensor):
    return (images[i : i + BATCH] for i in range(0, len(images), BATCH))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 images")
    parser.add_argument("--passes", type=int, default=3, help="passes of each, for the median")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (CIFAR_SUBSET / "train").is_dir():
        exit_with(UserError(f"no CIFAR-10 subset at {CIFAR_SUBSET}"))
    data = ImageFolderDataModule(str(CIFAR_SUBSET), 32, 0.1, True, seed=0, batch_size=BATCH)
    data.setup()
    images = data.datasets["train"].tensors[0]
    images = images[:1000] if args.quick else images
    size = images.shape[-1]
    arrays = images.permute(0, 2, 3, 1).numpy()  # HWC, as torchvision's CIFAR10 holds them

    pil = transforms.Compose(
        [
            transforms.RandomCrop(size, padding=CROP_PADDING),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(data.mean, data.std),
        ]
    )
    tensors = v2.Compose(
        [
            v2.RandomCrop(size, padding=CROP_PADDING),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(data.mean, data.std),
        ]
    )

    def batched() -> None:
        for batch in batches(images):
            data.to_input(batch, training=True)

    def per_sample_pil() -> None:
        for i in range(0, len(arrays), BATCH):
            torch.stack([pil(Image.fromarray(a)) for a in arrays[i : i + BATCH]])

    def per_sample_v2() -> None:
        for batch in batches(images):
            torch.stack([tensors(image) for image in batch])

    ways = {"batched": batched, "PIL": per_sample_pil, "v2 tensors": per_sample_v2}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.passes):
        for name, run in ways.items():
            start = time.perf_counter()
            run()
            rates[name].append(len(images) / (time.perf_counter() - start))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(", ".join(f"{name}: {rate:,.0f} images/s" for name, rate in median.items()))

    what = f"crop + flip + normalise, {len(images):,} images {size}x{size}, batches of {BATCH}"
    figures = [
        Figure(
            "augment",
            f"batched augmentation, images/s ({what})",
            median["batched"],
            f"torchvision per-sample pipeline, {way}",
            median[way],
        )
        for way in ("PIL", "v2 tensors")
    ]
    markdown = "\n".join(
        [
            f"# Batched augmentation ({datetime.now():%Y-%m-%d %H:%M})",
            "",
            f"`python bench/augment.py {' '.join(sys.argv[1:])}` on {cpu_name()}, "
            f"{torch.get_num_threads()} torch threads: {what}; median of {args.passes} passes. "
            "The ratio is the speed-up of the batched augmentation.",
            "",
            markdown_table([f.row() for f in figures]),
            "",
            "| way | " + " | ".join(f"pass {i + 1}" for i in range(args.passes)) + " |",
            "|---|" + "---|" * args.passes,
            *(
                f"| {name} | " + " | ".join(f"{r:,.0f}/s" for r in values) + " |"
                for name, values in rates.items()
            ),
        ]
    )
    write("augment", figures, markdown + "\n")


if __name__ == "__main__":
    main()
