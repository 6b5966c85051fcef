"""Average precision of a ranking for one class, as the VOC07 classification benchmarks score it.

Two definitions are in use, both "all points" (every distinct score is an operating point,
no 11-point sampling):

- ``interpolation="none"``: AP = sum_n (R_n - R_{n-1}) P_n, the step-wise area under the
  precision/recall curve (= ``sklearn.metrics.average_precision_score``);
- ``interpolation="envelope"``: the same sum with P_n replaced by max_{m >= n} P_m, the
  monotone envelope of the curve. This is what PCL's ``eval_svm_voc.py`` (which ReSSL's
  low-shot table follows) and Revisiting's ``voc_svm/metrics.py`` compute, and what the
  VOC devkit uses from 2010 on. It is never below the plain value.

Tied scores form one operating point (sklearn's convention); PCL sorts tied scores in
arbitrary order, which only matters for exact ties. An image counts as positive when its
label is > 0 (VOC labels: 1 present, 0 only "difficult" objects, -1 absent).
"""
from __future__ import annotations

import numpy as np

INTERPOLATIONS = ("envelope", "none")


def average_precision(labels, scores, interpolation: str = "envelope") -> float:
    """AP in [0, 1] of ``scores`` (higher = more confident) against binary ``labels`` (> 0 = positive)."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    positive = np.asarray(labels).ravel() > 0
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if positive.shape != scores.shape:
        raise ValueError(f"{positive.size} labels for {scores.size} scores")
    if not positive.any():
        raise ValueError("no positive label: average precision is undefined")
    order = np.argsort(-scores, kind="stable")
    ranked_scores, ranked_positive = scores[order], positive[order]
    # one operating point per distinct score: the last rank of each run of equal scores
    ends = np.r_[np.flatnonzero(np.diff(ranked_scores)), scores.size - 1]
    true_pos = np.cumsum(ranked_positive)[ends]
    precision = true_pos / (ends + 1)
    recall = true_pos / positive.sum()
    if interpolation == "envelope":
        precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def mean_average_precision(labels, scores, interpolation: str = "envelope") -> tuple[float, dict[int, float]]:
    """mAP over the columns (classes) of (N, C) ``labels``/``scores`` that have a positive;
    returns (mAP, {class index: AP}). Columns without a positive are left out of the mean
    (the caller reports which)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    per_class = {c: average_precision(labels[:, c], scores[:, c], interpolation)
                 for c in range(labels.shape[1]) if (labels[:, c] > 0).any()}
    if not per_class:
        raise ValueError("no class has a positive label")
    return float(np.mean(list(per_class.values()))), per_class
