"""BYOL (Grill et al. 2020, "Bootstrap Your Own Latent").

    z_θ = g_θ(f_θ(v)),  p_θ = q_θ(z_θ)        online: encoder, projector, predictor
    z'_ξ = g_ξ(f_ξ(v'))                       target: EMA of the online encoder/projector
    L = ||p̄_θ(v) - z̄'_ξ(v')||² + ||p̄_θ(v') - z̄'_ξ(v)||²   (symmetrised: the two terms are SUMMED)
    ξ <- τ ξ + (1 - τ) θ,  τ from 0.996 to 1 with a cosine schedule

Views: BYOL's asymmetric pipeline (blur 1.0 / 0.1, solarize 0 / 0.2).
"""
from __future__ import annotations

import torch
from torch import nn

from pretrain.data.augment import ViewSpec
from pretrain.losses import byol_loss
from pretrain.methods.common import mlp, momentum_copy, momentum_update
from pretrain.models.resnet import build_backbone

BYOL_VIEWS = (  # BYOL Table 6: view 1 / view 2
    dict(scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.2, 0.1), jitter_p=0.8, gray_p=0.2, blur_p=1.0, solarize_p=0.0),
    dict(scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.2, 0.1), jitter_p=0.8, gray_p=0.2, blur_p=0.1, solarize_p=0.2),
)


class BYOL(nn.Module):
    def __init__(self, arch: str = "resnet50", stem: str = "imagenet", dim: int = 256,
                 hidden_dim: int = 4096, views: list[dict] | None = None):
        super().__init__()
        self.encoder = build_backbone(arch, stem=stem)                                    # f_θ
        self.projector = mlp(self.encoder.num_features, hidden_dim, dim, batch_norm=True)  # g_θ
        self.predictor = mlp(dim, hidden_dim, dim, batch_norm=True)                       # q_θ
        self.target_encoder = momentum_copy(self.encoder)                                 # f_ξ
        self.target_projector = momentum_copy(self.projector)                             # g_ξ
        self.views = [ViewSpec.from_dict(v) for v in (views or BYOL_VIEWS)]

    @property
    def backbone(self) -> nn.Module:
        return self.encoder

    @torch.no_grad()
    def update_momentum(self, m: float) -> None:
        momentum_update(self.encoder, self.target_encoder, m)
        momentum_update(self.projector, self.target_projector, m)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        # each view is its own batch, so batch-norm statistics are per view as in BYOL
        # targets first, before the online graphs hold their activations (lower peak memory)
        with torch.no_grad():
            z1, z2 = (self.target_projector(self.target_encoder(v)).float() for v in views)
        p1, p2 = (self.predictor(self.projector(self.encoder(v))).float() for v in views)
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        return loss, {}


def view_specs(views: dict) -> list[dict]:
    """BYOL's two views from a config ``views`` block: ``default`` overrides both, ``view1`` /
    ``view2`` one each."""
    return [{**base, **views.get("default", {}), **views.get(f"view{i + 1}", {})}
            for i, base in enumerate(BYOL_VIEWS)]


def build(config: dict, arch: str, stem: str) -> BYOL:
    m = config.get("method", {})
    return BYOL(arch=arch, stem=stem, dim=m.get("dim", 256), hidden_dim=m.get("hidden_dim", 4096),
                views=view_specs(config.get("views", {})))
