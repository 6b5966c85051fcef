"""DAVIS-2017 semi-supervised evaluation: J (region IoU), F (boundary F-measure), J&F.

Definitions as the official ``davis2017-evaluation`` (davisvideochallenge, davis2017/
{metrics,evaluation,davis,utils}.py; ../shared/protocols.md sec. 4), vectorised over
objects and frames:

- objects are the ids 1..max(first-frame annotation) (255 counts as background, as the
  official reader sets it to 0); object k of a frame is ``mask == k``;
- J = |P ∩ G| / |P ∪ G| per object and frame, 1 when the union is empty;
- F: 1-pixel boundary maps (``seg2bmap``: a pixel is boundary when it differs from its right,
  lower or lower-right neighbour; the last row/column compare along the border only), each
  dilated with a disk of radius ceil(0.008 x image diagonal) pixels; precision = predicted
  boundary pixels inside the dilated true boundary / predicted boundary pixels, recall the
  converse; F = 2PR / (P + R) (P=1, R=0 for an empty prediction boundary, P=0, R=1 for an empty
  true boundary, 1 when both are empty, 0 when P + R = 0);
- semi-supervised: the first and the last frame are not scored ([1:-1]);
- per object: Mean, Recall (fraction of frames > 0.5), Decay (mean of the first minus the last
  of 4 frame bins); J-Mean / F-Mean = mean over all objects of all sequences (not over
  sequences); J&F-Mean = (J-Mean + F-Mean) / 2.

One deliberate difference: the official tool exits when the predicted PNGs of a sequence hold
fewer object ids than its first frame (an object lost in every scored frame); here such an
object scores an empty mask (J = 0, F = 0). A predicted id above the first frame's objects is
an error, as there.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

BOUND_TH = 0.008  # fraction of the image diagonal (davis2017 metrics.py bound_th)
VOID = 255


def disk(radius: int) -> np.ndarray:
    """skimage.morphology.disk: (2r+1)^2 uint8 with 1 where x^2 + y^2 <= r^2."""
    grid = np.arange(-radius, radius + 1)
    return (grid[:, None] ** 2 + grid[None, :] ** 2 <= radius ** 2).astype(np.uint8)


def boundary_tolerance(height: int, width: int, bound_th: float = BOUND_TH) -> int:
    """Dilation radius in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th x diagonal)."""
    return int(bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(height, width)))


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """1-pixel-wide boundary maps of binary masks ``(..., H, W)`` (davis2017 ``_seg2bmap``)."""
    seg = np.asarray(seg, dtype=bool)
    e, s, se = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    e[..., :, :-1] = seg[..., :, 1:]
    s[..., :-1, :] = seg[..., 1:, :]
    se[..., :-1, :-1] = seg[..., 1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[..., -1, :] = seg[..., -1, :] ^ e[..., -1, :]
    b[..., :, -1] = seg[..., :, -1] ^ s[..., :, -1]
    b[..., -1, -1] = False
    return b


def dilate(maps: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of every map in ``(N, H, W)`` with ``disk(radius)`` in one cv2 call: the
    maps are stacked vertically with ``radius`` empty rows between them, so none reaches the next."""
    n, h, w = maps.shape
    if radius <= 0 or n == 0:
        return maps.astype(bool)
    tall = np.zeros((n, h + radius, w), dtype=np.uint8)
    tall[:, :h] = maps
    out = cv2.dilate(tall.reshape(n * (h + radius), w), disk(radius))
    return out.reshape(n, h + radius, w)[:, :h].astype(bool)


def jaccard(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Region similarity J of binary masks ``(..., H, W)``; 1 where the union is empty."""
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and prediction {pred.shape} differ in shape")
    inter = (gt & pred).sum(axis=(-2, -1))
    union = (gt | pred).sum(axis=(-2, -1))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """Contour accuracy F of binary masks ``(..., H, W)`` (davis2017 ``f_measure``)."""
    gt, pred = np.asarray(gt, dtype=bool), np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"annotation {gt.shape} and prediction {pred.shape} differ in shape")
    lead, (h, w) = gt.shape[:-2], gt.shape[-2:]
    radius = boundary_tolerance(h, w, bound_th)
    gt_b, fg_b = seg2bmap(gt).reshape(-1, h, w), seg2bmap(pred).reshape(-1, h, w)
    gt_dil, fg_dil = dilate(gt_b, radius), dilate(fg_b, radius)
    n_fg, n_gt = fg_b.sum(axis=(1, 2)), gt_b.sum(axis=(1, 2))
    fg_match = (fg_b & gt_dil).sum(axis=(1, 2))
    gt_match = (gt_b & fg_dil).sum(axis=(1, 2))
    # empty boundaries: none predicted -> P 1 (R 0 unless none true); none true -> R 1 (P 0 unless none predicted)
    precision = np.where(n_fg == 0, 1.0, np.where(n_gt == 0, 0.0, fg_match / np.maximum(n_fg, 1)))
    recall = np.where(n_gt == 0, 1.0, np.where(n_fg == 0, 0.0, gt_match / np.maximum(n_gt, 1)))
    denom = precision + recall
    f = np.where(denom == 0, 0.0, 2 * precision * recall / np.where(denom == 0, 1, denom))
    return f.reshape(lead)


def statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of one object's per-frame values (davis2017 ``db_statistics``)."""
    values = np.asarray(per_frame, dtype=np.float64)
    mean = float(np.nanmean(values))
    recall = float(np.nanmean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


def evaluate_sequence(gt: np.ndarray, pred: np.ndarray, name: str = "sequence",
                      bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F of one sequence (semi-supervised: frames [1:-1] scored).

    ``gt`` and ``pred`` are ``(T, H, W)`` arrays of object ids (0 background, 255 void = 0).
    Returns two ``(objects, T - 2)`` arrays.
    """
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"{name}: annotations {gt.shape} and predictions {pred.shape} differ in shape")
    if gt.ndim != 3 or gt.shape[0] < 3:
        raise ValueError(f"{name}: need (T >= 3, H, W) id maps, got {gt.shape}")
    gt = np.where(gt == VOID, 0, gt)
    n_objects = int(gt[0].max())
    scored_gt, scored_pred = gt[1:-1], pred[1:-1]
    if scored_pred.size and int(scored_pred.max()) > n_objects:
        raise ValueError(f"{name}: predicted object id {int(scored_pred.max())} but the first frame "
                         f"has {n_objects} object(s)")
    j = np.zeros((n_objects, len(scored_gt)))
    f = np.zeros((n_objects, len(scored_gt)))
    for k in range(1, n_objects + 1):  # objects x frames vectorised per object (memory bound)
        j[k - 1] = jaccard(scored_gt == k, scored_pred == k)
        f[k - 1] = f_measure(scored_gt == k, scored_pred == k, bound_th)
    return j, f


@dataclass
class DavisScores:
    """Accumulates sequences; ``summary()`` gives the official global numbers (in [0, 1])."""

    objects: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)

    def add(self, sequence: str, j: np.ndarray, f: np.ndarray) -> None:
        for k, (jk, fk) in enumerate(zip(j, f), 1):
            self.objects[f"{sequence}_{k}"] = {"J": statistics(jk), "F": statistics(fk)}

    def sequence_means(self) -> dict[str, dict[str, float]]:
        """Mean J, F and J&F of each sequence (over its objects)."""
        by_seq: dict[str, list[dict]] = {}
        for name, stats in self.objects.items():
            by_seq.setdefault(name.rsplit("_", 1)[0], []).append(stats)
        out = {}
        for seq, items in by_seq.items():
            jm = float(np.mean([s["J"][0] for s in items]))
            fm = float(np.mean([s["F"][0] for s in items]))
            out[seq] = {"J": jm, "F": fm, "JF": (jm + fm) / 2, "objects": len(items)}
        return out

    def summary(self) -> dict[str, float]:
        if not self.objects:
            raise ValueError("no sequence scored")
        stats = list(self.objects.values())
        out = {}
        for metric in ("J", "F"):
            values = np.array([s[metric] for s in stats])
            out[f"{metric}-Mean"], out[f"{metric}-Recall"], out[f"{metric}-Decay"] = values.mean(axis=0).tolist()
        out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2
        return out

    def write_csv(self, folder: str | Path, split: str = "val") -> tuple[Path, Path]:
        """``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv`` as the
        official tool writes them (one row per object ``<sequence>_<k>``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        global_path, seq_path = folder / f"global_results-{split}.csv", folder / f"per-sequence_results-{split}.csv"
        keys = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
        with open(global_path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(keys)
            writer.writerow([f"{summary[k]:.6f}" for k in keys])
        with open(seq_path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Sequence", "J-Mean", "F-Mean"])
            for name, stats in self.objects.items():
                writer.writerow([name, f"{stats['J'][0]:.6f}", f"{stats['F'][0]:.6f}"])
        return global_path, seq_path
