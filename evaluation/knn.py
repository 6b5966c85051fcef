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
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    k = min(k, train.shape[0])
    predictions = []
    for chunk in test.split(batch_size):
        sims, idx = (chunk @ train.t()).topk(k, dim=1)
        weights = (sims / temperature).exp()
        votes = torch.zeros(chunk.shape[0], num_classes, device=chunk.device)
        votes.scatter_add_(1, train_labels[idx], weights)
        predictions.append(votes.argmax(1))
    return torch.cat(predictions)


def top1(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions == labels).float().mean()) * 100.0
