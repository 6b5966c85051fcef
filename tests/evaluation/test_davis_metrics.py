"""DAVIS J/F/J&F against hand-computed values and a literal per-frame reference."""
import math

import numpy as np
import pytest
from scipy import ndimage

from evaluation.davis_metrics import (DavisScores, boundary_tolerance, evaluate_sequence, f_measure, jaccard,
                                      seg2bmap, statistics)


def square(h, w, top, left, side):
    mask = np.zeros((h, w), bool)
    mask[top:top + side, left:left + side] = True
    return mask


def reference_f(pred, gt, bound_th=0.008):
    """davis2017 f_measure written out for one frame: Martin's seg2bmap with explicit neighbour
    comparisons and scipy's binary dilation with a disk structuring element."""
    def bmap(seg):
        h, w = seg.shape
        b = np.zeros_like(seg)
        for y in range(h):
            for x in range(w):
                right = seg[y, x + 1] if x + 1 < w else False
                down = seg[y + 1, x] if y + 1 < h else False
                diag = seg[y + 1, x + 1] if (x + 1 < w and y + 1 < h) else False
                if y == h - 1 and x == w - 1:
                    b[y, x] = False
                elif y == h - 1:
                    b[y, x] = seg[y, x] != right
                elif x == w - 1:
                    b[y, x] = seg[y, x] != down
                else:
                    b[y, x] = seg[y, x] != right or seg[y, x] != down or seg[y, x] != diag
        return b

    r = math.ceil(bound_th * math.hypot(*gt.shape))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    structure = xx ** 2 + yy ** 2 <= r ** 2
    fg, gtb = bmap(pred), bmap(gt)
    fg_dil, gt_dil = ndimage.binary_dilation(fg, structure), ndimage.binary_dilation(gtb, structure)
    n_fg, n_gt = fg.sum(), gtb.sum()
    if n_fg == 0 and n_gt > 0:
        p, rc = 1, 0
    elif n_fg > 0 and n_gt == 0:
        p, rc = 0, 1
    elif n_fg == 0 and n_gt == 0:
        p, rc = 1, 1
    else:
        p, rc = (fg & gt_dil).sum() / n_fg, (gtb & fg_dil).sum() / n_gt
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def test_identical_masks_score_one():
    gt = np.stack([square(40, 60, 5 + t, 10 + 2 * t, 15) for t in range(5)])
    assert np.all(jaccard(gt, gt) == 1) and np.all(f_measure(gt, gt) == 1)


def test_shifted_square_hand_computed():
    # 20x20 image: tolerance ceil(0.008 * 28.3) = 1 px. GT = 10x10 square, prediction shifted 3 px
    # right. J = 70 / 130. Both boundaries are 40-pixel rings (11x11 perimeter); 20 predicted
    # boundary pixels lie within 1 px of the true ring (8 + 1 on each of the top and bottom rows, 1 at
    # each end of the left column), and symmetrically for recall: P = R = F = 0.5.
    gt, pred = square(20, 20, 5, 5, 10), square(20, 20, 5, 8, 10)
    assert boundary_tolerance(20, 20) == 1
    assert seg2bmap(gt).sum() == 40
    assert jaccard(gt, pred) == pytest.approx(70 / 130)
    assert f_measure(gt, pred) == pytest.approx(0.5)


def test_tolerance_at_480p():
    assert boundary_tolerance(480, 854) == math.ceil(0.008 * math.hypot(480, 854)) == 8


def test_against_literal_reference():
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(6):
        base = ndimage.gaussian_filter(rng.standard_normal((48, 64)), 4) > 0.02
        other = ndimage.gaussian_filter(rng.standard_normal((48, 64)), 4) > 0.02
        gts.append(base)
        preds.append(np.where(rng.random((48, 64)) < 0.85, base, other))
    gts += [np.zeros((48, 64), bool), square(48, 64, 3, 3, 9), np.zeros((48, 64), bool)]
    preds += [np.zeros((48, 64), bool), np.zeros((48, 64), bool), square(48, 64, 40, 50, 5)]
    gts, preds = np.stack(gts), np.stack(preds)
    got = f_measure(gts, preds)
    want = [reference_f(p, g) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[-3:].tolist() == [1.0, 0.0, 0.0]  # both empty / nothing predicted / nothing true
    union = (gts | preds).sum((1, 2))
    np.testing.assert_allclose(jaccard(gts, preds), np.where(union == 0, 1, (gts & preds).sum((1, 2)) / np.maximum(union, 1)))


def test_sequence_scores_frames_1_to_minus_1_per_object():
    gt = np.zeros((5, 20, 20), np.uint8)
    gt[:, 2:8, 2:8] = 1
    gt[:, 10:18, 10:18] = 2
    pred = gt.copy()
    pred[0] = 0                 # first and last frames are not scored
    pred[-1] = 0
    pred[2][pred[2] == 2] = 0   # object 2 lost in frame 2
    j, f = evaluate_sequence(gt, pred)
    assert j.shape == f.shape == (2, 3)
    np.testing.assert_array_equal(j, [[1, 1, 1], [1, 0, 1]])
    np.testing.assert_array_equal(f, [[1, 1, 1], [1, 0, 1]])
    scores = DavisScores()
    scores.add("seq", j, f)
    summary = scores.summary()
    assert summary["J-Mean"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary["J&F-Mean"] == pytest.approx((summary["J-Mean"] + summary["F-Mean"]) / 2)
    assert scores.sequence_means()["seq"]["objects"] == 2


def test_mean_is_over_objects_not_sequences(tmp_path):
    scores = DavisScores()
    scores.add("one", np.ones((1, 4)), np.ones((1, 4)))
    scores.add("three", np.zeros((3, 4)), np.zeros((3, 4)))
    assert scores.summary()["J-Mean"] == pytest.approx(0.25)
    global_csv, per_seq = scores.write_csv(tmp_path)
    assert global_csv.read_text().splitlines()[0].startswith("J&F-Mean,J-Mean")
    assert len(per_seq.read_text().splitlines()) == 5  # header + 4 objects


def test_unknown_object_id_is_an_error():
    gt = np.zeros((3, 8, 8), np.uint8)
    gt[:, :4] = 1
    pred = gt.copy()
    pred[1, 0, 0] = 2
    with pytest.raises(ValueError, match="predicted object id 2"):
        evaluate_sequence(gt, pred, "seqname")


def test_statistics_recall_and_decay():
    values = np.array([1.0, 1.0, 0.9, 0.2, 0.1, 0.0, 0.0, 0.4])
    mean, recall, decay = statistics(values)
    assert mean == pytest.approx(values.mean())
    assert recall == pytest.approx(3 / 8)
    # davis2017: edges round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7]; first bin [0:3], last [5:8]
    assert decay == pytest.approx(values[0:3].mean() - values[5:8].mean())
