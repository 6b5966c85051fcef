"""LEWEL (Huang et al., CVPR'22, "Learning Where to Learn in Cross-View Self-Supervised Learning"):
LEWEL_M on MoCo v2 (``base: moco``) and LEWEL_B on BYOL (``base: byol``).

    F' = f_θ(x') ∈ R^{D×H×W}                      backbone feature map, before GAP
    z' = g_θ(GAP(F')) ∈ R^d                        global embedding (g: Linear-BN-ReLU-Linear)
    W̃' = g_θ(F')  (g per pixel, the same weights)  heat-maps, d × H × W        (Sec. 3.2)
    W̄'_{*,i,j} = W̃'_{*,i,j} / ||W̃'_{*,i,j}||₂     L2 over channels, per position
    W'_k = softmax_{H×W}(W̄'_k)                     alignment maps, no temperature
    y'_k = [W'_{(k-1)h+1} ⊗ F'^(1), ..., W'_{kh} ⊗ F'^(h)]   channel groups (Eq. 2), k = 1..d/h
    z'_k = p_θ(y'_k) ∈ R^c                         aligned embeddings (p: like g, c = d)
    L = (1 - β) L_g + β L_a,  L_g = ℓ(z', z''),  L_a = (h/d) Σ_k ℓ(z'_k, z''_k)   (Eq. 3)

The second view goes through the momentum networks f_ξ, g_ξ, p_ξ (its own maps). ℓ is
  - LEWEL_M: InfoNCE, τ 0.2; the global loss's negatives are MoCo's queue, the aligned loss's
    the keys of the other images of the batch (gathered over processes), same k only;
  - LEWEL_B: BYOL's 2 - 2 cos(q(z'), sg(z'')) with predictor q for the global and s for the
    aligned embeddings, symmetrised (both directions summed, as BYOL).

Decisions where the seed (001) is silent or garbled, each a config value:
  - ``beta`` weights the ALIGNED loss: Eq. 3 is garbled ("(1-β)L_a + βL_a"); Fig. 3a's text
    (small β ≤ 0.3 is worse, "except β = 1") reads as β on L_a; the official code's
    ``loss_weight`` w weights the global loss (w·L_g + (1-w)·L_a, w = 0.5), so w = 1 - β.
    At the default 0.5 both readings agree.
  - ``groups`` (h): LEWEL_B 4 (seed Sec. 4.4; official scripts); LEWEL_M: not stated; 4, the
    value of every official script and of LEWEL_B (the official argparse default is 8).
  - ``aligned_negatives: same_k``: the seed's negatives for L_a are "embeddings of different
    images in the current mini-batch"; z'_k is contrasted with z''_k of the other images (the
    same semantic k), not with other k (no official LEWEL_M code exists).
  - ``projector_bn: joint``: g's BN sees the pooled vector and every pixel together (the
    official code runs g once over [GAP(F), F] as 1+HW positions); ``separate`` runs g on the
    pooled vector and on the pixels as two batches (two sets of BN statistics).
  - ``bn``: LEWEL_M ``shuffle`` (seed: ShuffleBN in f_ξ, as MoCo); LEWEL_B ``eman`` (seed:
    "EMA BN statistics in the momentum encoder", Cai et al. 2021: the target runs in eval
    mode and its BN statistics are the EMA of the online ones; official ``LEWELB_EMAN``) or
    ``global`` (+ ``train.sync_bn`` for the 400-epoch SyncBN run). With ``shuffle`` on one
    process only the encoder's BN is split into groups (``bn_splits``); the heads' BN sees
    the whole key batch (under DDP the key heads run on each process's shuffled slice).
  - Ablations (Tables 5-6; the seed names them, does not define them): ``coupled: false``
    predicts the maps with a separate per-pixel head of g's architecture instead of g itself
    ("weight-sharing scheme of the projector g"); ``extra_p: false`` projects the aligned
    representations with g instead of a separate p ("extra p_θ" column; ASSUMED); ``maps:
    random`` replaces the heat-maps by N(0, 1) noise drawn per view and step, then the same
    L2 + softmax (ASSUMED: the seed says only "a random alignment map W"); ``maps: uniform``
    is W = 1/HW, i.e. GAP (Eq. 1's special case): every y_k is GAP(F), so L_a is an extra
    head p on the pooled feature with its own loss (ASSUMED reading of MoCo v2 "extra p_θ").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.data.augment import ViewSpec
from pretrain.distributed import gather, rank
from pretrain.losses import lewel_byol_loss, lewel_info_nce
from pretrain.methods.byol import view_specs as byol_view_specs
from pretrain.methods.common import (MemoryQueue, StepContext, batch_shuffled, mlp, momentum_copy,
                                     momentum_update, use_shuffle_bn)
from pretrain.models.resnet import build_backbone

BASES = ("moco", "byol")
MAPS = ("learned", "random", "uniform")


def alignment_maps(heat: torch.Tensor) -> torch.Tensor:
    """Heat-maps (N, HW, d) -> alignment maps (N, HW, d): L2-normalised over the d channels at
    each position, then a softmax over the HW positions of each map (no temperature); fp32."""
    heat = F.normalize(heat.float(), dim=2)
    return torch.softmax(heat, dim=1)


def aggregate(features: torch.Tensor, maps: torch.Tensor, groups: int) -> torch.Tensor:
    """Eq. 2. features: (N, D, HW); maps: (N, HW, d) -> y: (N, d/h, D) with
    y_k = [W_{(k-1)h+j} ⊗ F^(j)]_{j=1..h}: channel group j of F (D/h channels) pooled with
    map (k-1)h + j (1-based), the h groups concatenated."""
    n, channels, hw = features.shape
    d = maps.shape[2]
    if channels % groups or d % groups:
        raise ValueError(f"groups (h) = {groups} must divide the feature channels D = {channels} "
                         f"and the projector output d = {d}")
    f = features.reshape(n, groups, channels // groups, hw)             # F^(j): (N, h, D/h, HW)
    w = maps.to(features.dtype).reshape(n, hw, d // groups, groups)    # W_{(k-1)h+j}: (N, HW, d/h, h)
    return torch.einsum("njcs,nskj->nkjc", f, w).reshape(n, d // groups, channels)


class LEWEL(StepContext, nn.Module):
    def __init__(self, arch: str = "resnet50", stem: str = "imagenet", base: str = "moco", dim: int = 128,
                 hidden_dim: int = 2048, aligned_dim: int | None = None, groups: int = 4, beta: float = 0.5,
                 tau: float = 0.2, queue_size: int = 65536, aligned_negatives: str = "same_k",
                 bn: str = "shuffle", bn_splits: int = 8, projector_bn: str = "joint", coupled: bool = True,
                 extra_p: bool = True, maps: str = "learned", views: list[dict] | None = None):
        super().__init__()
        if base not in BASES:
            raise ValueError(f"method.base must be one of {BASES}, got {base!r}")
        if maps not in MAPS:
            raise ValueError(f"method.maps must be one of {MAPS}, got {maps!r}")
        if projector_bn not in ("joint", "separate"):
            raise ValueError(f"method.projector_bn must be 'joint' or 'separate', got {projector_bn!r}")
        if aligned_negatives != "same_k":
            raise ValueError(f"method.aligned_negatives: only 'same_k' is implemented, got {aligned_negatives!r}")
        aligned_dim = aligned_dim or dim                                                  # c (= d by default)
        if not extra_p and aligned_dim != dim:
            raise ValueError("extra_p: false projects the aligned representations with g, so aligned_dim must be dim")
        self.base, self.beta, self.tau, self.groups, self.maps = base, beta, tau, groups, maps
        self.joint_bn = projector_bn == "joint"
        self.eman = bn == "eman"
        self.encoder = build_backbone(arch, stem=stem)                                    # f_θ
        self.shuffle_bn = use_shuffle_bn("global" if self.eman else bn, self.encoder, bn_splits)
        width = self.encoder.num_features                                                 # D
        self.projector = mlp(width, hidden_dim, dim, batch_norm=True)                     # g_θ
        # maps from g itself (coupled) or, ablation, from a separate head of the same shape
        self.map_head = None if coupled else mlp(width, hidden_dim, dim, batch_norm=True)
        self.aligned_projector = mlp(width, hidden_dim, aligned_dim, batch_norm=True) if extra_p else None  # p_θ
        online = ["encoder", "projector", "map_head", "aligned_projector"]
        self._pairs = [(name, f"target_{name}") for name in online if getattr(self, name) is not None]
        for name, target in self._pairs:                                                  # f_ξ, g_ξ, p_ξ
            setattr(self, target, momentum_copy(getattr(self, name)))
        if base == "moco":
            self.queue = MemoryQueue(queue_size, dim)
            self.views = [ViewSpec.from_dict(views[0] if views else {})] * 2
        else:
            self.predictor = mlp(dim, hidden_dim, dim, batch_norm=True)                   # q_θ
            self.aligned_predictor = mlp(aligned_dim, hidden_dim, aligned_dim, batch_norm=True)  # s_θ
            self.views = [ViewSpec.from_dict(v) for v in (views or byol_view_specs({}))]

    @property
    def backbone(self) -> nn.Module:
        return self.encoder

    def train(self, mode: bool = True) -> "LEWEL":
        super().train(mode)
        if self.eman:  # EMAN: the target networks always use their (EMA) running statistics
            for _, target in self._pairs:
                getattr(self, target).eval()
        return self

    @torch.no_grad()
    def update_momentum(self, m: float) -> None:
        for name, target in self._pairs:
            momentum_update(getattr(self, name), getattr(self, target), m, buffers=self.eman)

    def embed(self, x: torch.Tensor, target: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One view through f, g, the alignment maps and p (online, or the momentum networks
        with ``target``). Returns z (N, d), the aligned z_k (N, d/h, c) and the maps (N, HW, d)."""
        net = (lambda name: getattr(self, f"target_{name}")) if target else (lambda name: getattr(self, name))
        g = net("projector")
        features = net("encoder").forward_stages(x)["C5"].flatten(2)                    # F: (N, D, HW)
        n, width, hw = features.shape
        pixels = features.transpose(1, 2)                                                # (N, HW, D)
        pooled = pixels.mean(dim=1, keepdim=True)                                        # GAP(F): (N, 1, D)
        if self.map_head is None and self.joint_bn:  # g once over [GAP(F), F]: one BN over both
            out = g(torch.cat([pooled, pixels], dim=1).reshape(-1, width)).view(n, 1 + hw, -1)
            z, heat = out[:, 0], out[:, 1:]
        else:
            z = g(pooled.reshape(n, width))
            head = g if self.map_head is None else net("map_head")
            heat = head(pixels.reshape(-1, width)).view(n, hw, -1)                      # W̃ = g(F) per pixel
        if self.maps == "random":
            heat = torch.randn(heat.shape, generator=self._generator, device=heat.device)
        maps = (torch.full(heat.shape, 1.0 / hw, device=heat.device) if self.maps == "uniform"
                else alignment_maps(heat))                                               # W
        y = aggregate(features, maps, self.groups)                                       # y_k: (N, d/h, D)
        p = net("aligned_projector") if self.aligned_projector is not None else g
        z_aligned = p(y.reshape(-1, width)).view(n, y.shape[1], -1)                      # z_k = p(y_k)
        return z, z_aligned, maps

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.forward_moco(views) if self.base == "moco" else self.forward_byol(views)

    def forward_moco(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x_q, x_k = views
        with torch.no_grad():  # keys first (lower peak memory, as MoCo v2)
            def key(x):
                z, z_aligned, _ = self.embed(x, target=True)
                return torch.cat([z, z_aligned.flatten(1)], dim=1)
            packed = batch_shuffled(key, x_k, self._generator) if self.shuffle_bn else key(x_k)
            k, k_aligned = packed[:, :self.queue.embeddings.shape[1]], packed[:, self.queue.embeddings.shape[1]:]
        q, q_aligned, _ = self.embed(x_q)
        k_aligned = gather(k_aligned.reshape(q_aligned.shape))   # in-batch negatives of every process
        loss = lewel_info_nce(q, k, self.queue(), q_aligned, k_aligned, self.tau, self.beta,
                              offset=rank() * q.shape[0])
        self.queue.push(F.normalize(k.float(), dim=1))
        return loss, {}

    def forward_byol(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():  # targets first (lower peak memory, as BYOL)
            targets = [self.embed(v, target=True)[:2] for v in views]
        loss = 0.0
        for (z, z_aligned, _), (t, t_aligned) in zip((self.embed(v) for v in views), reversed(targets)):
            p_aligned = self.aligned_predictor(z_aligned.flatten(0, 1)).view(z_aligned.shape[0], z_aligned.shape[1], -1)
            loss = loss + lewel_byol_loss(self.predictor(z), t, p_aligned, t_aligned, self.beta)
        return loss, {}


def build(config: dict, arch: str, stem: str) -> LEWEL:
    m, views = config.get("method", {}), config.get("views", {})
    base = m.get("base", "moco")
    moco = base == "moco"
    return LEWEL(arch=arch, stem=stem, base=base, dim=m.get("dim", 128 if moco else 256),
                 hidden_dim=m.get("hidden_dim", 2048 if moco else 4096), aligned_dim=m.get("aligned_dim"),
                 groups=m.get("groups", 4), beta=m.get("beta", 0.5), tau=m.get("tau", 0.2),
                 queue_size=m.get("queue_size", 65536), aligned_negatives=m.get("aligned_negatives", "same_k"),
                 bn=m.get("bn", "shuffle" if moco else "eman"), bn_splits=m.get("bn_splits", 8),
                 projector_bn=m.get("projector_bn", "joint"), coupled=m.get("coupled", True),
                 extra_p=m.get("extra_p", True), maps=m.get("maps", "learned"),
                 views=[views.get("default", {})] if moco else byol_view_specs(views))
