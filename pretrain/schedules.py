"""Per-step schedules as plain arrays (index = global step), precomputed once."""
from __future__ import annotations

import numpy as np


def cosine_with_warmup(base: float, total_steps: int, warmup_steps: int = 0, final: float = 0.0,
                       start_warmup: float = 0.0) -> np.ndarray:
    """Linear warm-up from ``start_warmup`` to ``base`` over ``warmup_steps``, then a
    half-cosine from ``base`` to ``final`` over the remaining steps."""
    warmup_steps = min(warmup_steps, total_steps)
    warm = np.linspace(start_warmup, base, warmup_steps, endpoint=False)
    t = np.arange(total_steps - warmup_steps) / max(1, total_steps - warmup_steps)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * t))
    return np.concatenate([warm, cosine])


def momentum_schedule(kind: str, base: float, total_steps: int) -> np.ndarray:
    """EMA momentum per step: ``constant`` m, or ``cosine`` from m to 1 (BYOL:
    1 - (1 - m)(cos(pi k / K) + 1) / 2)."""
    if kind == "constant":
        return np.full(total_steps, base)
    if kind == "cosine":
        k = np.arange(total_steps)
        return 1 - (1 - base) * (np.cos(np.pi * k / max(1, total_steps)) + 1) / 2
    raise ValueError(f"unknown momentum schedule {kind!r}; expected 'constant' or 'cosine'")
