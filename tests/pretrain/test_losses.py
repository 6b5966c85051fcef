import numpy as np
import torch
import torch.nn.functional as F

from pretrain.losses import info_nce


def reference_info_nce(q, k, queue, tau):
    """Plain numpy, one sample at a time: -log softmax of the positive logit."""
    q, k, queue = (np.asarray(t, dtype=np.float64) for t in (q, k, queue))
    losses = []
    for i in range(q.shape[0]):
        logits = np.concatenate([[q[i] @ k[i]], queue @ q[i]]) / tau
        logits -= logits.max()
        losses.append(-(logits[0] - np.log(np.exp(logits).sum())))
    return float(np.mean(losses))


def test_info_nce_matches_reference():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    k = F.normalize(torch.randn(8, 16, generator=g), dim=1)
    queue = F.normalize(torch.randn(32, 16, generator=g), dim=1)
    for tau in (0.07, 0.2, 1.0):
        assert abs(info_nce(q, k, queue, tau).item() - reference_info_nce(q, k, queue, tau)) < 1e-5


def test_info_nce_is_low_when_positive_dominates():
    q = F.normalize(torch.eye(4, 8), dim=1)
    queue = -q.repeat(4, 1)  # negatives at similarity -1 or 0, the positive at 1
    assert info_nce(q, q, queue, 0.02).item() < 1e-6
    assert info_nce(q, -q, queue, 0.02).item() > 10
