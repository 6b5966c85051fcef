import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from evaluation.voc_ap import average_precision, mean_average_precision


def envelope_ap_reference(labels, scores):
    """All-points AP with the monotone precision envelope, from sklearn's PR curve."""
    precision, recall, _ = precision_recall_curve(labels, scores)  # recall decreasing, ends at (R=0, P=1)
    envelope = np.maximum.accumulate(precision)  # max precision at any recall >= this one
    return -np.sum(np.diff(recall) * envelope[:-1])


@pytest.mark.parametrize("ties", [False, True])
def test_plain_ap_matches_sklearn(ties):
    rng = np.random.default_rng(0)
    for trial in range(50):
        n = int(rng.integers(2, 300))
        labels = rng.random(n) < rng.uniform(0.05, 0.6)
        labels[rng.integers(n)] = True
        scores = rng.normal(size=n) + labels * rng.uniform(0, 2)
        if ties:
            scores = np.round(scores, 1)
        assert average_precision(labels, scores, "none") == pytest.approx(
            average_precision_score(labels, scores), abs=1e-12), trial


def test_envelope_ap_matches_reference_and_bounds_plain_ap():
    rng = np.random.default_rng(1)
    strictly_above = 0
    for _ in range(50):
        n = int(rng.integers(5, 200))
        labels = rng.random(n) < 0.3
        labels[0] = True
        scores = np.round(rng.normal(size=n) + labels, 2)
        env, plain = average_precision(labels, scores), average_precision(labels, scores, "none")
        assert env == pytest.approx(envelope_ap_reference(labels, scores), abs=1e-12)
        assert env >= plain - 1e-12
        strictly_above += env > plain + 1e-9
    assert strictly_above > 25  # the two definitions really differ on random rankings


def test_hand_computed_example():
    # ranking: negative, positive, positive -> P = 0, 1/2, 2/3 at R = 0, 1/2, 1
    labels, scores = [-1, 1, 1], [0.9, 0.8, 0.7]
    assert average_precision(labels, scores, "none") == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision(labels, scores, "envelope") == pytest.approx(2 / 3)
    assert average_precision([1, 1, -1], [3.0, 2.0, 1.0]) == 1.0


def test_difficult_label_zero_is_negative_and_no_positive_is_an_error():
    scores = np.array([0.9, 0.5, 0.1])
    assert average_precision([0, 1, -1], scores) == average_precision([False, True, False], scores)
    with pytest.raises(ValueError, match="no positive"):
        average_precision([0, -1, -1], scores)
    with pytest.raises(ValueError, match="2 labels for 3 scores"):
        average_precision([1, 0], scores)


def test_mean_ap_skips_classes_without_positives():
    rng = np.random.default_rng(2)
    labels = np.where(rng.random((40, 3)) < 0.3, 1, -1)
    labels[0, :2] = 1
    labels[:, 2] = -1
    scores = rng.normal(size=(40, 3))
    value, per_class = mean_average_precision(labels, scores, "none")
    assert sorted(per_class) == [0, 1]
    expected = [average_precision_score(labels[:, c] > 0, scores[:, c]) for c in (0, 1)]
    assert value == pytest.approx(np.mean(expected))
