"""Muon (Jordan et al., 2024) on the weight matrices of the hidden layers, AdamW on the rest:
biases, normalisation weights, embeddings, the first layer and the output head, as its authors
advise (the first layer and the head see the input and output spaces, not hidden features).

One optimizer holds both halves, so Lightning, the schedulers and the warmup see one set of
param_groups and one checkpoint holds both states: a group's `use_muon` says which update it
gets. The updates are torch's own functional Muon and AdamW.

Conv kernels (out, in, kh, kw) of hidden layers go to Muon as the (out, in*kh*kw) matrix they
are, as in Keller Jordan's implementation: torch.optim.Muon takes 2-D parameters only, and a
conv net such as simple_cnn has no hidden 2-D layer at all, so Muon would otherwise do nothing.
"""

import logging

import torch
from torch import nn
from torch.optim._muon import DEFAULT_A, DEFAULT_B, DEFAULT_C, EPS, muon
from torch.optim.adamw import adamw

from optsweep.group_steps import GroupStepOptimizer, adam_step
from optsweep.optim import weight_decay_groups

log = logging.getLogger(__name__)


def _layers_with_matrices(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules that own a weight matrix or kernel, in registration order (for our models,
    and for the usual ones, the order of the forward pass)."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if any(p.ndim >= 2 for p in module.parameters(recurse=False))
    ]


def hidden_matrices(model: nn.Module) -> tuple[list[nn.Parameter], dict[str, str]]:
    """The parameters Muon takes, and what AdamW keeps of the weight matrices and why: the
    first and the last layer that own one (the first conv, the head), and embeddings."""
    layers = _layers_with_matrices(model)
    kept = {}
    if layers:
        kept[layers[0][0]] = "first layer"
        kept[layers[-1][0]] = "head"
    embeddings = (nn.Embedding, nn.EmbeddingBag)
    kept |= {name: "embedding" for name, m in layers if isinstance(m, embeddings)}
    hidden = [
        p
        for name, module in layers
        if name not in kept
        for p in module.parameters(recurse=False)
        if p.ndim >= 2 and p.requires_grad
    ]
    return hidden, kept


class Muon(GroupStepOptimizer):
    """torch's Muon on the groups with `use_muon`, torch's AdamW (betas, eps) on the others;
    `param_groups_for` makes those groups from a model."""

    def __init__(
        self,
        params,
        lr: float,
        adamw_lr: float | None = None,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
        ns_steps: int = 5,
        ns_eps: float = EPS,
        adjust_lr_fn: str | None = "match_rms_adamw",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        lr_scale: float = 1.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "use_muon": False,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": tuple(ns_coefficients),
            "ns_steps": ns_steps,
            "ns_eps": ns_eps,
            "adjust_lr_fn": adjust_lr_fn,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["use_muon"] and any(p.ndim < 2 for p in group["params"]):
                raise ValueError("Muon takes matrices and conv kernels only (ndim >= 2)")
            # The AdamW half's own LR, under the same batch-size rule as `lr` (which comes
            # scaled from the config); null: the same LR as Muon's.
            if not group["use_muon"] and adamw_lr is not None:
                group["lr"] = adamw_lr * lr_scale

    @staticmethod
    def param_groups_for(model: nn.Module, decay_1d: bool) -> list[dict]:
        """Muon's group first (its LR is the one logged as train/lr), then the usual
        weight-decay groups (optim.weight_decay_groups) of what AdamW takes."""
        hidden, kept = hidden_matrices(model)
        to_muon = {id(p) for p in hidden}
        groups = [{"params": hidden, "group": "muon", "use_muon": True}]
        for group in weight_decay_groups(model, decay_1d):
            params = [p for p in group["params"] if id(p) not in to_muon]
            groups.append({**group, "params": params, "group": f"adamw_{group['group']}"})
        log.info(
            "Muon takes %d hidden weight matrices; AdamW the rest, and of the matrices: %s",
            len(hidden),
            ", ".join(f"{name} ({why})" for name, why in kept.items()) or "none",
        )
        return [group for group in groups if group["params"]]

    def step_group(self, group: dict, params: list[torch.Tensor]) -> None:
        (self._muon_step if group["use_muon"] else self._adamw_step)(group, params)

    def _muon_step(self, group: dict, params: list[torch.Tensor]) -> None:
        buffers = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            buffers.append(state["momentum_buffer"])

        # Conv kernels as (out, in*kh*kw) views: the update lands in the kernel in place, and
        # the LR adjustment reads the matrix's shape, as in Keller Jordan's implementation.
        def matrix(t: torch.Tensor) -> torch.Tensor:
            return t.view(len(t), -1)

        muon(
            [matrix(p) for p in params],
            [matrix(p.grad) for p in params],
            [matrix(b) for b in buffers],
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            momentum=group["momentum"],
            nesterov=group["nesterov"],
            ns_coefficients=group["ns_coefficients"],
            ns_steps=group["ns_steps"],
            eps=group["ns_eps"],
            adjust_lr_fn=group["adjust_lr_fn"],
            has_complex=False,
        )

    def _adamw_step(self, group: dict, params: list[torch.Tensor]) -> None:
        adam_step(adamw, group, params, self.state)
