"""Global RNG state as checkpoint-safe containers.

Lightning does not checkpoint RNG state, so a resumed run would draw different augmentations
than an uninterrupted one. Everything here is tensors, ints and lists so the checkpoint still
loads with `torch.load(weights_only=True)` (a numpy state array would not).
"""

import logging
import random

import numpy as np
import torch

log = logging.getLogger(__name__)


def collect_rng_states() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": list(random.getstate()),
    }


def restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    _restore_cuda(states["cuda"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def _restore_cuda(saved: list) -> None:
    """One generator per device the saving process saw, restored for the devices this one sees.
    The Trainer trains on one device, so only the first generator was drawn from: resuming on a
    machine with fewer GPUs (or none) loses nothing that matters, and torch would raise on a
    list longer than the device count."""
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if len(saved) != visible:
        log.info(
            "the checkpoint holds the CUDA RNG state of %d device(s), this process sees %d: "
            "restoring %d",
            len(saved),
            visible,
            min(len(saved), visible),
        )
    for device, state in enumerate(saved[:visible]):
        torch.cuda.set_rng_state(state, device)
