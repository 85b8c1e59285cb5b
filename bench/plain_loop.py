"""The yardstick of bench/harness.py: the work of `python train.py` on the embedded OCR task,
as a plain PyTorch loop with no Lightning, Hydra or torchmetrics.

The same lines (render_sample, same seed and sizes), the same CRNN, Adam with the same
settings, batch size, data loader workers (none), precision (fp32) and thread count (torch's
default in both); per epoch, a validation pass computing what the harness logs (val loss, word
accuracy, CER) and a checkpoint of model + optimizer.

    python bench/plain_loop.py --train-size 3000 --val-size 1000 --epochs 2 --out DIR
"""

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from optsweep.data.ocr_image import to_model_input
from optsweep.data.ocr_render import render_sample
from optsweep.data.ocr_text import Charset
from optsweep.models.crnn import CRNN

# conf/data/ocr_synth.yaml, conf/model/crnn.yaml, conf/optimizer/adam.yaml, conf/train.yaml
CHARSET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MIN_LEN, MAX_LEN, HEIGHT, WIDTH = 4, 8, 32, 128
SEED, LR, BATCH_SIZE = 42, 1e-3, 64


def split(name: str, count: int, charset: Charset) -> TensorDataset:
    samples = [
        render_sample(SEED, name, i, CHARSET, MIN_LEN, MAX_LEN, (WIDTH, HEIGHT))
        for i in range(count)
    ]
    targets, lengths = charset.encode_batch([text for _, text in samples])
    return TensorDataset(torch.stack([image for image, _ in samples]), targets, lengths)


def ctc_loss(ctc: nn.CTCLoss, outputs: torch.Tensor, targets, lengths) -> torch.Tensor:
    log_probs = outputs.log_softmax(-1).transpose(0, 1)
    frames = torch.full((outputs.shape[0],), outputs.shape[1], dtype=torch.long)
    return ctc(log_probs, targets, frames, lengths)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, required=True)
    parser.add_argument("--val-size", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.monotonic()  # after the imports: what result.json's wall_seconds counts
    args.out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(SEED)
    charset = Charset(CHARSET)
    train = DataLoader(split("train", args.train_size, charset), BATCH_SIZE, shuffle=True)
    val = DataLoader(split("val", args.val_size, charset), BATCH_SIZE)
    model = CRNN(charset.num_classes, height=HEIGHT)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)

    for epoch in range(args.epochs):
        model.train()
        losses = []
        for images, targets, lengths in train:
            loss = ctc_loss(ctc, model(to_model_input(images)), targets, lengths)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

        model.eval()
        val_losses, exact, errors, chars = [], 0, 0, 0
        with torch.inference_mode():  # as Lightning validates
            for images, targets, lengths in val:
                outputs = model(to_model_input(images))
                val_losses.append(ctc_loss(ctc, outputs, targets, lengths).item())
                truth = charset.decode_targets(targets, lengths)
                for p, t in zip(charset.greedy_decode(outputs), truth, strict=True):
                    exact += p == t
                    errors += edit_distance(p, t)
                    chars += len(t)
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch},
            args.out / "last.pt",
        )
        print(
            f"epoch {epoch}: train/mean_loss={sum(losses) / len(losses):.4f} "
            f"val/loss={sum(val_losses) / len(val_losses):.4f} "
            f"val/word_acc={exact / args.val_size:.4f} val/cer={errors / chars:.4f} "
            f"threads={torch.get_num_threads()}",
            flush=True,
        )
    print(f"run: {time.monotonic() - started:.2f} s after the imports")


if __name__ == "__main__":
    main()
