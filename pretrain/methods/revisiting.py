"""MoCo v2 with the additions of "Revisiting Contrastive Methods for Unsupervised Learning of
Visual Representations" (Van Gansbeke et al., NeurIPS'21): multi-crop, constrained multi-crop,
stronger augmentation of the positives (A+) and the kNN-MoCo auxiliary loss (its Alg. 2).

    x, x⁺, x⁺_1..N                 anchor (key) crop, positive crop, N small positive crops
    k = h'(g'(x)) / ||.||          anchor: momentum encoder, no gradient
    q_j = h(g(x⁺_j)) / ||.||       the N + 1 positives: online encoder, one pass per resolution
    L_inst = InfoNCE(q_j, k, Q_h, τ)               averaged (Alg. 2) or summed (Eq. 1) over j
    N_j = top-k of cos(g(x⁺_j), Q_g)               neighbours mined in the backbone queue
    L_nn = mean_j mean_{i∈N_j} -log softmax(q_j·Q_h / τ)_i                       (Eq. 2, Alg. 2)
    L = L_inst + λ L_nn            (L_nn from epoch ``knn.start_epochs`` on)
    Q_h <- FIFO of k,  Q_g <- FIFO of g'(x)/||.|| (aligned with Q_h)

The MoCo v2 part (encoders, MLP head without BN, queue, τ, momentum update, ``method.bn``
shuffle-BN) is ``pretrain.methods.mocov2`` built from the same config; this module adds the
views, the second queue and the losses. The small crops are positives only: never seen by
the momentum encoder, never enqueued. Views, in engine order: [positive, anchor, small × N];
a constrained small crop is redrawn while less than ``views.small.min_overlap`` of its area
lies inside the anchor crop (``pretrain.data.augment.constrained_boxes``).

Sources of the values (seed 004 = the paper; code = wvangansbeke/Revisiting-Contrastive-SSL):
- N small crops: 4 (code ``--num_crops 2 4``; the paper says "N").
- constraint: ≥ 20% of the small crop's area inside the anchor crop, redrawn until it is (seed
  App. A.1; after ``overlap_tries`` candidates the crop is centred on the anchor); the code's
  rule (≥ 10% of the target area, 10 tries, then an unconstrained crop) is
  ``min_overlap: 0.1, overlap_tries: 10, overlap_fallback: unconstrained``.
- positives reduction: ``mean`` (Alg. 2's ``CE(logits/t, zeros((B,N+1)))``, the code's
  CrossEntropyLoss over B·(N+1) rows); ``sum`` = Eq. 1's sum over positives (× (N+1)).
- kNN: k 20, λ 0.4 (seed A.1 / Table 8), mined before the head (Sec. 4.3, 84.2 vs 82.8 after),
  start after 5 epochs (seed App. B; the code's 800-epoch script: 20).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.data.augment import ViewSpec
from pretrain.losses import info_nce, knn_nce, nearest_neighbours
from pretrain.methods import mocov2
from pretrain.methods.common import MemoryQueue, StepContext, batch_shuffled

# seed 004 App. A.1: the two large crops 160 px at scale (0.2, 1); the N small crops 96 px at (0.05, 0.14)
LARGE_VIEW = dict(size=160, scale=(0.2, 1.0))
SMALL_VIEW = dict(size=96, scale=(0.05, 0.14))


class RevisitingMoCo(StepContext, nn.Module):
    def __init__(self, moco: mocov2.MoCoV2, anchor_view: dict, positive_view: dict, small_view: dict,
                 small_crops: int = 4, constrained: bool = False, positives: str = "mean",
                 knn_k: int = 20, knn_weight: float = 0.0, knn_start_epochs: float = 5.0,
                 knn_mine: str = "backbone"):
        super().__init__()
        if positives not in ("mean", "sum"):
            raise ValueError(f"method.positives must be 'mean' (Alg. 2) or 'sum' (Eq. 1), got {positives!r}")
        if knn_mine not in ("backbone", "head"):
            raise ValueError(f"method.knn.mine must be 'backbone' or 'head', got {knn_mine!r}")
        self.moco = moco                                   # g, h, g', h', Q_h, τ, shuffle-BN
        self.positives, self.knn_k, self.knn_weight = positives, knn_k, knn_weight
        self.knn_start_epochs, self.knn_mine = knn_start_epochs, knn_mine
        if knn_weight > 0:                                 # Q_g, aligned with Q_h
            self.queue_g = MemoryQueue(moco.queue.embeddings.shape[0], moco.encoder_q.num_features)
        small = ViewSpec.from_dict({**small_view, **({"overlap_with": 1} if constrained else {})})
        self.views = [ViewSpec.from_dict(positive_view), ViewSpec.from_dict(anchor_view)] + [small] * small_crops

    @property
    def backbone(self) -> nn.Module:
        return self.moco.encoder_q

    @torch.no_grad()
    def update_momentum(self, m: float) -> None:
        self.moco.update_momentum(m)

    def begin_step(self, epoch: float, generator: torch.Generator | None) -> None:
        super().begin_step(epoch, generator)
        self.moco.begin_step(epoch, generator)

    @torch.no_grad()
    def anchor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(k, g'(x)), both L2-normalised: the key and its pooled backbone feature."""
        m = self.moco

        def net(v):
            g = m.encoder_k(v)
            return torch.cat([g, m.head_k(g)], dim=1)
        out = batch_shuffled(net, x, m._generator) if m.shuffle_bn else net(x)
        g, k = out.float().split([m.encoder_k.num_features, out.shape[1] - m.encoder_k.num_features], dim=1)
        return F.normalize(k, dim=1), F.normalize(g, dim=1)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        m = self.moco
        x_pos, x_anchor, *x_small = views
        k, k_g = self.anchor(x_anchor)                     # keys first (lower peak memory, as MoCo v2)
        # one pass per resolution (the N small crops together, as the official code), view-major
        passes = [x_pos] + ([torch.cat(x_small)] if x_small else [])
        g_pos = torch.cat([m.encoder_q(x) for x in passes])                # B·(N+1) x C_g
        q = F.normalize(m.head_q(g_pos).float(), dim=1)                  # B·(N+1) x C
        scale = 1 + len(x_small) if self.positives == "sum" else 1
        queue = m.queue()
        inst = info_nce(q, k.repeat(1 + len(x_small), 1), queue, m.tau) * scale
        nn_loss = torch.zeros((), device=q.device)
        if self.knn_weight > 0 and self._epoch >= self.knn_start_epochs:
            mine, bank = (g_pos.detach(), self.queue_g()) if self.knn_mine == "backbone" else (q.detach(), queue)
            nn_loss = knn_nce(q, queue, nearest_neighbours(mine, bank, self.knn_k), m.tau) * scale
        m.queue.push(k)
        if self.knn_weight > 0:
            self.queue_g.push(k_g)
        return inst + self.knn_weight * nn_loss, {"inst": float(inst.detach()), "knn": float(nn_loss.detach())}


def build(config: dict, arch: str, stem: str) -> RevisitingMoCo:
    m, views = config.get("method", {}), config.get("views", {})
    knn = m.get("knn") or {}
    anchor = {**LARGE_VIEW, **views.get("default", {})}
    moco = mocov2.build({**config, "views": {**views, "default": anchor}}, arch, stem)
    return RevisitingMoCo(moco, anchor_view=anchor, positive_view={**anchor, **views.get("positive", {})},
                          small_view={**anchor, **SMALL_VIEW, **views.get("small", {})},
                          small_crops=m.get("small_crops", 0), constrained=m.get("constrained", False),
                          positives=m.get("positives", "mean"), knn_k=knn.get("k", 20),
                          knn_weight=knn.get("weight", 0.0), knn_start_epochs=knn.get("start_epochs", 5),
                          knn_mine=knn.get("mine", "backbone"))
