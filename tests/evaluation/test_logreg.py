"""evaluation.logreg: the torch L-BFGS solver against scikit-learn on the same features,
C selection, metrics against independent computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from evaluation import logreg


pytestmark = pytest.mark.usefixtures("one_thread")  # small problems: no OpenMP barrier waits


def blobs(n: int, classes: int = 6, dim: int = 24, noise: float = 2.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(123).normal(size=(classes, dim))
    y = rng.permutation(np.arange(n) % classes)
    return np.maximum(means[y] + noise * rng.normal(size=(n, dim)), 0), y


def sklearn_objective(model: LogisticRegression, X, y, C: float) -> float:
    """sum_i -log p(y_i | x_i) + ||W||^2 / (2C) from sklearn's own probabilities (independent
    of logreg.objective's formula)."""
    proba = model.predict_proba(X)
    index = np.searchsorted(model.classes_, y)
    return float(-np.log(proba[np.arange(len(y)), index]).sum() + (model.coef_ ** 2).sum() / (2 * C))


@pytest.mark.parametrize("classes", [2, 5])
@pytest.mark.parametrize("C", [1e-3, 0.1, 10.0])
def test_torch_reaches_the_sklearn_optimum(classes, C):
    X, y = blobs(300, classes=classes)
    X = (X - X.mean(0)) / X.std(0)
    reference = LogisticRegression(C=C, solver="lbfgs", tol=1e-10, max_iter=5000).fit(X, y)
    problem = logreg._Problem(y, False, "torch", X.shape[1], 5000, 1e-9, "cpu", torch.float64)
    problem.fit(X, C)
    W, b = problem.model.weights()
    targets = logreg._targets(y, False)[1]
    binary = classes == 2
    ours = logreg.objective(X, targets, W, b, C, binary)
    theirs = logreg.objective(X, targets, reference.coef_, reference.intercept_, C, binary)
    # logreg.objective is sklearn's objective: same value as from sklearn's own probabilities
    assert theirs == pytest.approx(sklearn_objective(reference, X, y, C), rel=1e-9)
    assert ours == pytest.approx(theirs, rel=1e-7, abs=1e-7)
    assert ours <= theirs + 1e-6
    np.testing.assert_allclose(W, reference.coef_, atol=2e-4 * max(1.0, np.abs(reference.coef_).max()))
    np.testing.assert_array_equal(problem.decision(X).argmax(1) if classes > 2 else problem.decision(X)[:, 0] > 0,
                                  np.searchsorted(reference.classes_, reference.predict(X)) if classes > 2
                                  else reference.predict(X) == reference.classes_[1])


def test_torch_float32_objective_at_sklearn_optimum():
    """At sklearn's optimum the float32 torch gradient vanishes (same objective, same scaling)."""
    X, y = blobs(400)
    X = (X - X.mean(0)) / X.std(0)
    C = 0.05
    reference = LogisticRegression(C=C, solver="lbfgs", tol=1e-10, max_iter=5000).fit(X, y)
    model = logreg.TorchLogReg(X.shape[1], 6, binary=False, max_iter=0, tol=1e-4, dtype=torch.float32)
    model.params = torch.as_tensor(np.hstack([reference.coef_, reference.intercept_[:, None]]), dtype=torch.float32)
    start = model.params.clone()
    model.max_iter = 50
    model.fit(X, y, C)  # already optimal: L-BFGS stops at the first gradient check
    assert torch.allclose(model.params, start, atol=1e-4)


def test_sweep_accuracy_matches_sklearn_within_0_2_points():
    Xtr, ytr = blobs(900, seed=1)
    Xva, yva = blobs(300, seed=2)
    Xte, yte = blobs(600, seed=3)
    grid = logreg.protocol_grid(9, 1e-4, 1e4)
    results = {solver: logreg.linear_transfer(Xtr, ytr, Xva, yva, Xte, yte, metric="top1", grid=grid,
                                              solver=solver, max_iter=500, tol=1e-6)
               for solver in logreg.SOLVERS}
    sk, th = results["sklearn"], results["torch"]
    assert sk.best_c == th.best_c
    assert abs(sk.test_score - th.test_score) <= 0.2
    assert max(abs(a - b) for a, b in zip(sk.val_scores, th.val_scores)) <= 0.5
    assert 40 < sk.test_score < 100  # a problem where the classifier matters
    assert sk.counts == {"train": 900, "val": 300, "test": 600, "classes": 6, "features": 24}


def test_multilabel_map_matches_sklearn_and_reference():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(360, 12))
    Y = (X[:, :4] + 0.8 * rng.normal(size=(360, 4)) > 0.3).astype(int)
    Y[:, 3] = 0  # a class without any positive: not fitted, left out of the mAP
    grid = logreg.protocol_grid(5, 1e-3, 1e2)
    parts = (X[:200], Y[:200], X[200:260], Y[200:260], X[260:], Y[260:])
    sk = logreg.linear_transfer(*parts, metric="mAP", grid=grid, solver="sklearn", max_iter=1000, tol=1e-8)
    th = logreg.linear_transfer(*parts, metric="mAP", grid=grid, solver="torch", max_iter=1000, tol=1e-8,
                                dtype=torch.float64)
    assert sk.best_c == th.best_c and abs(sk.test_score - th.test_score) < 0.2
    # the sklearn run's number is the 11-point mAP of per-class binary LogisticRegression scores
    # on the raw features (the protocol does not standardise them)
    scores = np.stack([LogisticRegression(C=sk.best_c, tol=1e-8, max_iter=1000).fit(X[:260], Y[:260, k])
                       .decision_function(X[260:]) for k in range(3)], axis=1)
    assert sk.test_score == pytest.approx(logreg.mean_ap_11point(Y[260:], scores), abs=1e-6)


def brute_force_11point(labels, scores) -> float:
    """VOC07 11-point AP from precision/recall at every threshold, written without sklearn."""
    labels, scores = np.asarray(labels) > 0, np.asarray(scores, float)
    points = []
    for threshold in np.unique(scores):
        predicted = scores >= threshold
        tp = np.sum(predicted & labels)
        points.append((tp / labels.sum(), tp / predicted.sum()))
    return float(np.mean([max([p for r, p in points if r >= t], default=0.0) for t in np.linspace(0, 1, 11)]))


def test_11point_ap_against_brute_force_and_sklearn():
    rng = np.random.default_rng(1)
    for _ in range(20):
        labels = rng.random(50) < 0.3
        labels[0] = True
        scores = np.round(rng.normal(size=50) + labels, 1)  # rounding makes ties
        assert logreg.voc07_11point_ap(labels, scores) == pytest.approx(brute_force_11point(labels, scores))
    # perfect ranking: 1; 11-point AP and all-points AP (sklearn) agree there and differ elsewhere
    assert logreg.voc07_11point_ap([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2]) == pytest.approx(1.0)
    labels, scores = np.array([1, 0, 1, 0, 0, 1]), np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert average_precision_score(labels, scores) == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    assert logreg.voc07_11point_ap(labels, scores) == pytest.approx((4 * 1 + 3 * 2 / 3 + 4 * 1 / 2) / 11)
    Y = np.stack([labels, 1 - labels], 1)
    S = np.stack([scores, -scores], 1)
    assert logreg.mean_ap_11point(Y, S) == pytest.approx(
        50 * (logreg.voc07_11point_ap(labels, scores) + logreg.voc07_11point_ap(1 - labels, -scores)))


def test_c_selection_is_argmax_first_among_ties():
    grid = logreg.protocol_grid()
    assert len(grid) == 45 and grid[0] == pytest.approx(1e6) and grid[-1] == pytest.approx(1e-5)
    assert np.all(np.diff(np.log10(grid)) == pytest.approx(-0.25))
    assert logreg.select_c(grid[:4], [10, 30, 30, 20]) == 1
    with pytest.raises(ValueError):
        logreg.select_c(grid[:4], [1, 2])
    # in a full run the chosen C is the argmax of the recorded val scores
    Xtr, ytr = blobs(240, seed=4)
    Xva, yva = blobs(120, seed=5)
    result = logreg.linear_transfer(Xtr, ytr, Xva, yva, Xva, yva, metric="mean_per_class_acc",
                                    grid=logreg.protocol_grid(7), solver="torch")
    assert result.best_index == int(np.argmax(result.val_scores))
    assert result.best_c == result.grid[result.best_index]


def test_accuracy_metrics_against_direct_counts():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 0, 0, 1, 1, 3, 2])  # 3: a class absent from the labels
    assert logreg.top1_accuracy(labels, predictions) == pytest.approx(100 * 5 / 7)
    assert logreg.mean_per_class_accuracy(labels, predictions) == pytest.approx(100 * (3 / 4 + 1 / 2 + 1) / 3)
    with pytest.raises(ValueError, match="metric"):
        logreg.linear_transfer(*blobs(30), *blobs(30), *blobs(30), metric="top5")
    with pytest.raises(ValueError, match="solver"):
        logreg.linear_transfer(*blobs(30), *blobs(30), *blobs(30), metric="top1", solver="liblinear")


def pooled_like_features(n: int, classes: int, dim: int = 2048, seed: int = 0):
    """Non-negative, low-rank class-structured rows shaped like ResNet-50 avgpool features,
    with channel scales spread over two orders of magnitude (raw features are not standardised)."""
    rng = np.random.default_rng(seed)
    structure = np.random.default_rng(99)
    means, projection = structure.normal(size=(classes, 32)), structure.normal(size=(32, dim)) / np.sqrt(32)
    scales = np.exp(structure.normal(0, 1, dim))
    y = rng.permutation(np.arange(n) % classes)
    z = means[y] + 3.0 * rng.normal(size=(n, 32))
    return np.maximum(z @ projection + rng.normal(size=(n, dim)), 0) * scales, y


def test_protocol_regime_torch_matches_sklearn_accuracy():
    """The published regime: 2048-d raw (not standardised) features, float64, sklearn's 100
    L-BFGS iterations, Ericsson's warm-start path. Fits stop at the iteration cap, so the two
    solvers' solutions differ; their accuracies must not (within 2 test images of 200)."""
    Xtr, ytr = pooled_like_features(200, 10, seed=1)
    Xva, yva = pooled_like_features(100, 10, seed=2)
    Xte, yte = pooled_like_features(200, 10, seed=3)
    grid = logreg.protocol_grid(45)[::8]  # 6 C values from 1e6 down to 1e-4
    results = {solver: logreg.linear_transfer(Xtr, ytr, Xva, yva, Xte, yte, metric="top1", grid=grid,
                                              solver=solver, max_iter=100)
               for solver in logreg.SOLVERS}
    sk, th = results["sklearn"], results["torch"]
    assert sk.path == th.path == "ericsson" and sk.dtype == th.dtype == "float64"
    assert sk.counts["features"] == 2048
    assert max(sk.iterations + [sk.refit_iterations]) == 100  # the regime: the cap is reached
    assert abs(sk.test_score - th.test_score) <= 2 * 100 / 200
    assert max(abs(a - b) for a, b in zip(sk.val_scores, th.val_scores)) <= 3 * 100 / 100
    assert 20 < sk.test_score < 100  # above the 10% chance level: the classifier matters


def test_ericsson_path_walks_c_downwards_and_refits_from_the_last_fit(monkeypatch):
    """Ericsson's one warm-started classifier: wd upwards (C 1e6 first), refit from the last fit."""
    grid = logreg.protocol_grid(5)
    assert list(logreg.path_order(grid, "ericsson")) == [0, 1, 2, 3, 4]  # the grid is C descending
    assert list(logreg.path_order(grid, "ascending")) == [4, 3, 2, 1, 0]
    with pytest.raises(ValueError, match="unknown path"):
        logreg.path_order(grid, "random")
    fits, states = [], []
    fit, state = logreg._Problem.fit, logreg._Problem.state
    monkeypatch.setattr(logreg._Problem, "fit", lambda self, X, C, init=None: (
        fits.append((len(X), C, None if init is None else init.clone())), fit(self, X, C, init))[1])
    monkeypatch.setattr(logreg._Problem, "state", lambda self: states.append(state(self)) or states[-1])
    X, y = blobs(200, classes=3, dim=8)
    for path, first, refit_from in (("ericsson", 0, -1), ("ascending", 4, None)):
        fits.clear(), states.clear()
        result = logreg.linear_transfer(X[:100], y[:100], X[100:150], y[100:150], X[150:], y[150:],
                                        metric="top1", grid=grid, solver="torch", max_iter=5, path=path)
        assert [C for _, C, _ in fits[:5]] == [grid[i] for i in logreg.path_order(grid, path)]
        assert fits[0][1] == grid[first] and fits[5][0] == 150  # the refit on train+val
        expected = states[refit_from] if refit_from is not None else states[4 - result.best_index]
        assert torch.equal(fits[5][2], expected)
