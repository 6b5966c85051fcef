"""ReSSL (Zheng et al., "Relational Self-Supervised Learning", NeurIPS'21 / TPAMI).

    z¹ = q(g_s(F_s(x¹))) / ||.||       student: strong ("contrastive") view x¹, predictor q optional
    z² = g_t(F_t(x²)) / ||.||          teacher: weak view x² (random resized crop + flip), no gradient
    p¹ = softmax(z¹·Q / τs),  p² = softmax(z²·Q / τt)      relations to the memory Q (Eq. 3, 4)
    L_relation = H(p², p¹)                                  (Eq. 5; H(p²) is constant)
    L = α L_relation + (1 - α) L_InfoNCE,  α = step / warmup_step   (Eq. 7, optional warm-up;
                                            the negatives of InfoNCE are the memory Q)
    F_t <- m F_t + (1 - m) F_s,  g_t <- m g_t + (1 - m) g_s          (Eq. 6)
    Q <- FIFO of past teacher embeddings z²

Multi-crop: several student views (e.g. 224/192/160/128/96 px); the relation loss is
averaged over them, each against the one weak teacher view.

Batch norm (seed, Sec. 4 "Implementation details"): global BN with the predictor, shuffle-BN
without it. ``bn: shuffle`` emulates ``bn_splits`` GPUs: every network's BN statistics are
computed per group of the batch (SplitBatchNorm2d) and the teacher sees the batch in a
random order (under DDP the shuffle crosses processes, as in MoCo); ``bn: global`` is one
BN over the batch (with ``train.sync_bn`` over all processes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.data.augment import ViewSpec
from pretrain.losses import info_nce, relation_loss
from pretrain.methods.common import (InfoNCEWarmup, MemoryQueue, batch_shuffled, mlp, momentum_copy,
                                     momentum_update, split_batch_norm)
from pretrain.models.resnet import build_backbone

# Seed 003, Sec. 4 (small/medium datasets): RRC scale (0.2, 1), colour distortion strength 0.5
# (jitter 0.4/0.4/0.4/0.1) with p 0.8, Gaussian blur p 0.5; grayscale 0.2 as MoCo v2.
STRONG_VIEW = dict(scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8, gray_p=0.2, blur_p=0.5)
# Table 4's best teacher augmentation: random resized crop (0.2, 1) + horizontal flip only.
WEAK_VIEW = dict(scale=(0.2, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0, solarize_p=0.0)


class ReSSL(InfoNCEWarmup, nn.Module):
    def __init__(self, arch: str = "resnet50", stem: str = "imagenet", dim: int = 512,
                 hidden_dim: int = 4096, head_bn: bool = False, predictor: bool = True,
                 memory: int = 65536, tau_s: float = 0.1, tau_t: float = 0.04,
                 tau_infonce: float = 0.2, infonce_warmup_epochs: float = 0, bn: str = "global",
                 bn_splits: int = 8, teacher_view: dict | None = None,
                 student_views: list[dict] | None = None):
        super().__init__()
        if bn not in ("global", "shuffle"):
            raise ValueError(f"bn must be 'global' or 'shuffle', got {bn!r}")
        self.tau_s, self.tau_t, self.tau_infonce = tau_s, tau_t, tau_infonce
        self.infonce_warmup_epochs = infonce_warmup_epochs
        self.encoder = build_backbone(arch, stem=stem)                                     # F_s
        self.projector = mlp(self.encoder.num_features, hidden_dim, dim, batch_norm=head_bn)  # g_s
        self.predictor = mlp(dim, hidden_dim, dim, batch_norm=head_bn) if predictor else nn.Identity()  # q
        if bn == "shuffle":
            split_batch_norm(self.encoder, bn_splits)
        self.teacher_encoder = momentum_copy(self.encoder)                                 # F_t
        self.teacher_projector = momentum_copy(self.projector)                             # g_t
        self.memory = MemoryQueue(memory, dim)                                             # Q
        self.shuffle_bn = bn == "shuffle"
        self.views = [ViewSpec.from_dict(teacher_view or WEAK_VIEW)] + [
            ViewSpec.from_dict(v) for v in (student_views or [STRONG_VIEW])]

    @property
    def backbone(self) -> nn.Module:
        return self.encoder

    @torch.no_grad()
    def update_momentum(self, m: float) -> None:
        momentum_update(self.encoder, self.teacher_encoder, m)
        momentum_update(self.projector, self.teacher_projector, m)

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> torch.Tensor:
        net = lambda v: self.teacher_projector(self.teacher_encoder(v))  # noqa: E731
        z = batch_shuffled(net, x, self._generator) if self.shuffle_bn else net(x)
        return F.normalize(z.float(), dim=1)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        weak, *strong = views
        z2 = self.teacher(weak)
        memory = self.memory()
        alpha = self.alpha()
        relation, nce = 0.0, 0.0
        for x1 in strong:
            z1 = F.normalize(self.predictor(self.projector(self.encoder(x1))).float(), dim=1)
            relation = relation + relation_loss(z1, z2, memory, self.tau_s, self.tau_t) / len(strong)
            if alpha < 1:
                nce = nce + info_nce(z1, z2, memory, self.tau_infonce) / len(strong)
        loss = alpha * relation + (1 - alpha) * nce
        self.memory.push(z2)
        return loss, {"relation": float(relation.detach()), "alpha": alpha}


def student_view_specs(views: dict) -> list[dict]:
    """Student views from a config ``views`` block: ``student`` (one crop, merged over the
    defaults) or ``student_crops`` (multi-crop: a list of per-crop overrides of ``student``)."""
    base = {**STRONG_VIEW, **views.get("student", {})}
    return [{**base, **crop} for crop in views.get("student_crops", [])] or [base]


def build(config: dict, arch: str, stem: str) -> ReSSL:
    m, views = config.get("method", {}), config.get("views", {})
    return ReSSL(arch=arch, stem=stem, dim=m.get("dim", 512), hidden_dim=m.get("hidden_dim", 4096),
                 head_bn=m.get("head_bn", False), predictor=m.get("predictor", True),
                 memory=m.get("memory", 65536), tau_s=m.get("tau_s", 0.1), tau_t=m.get("tau_t", 0.04),
                 tau_infonce=m.get("tau_infonce", 0.2),
                 infonce_warmup_epochs=m.get("infonce_warmup_epochs", 0), bn=m.get("bn", "global"),
                 bn_splits=m.get("bn_splits", 8),
                 teacher_view={**WEAK_VIEW, **views.get("teacher", {})},
                 student_views=student_view_specs(views))
