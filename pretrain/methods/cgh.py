"""CGH: cross-context learning between global and hypercolumn features (Gao et al., WACV'24),
built on ReSSL.

    h_g = GAP(E(x))                                     global context
    h_h = GAP(ReLU(BN(Conv1x1([↓E^l(x) for l in layers]))))   hypercolumn context: stage maps
                                                        resized to the last map, concatenated
    z_g = H(h_g),  z_h = H^h(h_h)                       two projectors (2-layer MLPs), L2-normalised
    student: strong view x1 -> z_g1, z_h1;  teacher (EMA): weak view x2 -> z_g2, z_h2
    y_g1 = softmax(z_g1·Q/τs),   y_h2 = softmax(z_h2·Q_h/τh)     (Eq. 1, 2)
    y_h1 = softmax(z_h1·Q_h/τh), y_g2 = softmax(z_g2·Q/τt)       (Eq. 4)
    L = w · [CE(y_g1, y_h2) + CE(y_h1, y_g2)]                     (Eq. 6: w = 1, the SUM;
                                                                   ``reduction: mean``: w = 0.5)
    Q <- FIFO of z_g2,  Q_h <- FIFO of z_h2   (same samples, same order)
    E_t, H_t, H^h_t <- m · teacher + (1 - m) · student            (Eq. 7)

What follows the seed and what follows the authors' code (zaczgao/Cross-Context_Learning@340bca9,
``models/cgh.py``, ``models/criterion.py``, ``configs/cgh/imagenetcfg.py``), each a parameter:

- ``reduction``: ``sum`` is the seed's Eq. 6; ``mean`` (weights 0.5/0.5) is the authors' code.
- InfoNCE warm-up (``infonce_warmup_epochs``; the seed is silent, the code's ImageNet config uses
  5 epochs): L = α · L_CGH + (1 - α) · [NCE(z_g1, z_g2; Q) + NCE(z_h1, z_h2; Q_h)], α = step /
  warm-up steps, InfoNCE on BOTH contexts, each with its own memory, as the code does.
- ``hyper_resize``: how lower stage maps are brought to the last map's size. The seed says only
  "downsampled"; the code resizes bilinearly (align_corners False): ``bilinear`` (default).
  ``avgpool`` (adaptive average pooling) is the alternative. For a factor-2 resize the two agree
  exactly; they differ for the layer ablations of Table 7 (C2/C3 resized by 4 or 8).
- ``bn``: ``shuffle`` = the code's shuffle-BN (teacher batch shuffled, the encoders' BN split into
  ``bn_splits`` groups on one process, one group per process under DDP; the hypercolumn heads'
  BN is plain, as in the code), or ``global``.
- Multi-crop (``views.student_crops``): the first student crop enters both terms; every further
  (local) crop enters only the global-student / hypercolumn-teacher term CE(y_g1, y_h2), which is
  averaged over all crops, as the code does (its ``csist`` term); InfoNCE uses the first crop.

``context: same`` is the Table 5 ablation: each context learns from its own teacher context,
L = w · [CE(y_g1, y_g2) + CE(y_h1, y_h2)] (local crops in the global term). Table 5's
"global-context" row is plain ReSSL (the seed: "identical to ReSSL"), so it is a ReSSL config,
as is Table 7's L4-only row. ``predictor`` adds ReSSL's predictor on the student's global
embedding (CGH-pred).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.data.augment import ViewSpec
from pretrain.losses import info_nce, relation_loss
from pretrain.methods.common import (InfoNCEWarmup, MemoryQueue, batch_shuffled, mlp, momentum_copy,
                                     momentum_update, use_shuffle_bn)
from pretrain.methods.ressl import STRONG_VIEW, WEAK_VIEW, student_view_specs
from pretrain.models.resnet import ResNetBackbone, build_backbone


HYPER_RESIZE = ("bilinear", "avgpool")


class Hypercolumn(nn.Module):
    """Stage maps C{l+1} for l in ``layers`` (1..4), each resized to the size of the last one
    (``resize``: bilinear, align_corners False, as the authors' code; or adaptive average
    pooling), concatenated, then 1x1 conv + BN + ReLU + global average pooling."""

    def __init__(self, backbone: ResNetBackbone, layers: tuple[int, ...], dim: int, resize: str = "bilinear"):
        super().__init__()
        if not layers or any(l not in (1, 2, 3, 4) for l in layers):
            raise ValueError(f"hypercolumn layers must be a non-empty subset of 1..4, got {layers}")
        if resize not in HYPER_RESIZE:
            raise ValueError(f"hyper_resize must be one of {HYPER_RESIZE}, got {resize!r}")
        self.layers, self.resize = tuple(sorted(layers)), resize
        self.stages = [f"C{l + 1}" for l in self.layers]
        channels = sum(backbone.stage_channels[s] for s in self.stages)
        self.reduce = nn.Sequential(nn.Conv2d(channels, dim, kernel_size=1, bias=False),
                                    nn.BatchNorm2d(dim), nn.ReLU(inplace=True))

    def _resized(self, x: torch.Tensor, size) -> torch.Tensor:
        if x.shape[-2:] == size:
            return x
        if self.resize == "bilinear":
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return F.adaptive_avg_pool2d(x, size)

    def forward(self, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        size = maps[self.stages[-1]].shape[-2:]
        x = torch.cat([self._resized(maps[s], size) for s in self.stages], dim=1)
        return self.reduce(x).mean(dim=(2, 3))


class _Contexts(nn.Module):
    """Encoder + both context heads: x -> (z_g, z_h), unnormalised."""

    def __init__(self, encoder: ResNetBackbone, layers, hyper_dim: int, hidden_dim: int, dim: int,
                 head_bn: bool, hyper_resize: str = "bilinear"):
        super().__init__()
        self.encoder = encoder                                                        # E
        self.projector = mlp(encoder.num_features, hidden_dim, dim, batch_norm=head_bn)  # H
        self.hypercolumn = Hypercolumn(encoder, layers, hyper_dim, hyper_resize)
        self.hyper_projector = mlp(hyper_dim, hidden_dim, dim, batch_norm=head_bn)    # H^h

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.encoder.forward_stages(x)
        h_g = maps["C5"].mean(dim=(2, 3))
        return self.projector(h_g), self.hyper_projector(self.hypercolumn(maps))

    def global_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """z_g alone (a local crop needs no hypercolumn)."""
        return self.projector(self.encoder(x))


class CGH(InfoNCEWarmup, nn.Module):
    def __init__(self, arch: str = "resnet50", stem: str = "imagenet", layers: tuple[int, ...] = (3, 4),
                 hyper_dim: int | None = None, dim: int = 512, hidden_dim: int = 4096,
                 head_bn: bool = False, predictor: bool = False, memory: int = 65536,
                 tau_s: float = 0.1, tau_t: float = 0.04, tau_h: float = 0.08, reduction: str = "sum",
                 context: str = "cross", hyper_resize: str = "bilinear", bn: str = "global", bn_splits: int = 8,
                 tau_infonce: float = 0.2, infonce_warmup_epochs: float = 0,
                 teacher_view: dict | None = None, student_views: list[dict] | None = None):
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' (paper, Eq. 6) or 'mean', got {reduction!r}")
        if context not in ("cross", "same"):
            raise ValueError(f"context must be 'cross' (CGH) or 'same' (Table 5 ablation), got {context!r}")
        self.context = context
        encoder = build_backbone(arch, stem=stem)
        self.shuffle_bn = use_shuffle_bn(bn, encoder, bn_splits)
        self.student = _Contexts(encoder, layers, hyper_dim or encoder.num_features, hidden_dim, dim, head_bn,
                                 hyper_resize)
        self.predictor = mlp(dim, hidden_dim, dim, batch_norm=head_bn) if predictor else nn.Identity()
        self.teacher = momentum_copy(self.student)
        self.memory = MemoryQueue(memory, dim)            # Q, of z_g2
        self.hyper_memory = MemoryQueue(memory, dim)      # Q_h, of z_h2
        self.tau_s, self.tau_t, self.tau_h, self.tau_infonce = tau_s, tau_t, tau_h, tau_infonce
        self.weight = 1.0 if reduction == "sum" else 0.5
        self.infonce_warmup_epochs = infonce_warmup_epochs
        self.views = [ViewSpec.from_dict(teacher_view or WEAK_VIEW)] + [
            ViewSpec.from_dict(v) for v in (student_views or [STRONG_VIEW])]

    @property
    def backbone(self) -> nn.Module:
        return self.student.encoder

    @torch.no_grad()
    def update_momentum(self, m: float) -> None:
        momentum_update(self.student, self.teacher, m)

    def export_extra(self) -> dict:
        """Written into the exported backbone file next to the encoder: the student's hypercolumn
        head (stage maps -> 1x1 conv + BN + ReLU -> GAP = the hypercolumn context h_h), which
        ``pretrain.features.representation(..., "hypercolumn")`` rebuilds for CGH's Table 8
        "CGH (hyper)" row (the hypercolumn as the linear classifier's input)."""
        head = self.student.hypercolumn
        return {"hypercolumn": {"layers": list(head.layers), "dim": head.reduce[0].out_channels,
                                "resize": head.resize,
                                "state_dict": {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}}}

    @torch.no_grad()
    def teacher_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_g2, z_h2), L2-normalised in fp32; with shuffle-BN the teacher sees the batch shuffled."""
        both = lambda v: torch.cat(self.teacher(v), dim=1)  # noqa: E731
        z = batch_shuffled(both, x, self._generator) if self.shuffle_bn else both(x)
        z_g, z_h = z.float().chunk(2, dim=1)
        return F.normalize(z_g, dim=1), F.normalize(z_h, dim=1)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        weak, first, *local = views
        z_g2, z_h2 = self.teacher_embeddings(weak)
        q, q_h = self.memory(), self.hyper_memory()
        alpha = self.alpha()
        z_g1, z_h1 = self.student(first)
        z_g1 = F.normalize(self.predictor(z_g1).float(), dim=1)
        z_h1 = F.normalize(z_h1.float(), dim=1)
        # the global-student term takes every student crop; the hypercolumn-student term the first
        z_g_all = [z_g1] + [F.normalize(self.predictor(self.student.global_embedding(x)).float(), dim=1)
                            for x in local]
        if self.context == "cross":  # CE(y_g1, y_h2) and CE(y_h1, y_g2)
            l_gh = sum(relation_loss(z, z_h2, q, self.tau_s, self.tau_h, teacher_queue=q_h) for z in z_g_all)
            l_hg = relation_loss(z_h1, z_g2, q_h, self.tau_h, self.tau_t, teacher_queue=q)
        else:  # same-context: y_g1 <- y_g2 and y_h1 <- y_h2 (logged under the same two names)
            l_gh = sum(relation_loss(z, z_g2, q, self.tau_s, self.tau_t) for z in z_g_all)
            l_hg = relation_loss(z_h1, z_h2, q_h, self.tau_h, self.tau_h)
        l_gh = l_gh / len(z_g_all)
        nce = 0.0
        if alpha < 1:  # InfoNCE warm-up on both contexts, each against its own memory
            nce = info_nce(z_g1, z_g2, q, self.tau_infonce) + info_nce(z_h1, z_h2, q_h, self.tau_infonce)
        loss = alpha * self.weight * (l_gh + l_hg) + (1 - alpha) * nce
        self.memory.push(z_g2)
        self.hyper_memory.push(z_h2)
        return loss, {"L_gh": float(l_gh.detach()), "L_hg": float(l_hg.detach()), "alpha": alpha}


def build(config: dict, arch: str, stem: str) -> CGH:
    m, views = config.get("method", {}), config.get("views", {})
    return CGH(arch=arch, stem=stem, layers=tuple(m.get("layers", (3, 4))), hyper_dim=m.get("hyper_dim"),
               dim=m.get("dim", 512), hidden_dim=m.get("hidden_dim", 4096), head_bn=m.get("head_bn", False),
               predictor=m.get("predictor", False), memory=m.get("memory", 65536),
               tau_s=m.get("tau_s", 0.1), tau_t=m.get("tau_t", 0.04), tau_h=m.get("tau_h", 0.08),
               reduction=m.get("reduction", "sum"), context=m.get("context", "cross"),
               hyper_resize=m.get("hyper_resize", "bilinear"), bn=m.get("bn", "global"),
               bn_splits=m.get("bn_splits", 8), tau_infonce=m.get("tau_infonce", 0.2),
               infonce_warmup_epochs=m.get("infonce_warmup_epochs", 0),
               teacher_view={**WEAK_VIEW, **views.get("teacher", {})},
               student_views=student_view_specs(views))
