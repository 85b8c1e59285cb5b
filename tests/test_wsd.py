"""WSD's use: a run cut at the end of its stable phase and continued, from that checkpoint, into
a longer run with another decay, whose LR follows the new run's schedule, not the old one's."""

import logging
import math

import pytest
import torch

from helpers import TINY_OCR, compose_cfg, logged_lrs
from optsweep.errors import UserError
from optsweep.train import fit
from optsweep.wsd import WSD

LR, MIN_LR = 0.01, 0.001
STEPS_PER_EPOCH = 3  # 96 samples, batch 32


def test_a_run_cut_after_its_stable_phase_continues_with_the_new_runs_decay(tmp_path):
    common = [*TINY_OCR, f"lr={LR}", f"min_lr={MIN_LR}", "scheduler=wsd", "test=false"]
    # 2 epochs, 6 steps, the last half decaying from step 3: the stable phase ends with epoch 0.
    # Every epoch's checkpoint is kept, so the one at the end of the stable phase is there.
    first = [*common, "epochs=2", "scheduler.scheduler.decay_fraction=0.5"]
    fit(compose_cfg([*first, "callbacks.model_checkpoint.save_top_k=-1"], tmp_path / "first"))
    decay = [LR * 2 / 3 + MIN_LR / 3, LR / 3 + MIN_LR * 2 / 3]
    assert logged_lrs(tmp_path / "first") == pytest.approx([LR] * 4 + decay, rel=1e-6)
    (stable_end,) = (tmp_path / "first" / "checkpoints").glob("*-epoch=00-*.ckpt")

    # Continued to 4 epochs (12 steps), the last quarter (3 steps) decaying along a cosine.
    longer = [*common, "epochs=4", "scheduler.scheduler.decay_fraction=0.25"]
    longer += ["scheduler.scheduler.decay=cosine", f"ckpt_path='{stable_end}'"]
    fit(compose_cfg(longer, tmp_path / "continued"))
    cosine = [MIN_LR + (LR - MIN_LR) * (1 + math.cos(math.pi * t / 3)) / 2 for t in range(3)]
    assert logged_lrs(tmp_path / "continued") == pytest.approx([LR] * 6 + cosine, rel=1e-6)


def test_a_schedule_that_keeps_its_run_length_is_not_continued_to_another_length(tmp_path):
    # Continued to 2 epochs, a 1-epoch cosine would climb back up past its end (onecycle would
    # stop with a traceback): refused in one line before anything trains.
    common = [*TINY_OCR, "scheduler=cosine", "test=false"]
    fit(compose_cfg([*common, "epochs=1"], tmp_path / "first"))
    (last,) = (tmp_path / "first").glob("**/last.ckpt")
    with pytest.raises(UserError, match="whose state keeps that run length"):
        fit(compose_cfg([*common, "epochs=2", f"ckpt_path='{last}'"], tmp_path / "longer"))


def test_continued_from_inside_its_decay_the_next_step_has_the_new_runs_lr(caplog):
    # 10 steps decaying from step 5, cut after 8 (next LR 0.4 * LR); continued to 20 steps
    # decaying from step 10, where step 8 is in the stable phase: LR, and a warning says so.
    param = torch.nn.Parameter(torch.zeros(1))
    cut = WSD(torch.optim.SGD([param], lr=LR), total_steps=10, decay_fraction=0.5)
    for _ in range(8):
        cut.optimizer.step()
        cut.step()
    assert cut.get_last_lr() == pytest.approx([0.4 * LR])
    optimizer = torch.optim.SGD([param], lr=LR)
    continued = WSD(optimizer, total_steps=20, decay_fraction=0.5)
    optimizer.load_state_dict(cut.optimizer.state_dict())  # Lightning's order
    with caplog.at_level(logging.WARNING, logger="optsweep"):
        continued.load_state_dict(cut.state_dict())
    assert optimizer.param_groups[0]["lr"] == LR
    assert "step 8 of 20 continues with lr 0.01 instead of 0.004" in caplog.text


def test_decay_fraction_0_is_a_stable_phase_to_be_continued():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = WSD(optimizer, total_steps=5, decay_fraction=0)
    for _ in range(5):  # Lightning steps the scheduler after every step, the last one too
        optimizer.step()
        scheduler.step()
        assert scheduler.get_last_lr() == [LR]
