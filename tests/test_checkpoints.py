"""What a checkpoint holds: model, optimizer and scheduler state, safe to load, well named."""

import re
from pathlib import Path

import pytest
import torch

from helpers import TINY_OCR, compose_cfg
from killer import OptimizerStateProbe
from optsweep.train import fit

NAME = re.compile(
    r"optimizer=(\w+)-lr=([\d.e-]+)-scheduler=(\w+)-epoch=(\d\d)-val_loss=(\d+\.\d{4})\.ckpt"
)


@pytest.mark.parametrize(
    ("optimizer", "state_key"), [("adam", "exp_avg"), ("sgd", "momentum_buffer")]
)
def test_checkpoint_holds_optimizer_and_scheduler_state(tmp_path, optimizer, state_key):
    cfg = compose_cfg(
        [*TINY_OCR, f"optimizer={optimizer}", "lr=0.002", "scheduler=step", "epochs=2"], tmp_path
    )
    result = fit(cfg)
    best, last = Path(result["checkpoints"]["best"]), Path(result["checkpoints"]["last"])
    optimizer_name, lr, scheduler, epoch, val_loss = NAME.fullmatch(best.name).groups()
    assert (optimizer_name, float(lr), scheduler) == (optimizer, 0.002, "step")
    assert float(val_loss) == pytest.approx(result["best"]["val/loss"], abs=1e-4)
    assert int(epoch) == result["best"]["epoch"]

    for path in (best, last):
        # weights_only=True: plain containers and tensors only, no pickled OmegaConf objects.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        states = checkpoint["optimizer_states"][0]["state"]
        assert states and all(state_key in s for s in states.values())
        assert checkpoint["lr_schedulers"][0]["step_size"] == 3
        assert isinstance(checkpoint["hyper_parameters"]["config"], dict)
        assert "rng_states" in checkpoint

    # Resuming hands training exactly the saved optimizer state (probed at on_train_start).
    OptimizerStateProbe.seen.clear()
    probe = ["+callbacks.probe._target_=killer.OptimizerStateProbe"]
    resumed = [*TINY_OCR, f"optimizer={optimizer}", "lr=0.002", "scheduler=step", "epochs=3"]
    fit(compose_cfg([*resumed, *probe, f"ckpt_path={last}"], tmp_path / "resumed"))
    (seen,) = OptimizerStateProbe.seen
    saved = torch.load(last, map_location="cpu", weights_only=True)["optimizer_states"][0]["state"]
    assert seen.keys() == saved.keys()
    for index, state in saved.items():
        torch.testing.assert_close(seen[index][state_key], state[state_key], rtol=0, atol=0)
