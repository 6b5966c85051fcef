"""Optimisers the papers use: SGD, LARS (BN/bias excluded from adaptation and weight
decay), AdamW. Parameter groups are built once here for all of them."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling (You et al. 2017) as used by BYOL/ReSSL/LEWEL.

    For a group with ``lars_adapt=True``: g <- g + wd * w; g <- g * eta * ||w|| / ||g||
    (when both norms are positive); then heavy-ball momentum. Groups with
    ``lars_adapt=False`` (norm layers and biases) take plain momentum SGD without
    weight decay.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.001):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                      eta=eta, lars_adapt=True))

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["lars_adapt"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(grad)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm,
                                        torch.ones_like(w_norm))
                    grad = grad.mul(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.clone(grad).detach()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def parameter_groups(model: nn.Module, weight_decay: float, exclude_bn_bias: bool,
                     lr_mult: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Weights (decayed, LARS-adapted) and 1-d parameters -- norm-layer scales/shifts and
    biases -- which get no weight decay or LARS adaptation when ``exclude_bn_bias`` is true.
    ``lr_mult`` maps a submodule name (e.g. ``predictor``) to a learning-rate multiplier: its
    parameters get their own groups with ``lr_mult`` set, which the engine's schedule applies."""
    lr_mult = dict(lr_mult or {})
    names = {name for name, _ in model.named_children()}
    unknown = sorted(set(lr_mult) - names)
    if unknown:
        raise ValueError(f"optim.lr_mult names {unknown}, which are not submodules of "
                         f"{type(model).__name__} (it has {sorted(names)})")
    groups: dict[tuple[float, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            mult = float(lr_mult.get(name.split(".", 1)[0], 1.0))
            plain = exclude_bn_bias and p.ndim <= 1
            groups.setdefault((mult, plain), []).append(p)
    out = []
    for (mult, plain), params in sorted(groups.items(), key=lambda kv: (kv[0][0] != 1.0, kv[0][1])):
        group = {"params": params, "weight_decay": 0.0 if plain else weight_decay, "lars_adapt": not plain}
        if mult != 1.0:
            group["lr_mult"] = mult
        out.append(group)
    return out


def build_optimizer(model: nn.Module, optim: dict[str, Any], lr: float) -> torch.optim.Optimizer:
    name = optim.get("name", "sgd")
    groups = parameter_groups(model, optim.get("weight_decay", 0.0), optim.get("exclude_bn_bias", False),
                              optim.get("lr_mult"))
    if name == "sgd":
        for g in groups:
            g.pop("lars_adapt")
        return torch.optim.SGD(groups, lr=lr, momentum=optim.get("momentum", 0.9),
                               nesterov=optim.get("nesterov", False))
    if name == "lars":
        return LARS(groups, lr=lr, momentum=optim.get("momentum", 0.9), eta=optim.get("eta", 0.001))
    if name == "adamw":
        for g in groups:
            g.pop("lars_adapt")
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(optim.get("betas", (0.9, 0.999))))
    raise ValueError(f"unknown optimizer {name!r}; expected sgd, lars or adamw")
