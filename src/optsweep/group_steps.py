"""Optimizers that update each param group its own way through torch's functional updates
(adam_to_sgd.py: Adam, then SGD; muon.py: Muon on some groups, AdamW on the others)."""

from collections.abc import Callable

import torch


class GroupStepOptimizer(torch.optim.Optimizer):
    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self.step_group(group, params)
        return loss

    def step_group(self, group: dict, params: list[torch.Tensor]) -> None:
        """Updates `params`, the group's parameters that have a gradient."""
        raise NotImplementedError


def adam_step(update: Callable, group: dict, params: list[torch.Tensor], state: dict) -> None:
    """Adam's (`update`: torch.optim.adam.adam) or AdamW's (torch.optim.adamw.adamw) update,
    keeping the per-parameter state torch's own Adam keeps, so a checkpoint reads the same."""
    states = [state[p] for p in params]
    for s, p in zip(states, params, strict=True):
        if "exp_avg" not in s:
            s["step"] = torch.tensor(0.0)
            s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            s["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    beta1, beta2 = group["betas"]
    update(
        params,
        [p.grad for p in params],
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
        [],
        [s["step"] for s in states],
        amsgrad=False,
        beta1=beta1,
        beta2=beta2,
        lr=group["lr"],
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=False,
    )
