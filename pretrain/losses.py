"""Losses as pure functions of tensors (the method files call them; tests check them
against independently written references).

Precision: every loss runs in float32 with autocast disabled inside (``fp32``): similarity
logits divided by temperatures of 0.01-0.2 lose accuracy in bfloat16 (at tau_t 0.01 the bf16
and fp32 target distributions differ by a few percent in total variation). Inputs computed
under autocast (bf16 embeddings) are cast to float32 on entry.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def fp32(loss):
    """Run ``loss`` with autocast off (on the device of its first tensor argument) and every
    floating-point tensor argument cast to float32."""

    @functools.wraps(loss)
    def wrapper(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        cast = lambda a: a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a  # noqa: E731
        with torch.autocast(tensors[0].device.type if tensors else "cpu", enabled=False):
            return loss(*map(cast, args), **{k: cast(v) for k, v in kwargs.items()})

    return wrapper


@fp32
def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float) -> torch.Tensor:
    """MoCo's InfoNCE. q, k: (N, D) L2-normalised queries and positive keys; queue:
    (K, D) L2-normalised negatives. Logits = [q.k, q.queue] / tau, target index 0,
    cross-entropy averaged over the batch."""
    positive = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.t()
    logits = torch.cat([positive, negatives], dim=1) / tau
    target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)


@fp32
def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's regression loss for one direction: mean over the batch of
    ||p/||p|| - z/||z||||^2 = 2 - 2 cos(p, z). (z is the target projection, no gradient.)"""
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


@fp32
def relation_loss(student: torch.Tensor, teacher: torch.Tensor, queue: torch.Tensor,
                  tau_s: float, tau_t: float, teacher_queue: torch.Tensor | None = None) -> torch.Tensor:
    """ReSSL's relational consistency H(p², p¹) (its Eq. 3-5).

    student: (N, D) student embeddings z¹ (strong view); teacher: (N, D) teacher embeddings
    z² (weak view); queue: (K, D) memory of past teacher embeddings; all L2-normalised.
    p¹ = softmax(z¹·Q/τs), p² = softmax(z²·Q/τt) (the sharper target, no gradient);
    returns -Σ_k p²_k log p¹_k averaged over the batch. There is no positive logit: the
    relation is over the memory only.

    ``teacher_queue`` (K, D') lets the target be measured in another embedding space whose
    memory holds the same K samples in the same order (CGH's cross-context terms); by
    default it is ``queue``.
    """
    teacher_queue = queue if teacher_queue is None else teacher_queue
    target = F.softmax(teacher.detach() @ teacher_queue.t() / tau_t, dim=1)
    log_student = F.log_softmax(student @ queue.t() / tau_s, dim=1)
    return -(target * log_student).sum(dim=1).mean()


@fp32
def symmetric_relation_loss(student_a: torch.Tensor, student_b: torch.Tensor, teacher_a: torch.Tensor,
                            teacher_b: torch.Tensor, queue: torch.Tensor, tau_s: float,
                            tau_t: float) -> torch.Tensor:
    """Symmetrised ReSSL ("2 crops; 2x backprop"): each crop's student embedding learns the
    relation of the *other* crop's teacher embedding, the two directions averaged:

        ½ [H(p²_b, p¹_a) + H(p²_a, p¹_b)]

    student_*: (N, D) student embeddings of the strong views of crops a, b; teacher_*: (N, D)
    teacher embeddings of the weak views of crops a, b; queue: (K, D); all L2-normalised.
    Each term is ``relation_loss`` (batch mean), so the scale matches the 1-crop loss.
    """
    return 0.5 * (relation_loss(student_a, teacher_b, queue, tau_s, tau_t)
                  + relation_loss(student_b, teacher_a, queue, tau_s, tau_t))


def nearest_neighbours(features: torch.Tensor, bank: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (P, k) of the k most cosine-similar rows of ``bank`` (K, D) for each row of
    ``features`` (P, D), most similar first (kNN-MoCo's mining, Revisiting Alg. 2). Computed
    in fp32 without gradient."""
    with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
        sim = F.normalize(features.float(), dim=1) @ F.normalize(bank.float(), dim=1).t()
        return sim.topk(k, dim=1).indices


def knn_nce(q: torch.Tensor, queue: torch.Tensor, neighbours: torch.Tensor, tau: float) -> torch.Tensor:
    """kNN-MoCo's auxiliary loss (Revisiting Eq. 2 / Alg. 2 ``multi_label_CE(l_neg/t, indices)``).

    q: (P, D) L2-normalised embeddings of the positives; queue: (K, D) L2-normalised keys
    (the negatives of InfoNCE); neighbours: (P, k) indices into the queue of each positive's
    mined neighbours. With l = q·queue / τ, each positive's loss is the mean over its k
    neighbours of -log softmax(l)[neighbour] (the softmax over the K queue entries only, no
    positive key), averaged over the P positives. fp32 inside, autocast off."""
    with torch.autocast(q.device.type, enabled=False):
        log_prob = F.log_softmax(q.float() @ queue.float().t() / tau, dim=1)
        return -log_prob.gather(1, neighbours).mean()


def pixel_info_nce(student: torch.Tensor, teacher: torch.Tensor, queue: torch.Tensor, tau: float) -> torch.Tensor:
    """PCD's pixel-wise contrastive distillation loss (its Eq. 3-4).

    student: (N, C, H, W) student maps s*; teacher: (N, C, H, W) teacher maps t of the same size
    (no gradient); queue: (K, C) L2-normalised negatives n^k. Each pixel's vectors s*_i, t_i are
    L2-normalised over C; per pixel ℓ = -log exp(s*_i·t_i/τ) / (exp(s*_i·t_i/τ) + Σ_k exp(s*_i·n^k/τ));
    returns the mean over the H×W pixels and the batch. With H = W = 1 (pooled maps) it is MoCo's
    InfoNCE on the pooled vectors (PCD's image-level variant). Computed in fp32 with autocast off:
    at τ 0.2 bf16 logits lose accuracy."""
    if student.shape != teacher.shape:
        raise ValueError(f"student maps {tuple(student.shape)} and teacher maps {tuple(teacher.shape)} differ")
    with torch.autocast(student.device.type, enabled=False):
        s = F.normalize(student.float(), dim=1).permute(0, 2, 3, 1).reshape(-1, student.shape[1])
        t = F.normalize(teacher.detach().float(), dim=1).permute(0, 2, 3, 1).reshape(-1, teacher.shape[1])
        positive = (s * t).sum(dim=1, keepdim=True)
        logits = torch.cat([positive, s @ queue.float().t()], dim=1) / tau
        return F.cross_entropy(logits, torch.zeros(s.shape[0], dtype=torch.long, device=s.device))


def _fp32(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.float() for t in tensors]


def aligned_info_nce(q: torch.Tensor, k: torch.Tensor, tau: float, offset: int = 0) -> torch.Tensor:
    """LEWEL_M's aligned loss L_a = (h/d) Σ_k InfoNCE(z'_k, z''_k) with in-batch negatives.

    q: (N, K, c) aligned query embeddings of this process's N images (K = d/h of them each);
    k: (M, K, c) aligned keys of the global batch (gathered over processes, in rank order);
    query i's positive is key ``offset + i``; its negatives are the keys of the same index
    k of the other M - 1 images. L2-normalised here; logits and softmax in fp32 (autocast off).
    Mean over the N queries and the K aligned embeddings."""
    with torch.autocast(q.device.type, enabled=False):
        q, k = (F.normalize(t, dim=-1) for t in _fp32(q, k))
        logits = torch.einsum("nkc,mkc->knm", q, k) / tau                   # (K, N, M)
        target = torch.arange(q.shape[0], device=q.device) + offset
        return F.cross_entropy(logits.flatten(0, 1), target.repeat(q.shape[1]))


def lewel_info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, q_aligned: torch.Tensor,
                   k_aligned: torch.Tensor, tau: float, beta: float, offset: int = 0) -> torch.Tensor:
    """LEWEL_M (its Eq. 3-4): (1 - β) InfoNCE(q, k; queue) + β ``aligned_info_nce``.

    q, k: (N, d) global query / key embeddings (L2-normalised here); queue: (Q, d) the FIFO of
    past L2-normalised keys (the global loss's negatives); q_aligned (N, K, c), k_aligned
    (M, K, c) and ``offset`` as in ``aligned_info_nce``. Computed in fp32 with autocast off."""
    with torch.autocast(q.device.type, enabled=False):
        q, k, queue = (F.normalize(t, dim=1) for t in _fp32(q, k, queue))
        return ((1 - beta) * info_nce(q, k, queue, tau)
                + beta * aligned_info_nce(q_aligned, k_aligned, tau, offset))


def lewel_byol_loss(p: torch.Tensor, z: torch.Tensor, p_aligned: torch.Tensor, z_aligned: torch.Tensor,
                    beta: float) -> torch.Tensor:
    """LEWEL_B, one direction (its Eq. 3, 5): (1 - β) ℓ(q(z'), z'') + β (h/d) Σ_k ℓ(s(z'_k), z''_k),
    ℓ = 2 - 2 cos (``byol_loss``), each averaged over the batch (and the K aligned embeddings).

    p: (N, d) predictions q(z'); z: (N, d) target projections; p_aligned: (N, K, c) predictions
    s(z'_k); z_aligned: (N, K, c) target aligned embeddings (no gradient). fp32, autocast off."""
    with torch.autocast(p.device.type, enabled=False):
        p, z, p_aligned, z_aligned = _fp32(p, z, p_aligned, z_aligned)
        return ((1 - beta) * byol_loss(p, z)
                + beta * byol_loss(p_aligned.flatten(0, 1), z_aligned.flatten(0, 1)))
