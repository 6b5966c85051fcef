"""MoCo v2 (Chen et al. 2020, "Improved Baselines with Momentum Contrastive Learning").

    q = g_q(f_q(x_q)) / ||.||             query: online encoder f_q + MLP head g_q
    k = g_k(f_k(x_k)) / ||.||             key: momentum encoder, no gradient
    L = InfoNCE(q, k, queue, tau)         negatives: FIFO queue of past keys
    theta_k <- m theta_k + (1 - m) theta_q

Both views use the MoCo v2 augmentation. Batch norm (``method.bn``): ``shuffle`` (default,
as MoCo's official code) = MoCo's shuffle-BN: the key encoder
sees the global batch in a random order, so a query and its key are normalised with
different samples (the official code's way to stop the intra-batch statistics leak; on one
process the batch is split into ``bn_splits`` BN groups, as MoCo's single-GPU CIFAR demo does;
under DDP each process is one group and the shuffle crosses processes); ``global`` = per
process, or SyncBN with ``train.sync_bn``.
Under DDP the keys of all processes are enqueued, in rank order.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.data.augment import ViewSpec
from pretrain.losses import info_nce
from pretrain.methods.common import (MemoryQueue, StepContext, batch_shuffled, mlp, momentum_copy,
                                     momentum_update, use_shuffle_bn)
from pretrain.models.resnet import build_backbone


class MoCoV2(StepContext, nn.Module):
    def __init__(self, arch: str = "resnet50", stem: str = "imagenet", dim: int = 128,
                 hidden_dim: int = 2048, queue_size: int = 65536, tau: float = 0.2,
                 view: dict | None = None, bn: str = "shuffle", bn_splits: int = 8):
        super().__init__()
        self.tau = tau                                      # τ, InfoNCE temperature
        self.encoder_q = build_backbone(arch, stem=stem)    # f_q
        self.shuffle_bn = use_shuffle_bn(bn, self.encoder_q, bn_splits)
        self.head_q = mlp(self.encoder_q.num_features, hidden_dim, dim)  # g_q
        self.encoder_k = momentum_copy(self.encoder_q)      # f_k
        self.head_k = momentum_copy(self.head_q)            # g_k
        self.queue = MemoryQueue(queue_size, dim)           # negatives
        self.views = [ViewSpec.from_dict(view or {})] * 2

    @property
    def backbone(self) -> nn.Module:
        """The network that is exported and evaluated (the online/query encoder)."""
        return self.encoder_q

    @torch.no_grad()
    def update_momentum(self, m: float) -> None:
        momentum_update(self.encoder_q, self.encoder_k, m)
        momentum_update(self.head_q, self.head_k, m)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x_q, x_k = views
        # keys first: the no-grad pass then runs before the query's graph holds its activations
        # (the lower peak memory measured 17% faster per step on CPU; the result is the same)
        with torch.no_grad():
            key = lambda x: self.head_k(self.encoder_k(x))  # noqa: E731
            k = batch_shuffled(key, x_k, self._generator) if self.shuffle_bn else key(x_k)
            k = F.normalize(k.float(), dim=1)  # normalised in fp32, as the loss runs (autocast off)
        q = F.normalize(self.head_q(self.encoder_q(x_q)).float(), dim=1)
        loss = info_nce(q, k, self.queue(), self.tau)
        self.queue.push(k)
        return loss, {}


def build(config: dict, arch: str, stem: str) -> MoCoV2:
    m = config.get("method", {})
    return MoCoV2(arch=arch, stem=stem, dim=m.get("dim", 128), hidden_dim=m.get("hidden_dim", 2048),
                  queue_size=m.get("queue_size", 65536), tau=m.get("tau", 0.2),
                  view=config.get("views", {}).get("default"), bn=m.get("bn", "shuffle"),
                  bn_splits=m.get("bn_splits", 8))
