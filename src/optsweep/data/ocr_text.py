"""Charset handling for CTC: text <-> label indices, and greedy CTC decoding."""

import torch

from optsweep.errors import UserError

BLANK = 0


class Charset:
    """Index 0 is the CTC blank; character i of `chars` is class i + 1."""

    def __init__(self, chars: str) -> None:
        if len(set(chars)) != len(chars):
            repeated = "".join(sorted({c for c in chars if chars.count(c) > 1}))
            raise UserError(
                f"charset {chars!r} repeats {repeated!r}: list each character once in data.charset"
            )
        self.chars = chars
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def num_classes(self) -> int:
        return len(self.chars) + 1

    def unknown(self, text: str) -> set[str]:
        return {c for c in text if c not in self._index}

    def encode(self, text: str) -> list[int]:
        return [self._index[c] for c in text]

    def encode_batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded (N, max_len) targets and their lengths, the form nn.CTCLoss accepts."""
        lengths = torch.tensor([len(t) for t in texts], dtype=torch.long)
        targets = torch.zeros(len(texts), max(1, int(lengths.max())), dtype=torch.long)
        for row, text in enumerate(texts):
            targets[row, : len(text)] = torch.tensor(self.encode(text), dtype=torch.long)
        return targets, lengths

    def decode_targets(self, targets: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return [
            "".join(self.chars[i - 1] for i in row[:n].tolist())
            for row, n in zip(targets, lengths.tolist(), strict=True)
        ]

    def greedy_decode(self, logits: torch.Tensor) -> list[str]:
        """Best path per (N, T, C) sequence: argmax, merge repeats, drop blanks."""
        best = logits.argmax(dim=-1).cpu()
        texts = []
        for path in best:
            keep = torch.ones_like(path, dtype=torch.bool)
            keep[1:] = path[1:] != path[:-1]
            texts.append("".join(self.chars[i - 1] for i in path[keep].tolist() if i != BLANK))
        return texts
