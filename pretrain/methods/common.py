"""Pieces several methods share: projection MLPs and the EMA (momentum) update."""
from __future__ import annotations

import copy

import torch
from torch import nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, batch_norm: bool = False) -> nn.Sequential:
    """Linear -> [BN] -> ReLU -> Linear (MoCo v2 head without BN; BYOL/ReSSL heads with)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden_dim))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
    return nn.Sequential(*layers)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float) -> None:
    """theta_target <- m * theta_target + (1 - m) * theta_online over parameters. Buffers
    (BN running statistics) are left alone: the target network keeps its own, as in
    MoCo's and BYOL's reference code."""
    online_params = [p.detach() for p in online.parameters()]
    target_params = list(target.parameters())
    torch._foreach_mul_(target_params, m)
    torch._foreach_add_(target_params, online_params, alpha=1 - m)


def momentum_copy(online: nn.Module) -> nn.Module:
    """The EMA (target / key) twin of ``online``: same initial weights, no gradient."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target
