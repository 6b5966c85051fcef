"""Weighted k-nearest-neighbour classification on frozen features (Wu et al. 2018).

Each of the k nearest training features (cosine similarity s) votes for its class with
weight exp(s / T); the class with the largest summed weight wins. Similarities are
computed in batches on the features' device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def weighted_knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor,
                         test_features: torch.Tensor, num_classes: int, k: int = 200,
                         temperature: float = 0.1, batch_size: int = 1024) -> torch.Tensor:
    """Predicted class per test row. Features are L2-normalised here."""
    return weighted_knn_predict_many(train_features, train_labels, test_features, num_classes, (k,),
                                     temperature, batch_size)[k]


@torch.no_grad()
def weighted_knn_predict_many(train_features: torch.Tensor, train_labels: torch.Tensor,
                              test_features: torch.Tensor, num_classes: int, ks=(10, 20, 100, 200),
                              temperature: float = 0.1, batch_size: int = 1024) -> dict[int, torch.Tensor]:
    """{k: predicted class per test row} for several k at once (DINO's eval_knn, which CGH
    runs, evaluates k = 10, 20, 100, 200): the neighbours are found once for the largest k,
    each k votes with its k nearest."""
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    ks = tuple(dict.fromkeys(int(k) for k in ks))
    if not ks or min(ks) < 1:
        raise ValueError(f"k must be >= 1, got {ks}")
    largest = min(max(ks), train.shape[0])
    predictions: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    for chunk in test.split(batch_size):
        sims, idx = (chunk @ train.t()).topk(largest, dim=1)
        weights, labels = (sims / temperature).exp(), train_labels[idx]
        for k in ks:
            votes = torch.zeros(chunk.shape[0], num_classes, device=chunk.device)
            votes.scatter_add_(1, labels[:, :k], weights[:, :k])
            predictions[k].append(votes.argmax(1))
    return {k: torch.cat(p) for k, p in predictions.items()}


def top1(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions == labels).float().mean()) * 100.0
