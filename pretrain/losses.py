"""Losses as pure functions of tensors (the method files call them; tests check them
against independently written references)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float) -> torch.Tensor:
    """MoCo's InfoNCE. q, k: (N, D) L2-normalised queries and positive keys; queue:
    (K, D) L2-normalised negatives. Logits = [q.k, q.queue] / tau, target index 0,
    cross-entropy averaged over the batch."""
    positive = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.t()
    logits = torch.cat([positive, negatives], dim=1) / tau
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's regression loss for one direction: mean over the batch of
    ||p/||p|| - z/||z||||^2 = 2 - 2 cos(p, z). (z is the target projection, no gradient.)"""
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()
