"""Frozen features of a backbone over a dataset, and the kNN monitor built on them."""
from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from evaluation.knn import top1, weighted_knn_predict
from pretrain.data.augment import normalize
from pretrain.data.loading import eval_loader


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
