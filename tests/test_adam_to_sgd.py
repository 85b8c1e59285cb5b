"""optimizer=adam_to_sgd: torch's Adam up to switch_epoch, torch's SGD with momentum after,
the schedule's shape carried over the switch. (Resume on either side: test_resume.py.)"""

import copy

import pytest
import torch

from helpers import TINY_OCR, compose_cfg, logged_lrs
from optsweep.adam_to_sgd import AdamToSGD
from optsweep.train import fit
from schedule_runs import MIN_LR, PLAIN_EPOCHS, SCHEDULERS, STEPS_PER_EPOCH, run_schedule


def steps(models, optimizers, n: int) -> None:
    generator = torch.Generator().manual_seed(0)
    for _ in range(n):
        x = torch.randn(16, 6, generator=generator)
        for model, optimizer in zip(models, optimizers, strict=True):
            optimizer.zero_grad()
            model(x).square().mean().backward()
            optimizer.step()
        for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_it_is_torch_adam_then_torch_sgd_step_for_step():
    torch.manual_seed(0)
    ours = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    reference = copy.deepcopy(ours)
    hyper = {"weight_decay": 0.01}
    optimizer = AdamToSGD(ours.parameters(), lr=0.01, sgd_lr=0.1, switch_epoch=1, **hyper)
    steps(
        [ours, reference], [optimizer, torch.optim.Adam(reference.parameters(), 0.01, **hyper)], 5
    )
    assert optimizer.switch_to_sgd() == pytest.approx(10)
    sgd = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, **hyper)
    steps([ours, reference], [optimizer, sgd], 5)


def run(tmp_path, *overrides: str) -> list[float]:
    fit(compose_cfg([*TINY_OCR, "test=false", *overrides], tmp_path))
    return logged_lrs(tmp_path)


def test_a_fit_switches_at_switch_epoch_with_both_lrs_scaled(tmp_path):
    # Batch 32 against a base of 64, linear rule: both LRs are halved.
    lrs = run(
        tmp_path,
        *("optimizer=adam_to_sgd", "optimizer.switch_epoch=2", "optimizer.sgd_lr=0.05"),
        *("lr=0.02", "lr_scaling=linear", "base_batch_size=64", "epochs=4"),
    )
    assert lrs == pytest.approx([0.01] * 6 + [0.025] * 6, rel=1e-5)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    (state,) = last["optimizer_states"]
    assert {g["phase"] for g in state["param_groups"]} == {"sgd"}
    # SGD's momentum buffers; Adam's moments were dropped at the switch.
    assert all(s.keys() == {"momentum_buffer"} for s in state["state"].values())


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_the_schedule_carries_over_the_switch(tmp_path, plain_lrs, scheduler):
    # Against the plain run with Adam throughout (plateau watches word accuracy, which stays
    # 0: it reduces the same way whatever the optimizer). The floor (cosine, cosine_restarts,
    # plateau, wsd) is scaled with the rest.
    switched = run_schedule(
        tmp_path,
        scheduler,
        PLAIN_EPOCHS,
        f"min_lr={MIN_LR}",
        *("optimizer=adam_to_sgd", "optimizer.switch_epoch=2", "optimizer.sgd_lr=0.05"),
    )
    switch_step = 2 * STEPS_PER_EPOCH
    expected = [lr * (5 if t >= switch_step else 1) for t, lr in enumerate(plain_lrs(scheduler))]
    assert switched == pytest.approx(expected, rel=1e-5)
