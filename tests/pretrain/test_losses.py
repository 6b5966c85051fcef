import numpy as np
import pytest
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


# --------------------------------------------------------------------------- precision
def _precision_cases():
    from pretrain.losses import byol_loss, relation_loss, symmetric_relation_loss

    g = torch.Generator().manual_seed(11)
    unit = lambda *shape: F.normalize(torch.randn(*shape, generator=g), dim=-1)  # noqa: E731
    s, t, s2, t2, q, qh = unit(16, 32), unit(16, 32), unit(16, 32), unit(16, 32), unit(256, 32), unit(256, 32)
    p, z = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    return {
        "info_nce": (info_nce, (s, t, q, 0.04), {}),
        "relation_loss": (relation_loss, (s, t, q, 0.1, 0.01), {}),
        "relation_loss_cross_context": (relation_loss, (s, t, q, 0.08, 0.04), {"teacher_queue": qh}),
        "symmetric_relation_loss": (symmetric_relation_loss, (s, s2, t, t2, q, 0.1, 0.03), {}),
        "byol_loss": (byol_loss, (p, z), {}),
    }


@pytest.mark.parametrize("name", sorted(_precision_cases()))
def test_loss_under_bf16_autocast_equals_fp32(name):
    """Every loss computes its logits, softmax and reduction in float32 with autocast off
    inside: under bf16 autocast the value equals the float32 one to 1e-5, and bf16 inputs
    (embeddings computed under autocast) are promoted rather than run in bf16."""
    loss, args, kwargs = _precision_cases()[name]
    reference = loss(*args, **kwargs).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(*args, **kwargs)
    assert value.dtype == torch.float32
    assert abs(value.item() - reference) < 1e-5
    bf16 = [a.bfloat16() if isinstance(a, torch.Tensor) else a for a in args]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(*bf16, **kwargs).item()
    promoted = [a.float() if isinstance(a, torch.Tensor) else a for a in bf16]
    assert abs(value - loss(*promoted, **kwargs).item()) < 1e-5


def test_similarity_losses_would_differ_in_bf16():
    """The check above can fail: the same losses computed with autocast left on (the bare
    functions) move by more than 1e-5 at these temperatures."""
    for name in ("info_nce", "relation_loss", "relation_loss_cross_context"):
        loss, args, kwargs = _precision_cases()[name]
        reference = loss(*args, **kwargs).item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bare = loss.__wrapped__(*args, **kwargs).item()
        assert abs(bare - reference) > 1e-4, name
