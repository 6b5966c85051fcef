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

Symmetric (``symmetric: true``, the "2 crops; 2x backprop" rows of Tables 7 and 13): two
crops a, b of each image, each seen weakly by the teacher (z²_a, z²_b) and strongly by the
student (z¹_a, z¹_b); each student view learns the other crop's teacher relation:

    L_relation = ½ [H(p²_b, p¹_a) + H(p²_a, p¹_b)]
    L_InfoNCE  = ½ [NCE(z¹_a, z²_b) + NCE(z¹_b, z²_a)]      (warm-up, Eq. 7, same pairing)
    Q <- FIFO of z²_a and z²_b

(what the seed states and what is assumed: see ``ReSSL.forward_symmetric``).

Batch norm (seed, Sec. 4 "Implementation details"): global BN with the predictor, shuffle-BN
without it. ``bn: shuffle`` on one process emulates ``bn_splits`` GPUs: every network's BN
statistics are computed per group of the batch (SplitBatchNorm2d) and the teacher sees the
batch in a random order; under DDP each process is one BN group (``bn_splits`` is ignored) and
the shuffle crosses processes, as in MoCo; ``bn: global`` is one BN over the batch (with
``train.sync_bn`` over all processes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.data.augment import ViewSpec
from pretrain.losses import info_nce, relation_loss, symmetric_relation_loss
from pretrain.methods.common import (InfoNCEWarmup, MemoryQueue, batch_shuffled, mlp, momentum_copy,
                                     momentum_update, use_shuffle_bn)
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
                 student_views: list[dict] | None = None, symmetric: bool = False):
        super().__init__()
        student_views = student_views or [STRONG_VIEW]
        if symmetric and len(student_views) != 1:
            raise ValueError(f"symmetric ReSSL (2 crops) takes one student view spec, used for both "
                             f"crops; got {len(student_views)} (multi-crop `views.student_crops` and "
                             f"`symmetric` do not combine: the seed has no symmetrised multi-crop run)")
        self.tau_s, self.tau_t, self.tau_infonce = tau_s, tau_t, tau_infonce
        self.infonce_warmup_epochs = infonce_warmup_epochs
        self.encoder = build_backbone(arch, stem=stem)                                     # F_s
        self.projector = mlp(self.encoder.num_features, hidden_dim, dim, batch_norm=head_bn)  # g_s
        self.predictor = mlp(dim, hidden_dim, dim, batch_norm=head_bn) if predictor else nn.Identity()  # q
        self.shuffle_bn = use_shuffle_bn(bn, self.encoder, bn_splits)
        self.teacher_encoder = momentum_copy(self.encoder)                                 # F_t
        self.teacher_projector = momentum_copy(self.projector)                             # g_t
        self.memory = MemoryQueue(memory, dim)                                             # Q
        self.symmetric = symmetric
        weak = [ViewSpec.from_dict(teacher_view or WEAK_VIEW)]
        strong = [ViewSpec.from_dict(v) for v in student_views]
        # engine order: [weak, *strong] or, symmetric, [weak a, weak b, strong a, strong b]
        self.views = weak * 2 + strong * 2 if symmetric else weak + strong

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

    def student(self, x: torch.Tensor) -> torch.Tensor:
        """z¹ = q(g_s(F_s(x))) / ||.||"""
        return F.normalize(self.predictor(self.projector(self.encoder(x))).float(), dim=1)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        if self.symmetric:
            return self.forward_symmetric(views)
        weak, *strong = views
        z2 = self.teacher(weak)
        memory = self.memory()
        alpha = self.alpha()
        relation, nce = 0.0, 0.0
        for x1 in strong:
            z1 = self.student(x1)
            relation = relation + relation_loss(z1, z2, memory, self.tau_s, self.tau_t) / len(strong)
            if alpha < 1:
                nce = nce + info_nce(z1, z2, memory, self.tau_infonce) / len(strong)
        loss = alpha * relation + (1 - alpha) * nce
        self.memory.push(z2)
        return loss, {"relation": float(relation.detach()), "alpha": alpha}

    def forward_symmetric(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """ReSSL with "2 crops; 2x backprop".

        What seed 003 states: Tables 7 and 13 list "ReSSL (2 Crops)" among the "2x backprop
        methods" (with SimCLR, BYOL, "MoCo V2 - Symmetric", ...), which "generally require more
        GPU memories and longer training"; 200 epochs of it cost "2/3" of MoCo v3's 300, i.e. a
        step costs one symmetric two-crop step; multi-crop keeps "the rest of augmentation
        strategy consistent with our 1x and 2x setting". CGH (seed 000) defines 2x backprop as
        updating the encoder "twice at each training step using the two augmented views". No
        equation is given, and the official code has only the 1-crop and 5-crop runs.

        Assumed: (1) two crops a, b per image, each seen weakly by the teacher and strongly by the
        student (a strong view is never a target: the weak teacher of Sec. 4.4 in both directions;
        two student and two teacher passes per step, the cost of MoCo v3's step stated above);
        (2) a crop's student view learns the relation of the *other* crop's teacher view (the
        pairing of symmetric MoCo v2 / BYOL), the two terms averaged so the loss has the 1x scale;
        (3) both teacher embeddings enter the memory, which then holds K views of K/2 images;
        (4) the engine draws the four views independently, so a crop's weak and strong views do
        not share a crop box: as ReSSL's teacher and student crops are independent in 1x too, the
        expected loss is the same as with shared boxes, only the two terms' correlation differs.
        """
        weak_a, weak_b, strong_a, strong_b = views
        z2_a, z2_b = self.teacher(weak_a), self.teacher(weak_b)      # teacher, weak views
        z1_a, z1_b = self.student(strong_a), self.student(strong_b)  # student, strong views
        memory = self.memory()
        alpha = self.alpha()
        relation = symmetric_relation_loss(z1_a, z1_b, z2_a, z2_b, memory, self.tau_s, self.tau_t)
        nce = 0.0
        if alpha < 1:
            nce = 0.5 * (info_nce(z1_a, z2_b, memory, self.tau_infonce)
                         + info_nce(z1_b, z2_a, memory, self.tau_infonce))
        loss = alpha * relation + (1 - alpha) * nce
        self.memory.push(torch.cat([z2_a, z2_b]))
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
                 student_views=student_view_specs(views), symmetric=m.get("symmetric", False))
