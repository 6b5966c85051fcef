"""Frozen features of a backbone over a dataset, the kNN monitor built on them, and the
representations a harness can evaluate (``representation``)."""
from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from evaluation.knn import top1, weighted_knn_predict
from pretrain.checkpoint import CheckpointError, load_state_strict, read_backbone
from pretrain.data.augment import normalize
from pretrain.data.loading import eval_loader
from pretrain.methods.cgh import Hypercolumn

REPRESENTATIONS = ("global", "hypercolumn")


class HypercolumnFeatures(nn.Module):
    """CGH's hypercolumn context h_h (seed 000 Sec. 3.2): the backbone's stage maps of the head's
    layers, resized to the last one, concatenated, 1x1 conv + BN + ReLU, global average pooling,
    with the student's head as trained. Table 8 "CGH (hyper)" feeds "the hypercolumn" to the linear
    classifier; the seed does not say which tensor and the authors' code has no such evaluation:
    h_h (the head's output before its projector, ``num_features`` wide) is ASSUMED."""

    def __init__(self, backbone: nn.Module, head: Hypercolumn):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.arch, self.stem = backbone.arch, backbone.stem
        self.num_features = head.reduce[0].out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.forward_stages(x))


def representation(backbone: nn.Module, name: str, ckpt: str | None) -> nn.Module:
    """The network whose output a harness evaluates: ``global`` = the backbone (global-average-
    pooled last stage); ``hypercolumn`` = ``HypercolumnFeatures`` with the hypercolumn head stored
    in the checkpoint ``ckpt`` (a CGH ``backbone.pth`` or training checkpoint of this suite)."""
    if name == "global":
        return backbone
    if name != "hypercolumn":
        raise ValueError(f"unknown representation {name!r}; expected one of {REPRESENTATIONS}")
    if ckpt is None:
        raise CheckpointError("the hypercolumn representation needs a CGH checkpoint (--ckpt), not --random-init")
    payload = read_backbone(ckpt)
    info = payload.get("hypercolumn")
    if info is None:
        raise CheckpointError(f"{ckpt}: no 'hypercolumn' head in this checkpoint (method "
                              f"{payload.get('method')!r}); only CGH runs of this suite export it")
    head = Hypercolumn(backbone, tuple(info["layers"]), int(info["dim"]), info.get("resize", "bilinear"))
    load_state_strict(head, info["state_dict"], f"{ckpt} (hypercolumn head)")
    return HypercolumnFeatures(backbone, head)


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset, device: str, batch_size: int = 256,
                     workers: int = 0, desc: str = "features",
                     progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Global-pooled features of every image of a ``UInt8Images`` dataset (eval mode,
    no augmentation, ImageNet normalisation), and the labels."""
    backbone.eval().to(device)
    features, labels = [], []
    for images, targets in tqdm(eval_loader(dataset, batch_size, workers), desc=desc, unit="batch",
                                disable=not progress):
        features.append(backbone(normalize(images.to(device))).float())
        labels.append(targets.to(device))
    return torch.cat(features), torch.cat(labels)


def knn_accuracy(backbone: nn.Module, bank, queries, device: str, k: int = 200, temperature: float = 0.1,
                 batch_size: int = 256, workers: int = 0, progress: bool = True) -> float:
    """Weighted-kNN top-1 (%) of ``queries`` against the ``bank`` features (both
    ``UInt8Images`` datasets). The backbone's train/eval mode is restored afterwards."""
    was_training = backbone.training
    bank_x, bank_y = extract_features(backbone, bank, device, batch_size, workers, "bank features", progress)
    query_x, query_y = extract_features(backbone, queries, device, batch_size, workers, "query features", progress)
    backbone.train(was_training)
    num_classes = int(max(bank_y.max(), query_y.max())) + 1
    return top1(weighted_knn_predict(bank_x, bank_y, query_x, num_classes, k, temperature), query_y)
