"""How checkpoint files are written and read: a Lightning CheckpointIO plugin (given to the
Trainer in conf/trainer/default.yaml), so every save and load Lightning does goes through it.

Lightning's TorchCheckpointIO writes through an fsspec transaction whose temp file lives in
the system temp dir and is then moved onto the target. When $TMPDIR is on another file system
(a tmpfs /tmp, outputs on a network disk) that move is a copy: a kill during it leaves a
truncated checkpoint, a kill before it a temp file in $TMPDIR, and nothing is fsynced. Here the
temp file sits beside its target, so the final rename is atomic on every local file system,
and it is fsynced before the rename and the directory after it, so a crash of the machine
cannot leave a renamed but empty file either.
"""

import io
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from optsweep.checkpoints import load_checkpoint
from optsweep.durable import replaced_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint whole or not at all, and reads one only the weights-only way."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Serialised in memory first, as Lightning does: a signal whose handler raises (submitit
        # requeues a preempted job by raising SystemExit) can then only interrupt the file write,
        # where it comes out as itself. Inside torch's writer it became a RuntimeError ("unexpected
        # pos"), and the preempted trial was recorded failed instead of interrupted.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        with replaced_atomically(target, binary=True) as f:
            f.write(buffer.getbuffer())

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        # Lightning passes weights_only=None, and torch then lets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
        # unpickle anything: a checkpoint from elsewhere could run code. Ours load weights-only.
        return load_checkpoint(Path(path))
