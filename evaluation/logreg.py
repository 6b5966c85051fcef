"""L2-regularised logistic regression on frozen features, swept over C (linear transfer).

The protocol (Kornblith et al. 2019; Ericsson et al. 2021, ``ssl-transfer/linear.py``;
see ../shared/protocols.md section 3):

- features raw (the global-pooled backbone output as is, float64), as Ericsson's code feeds
  them to sklearn; ``standardize=True`` standardises them with the training rows' mean/std
  instead (not the published protocol);
- for every C of the sweep (``protocol_grid()``: C = 1/wd, wd 45 log-spaced values in
  [1e-6, 1e5], i.e. C from 1e6 down to 1e-5) fit on train, score on validation;
- the C with the best validation score wins -- the first of the grid in its given order
  among ties (Ericsson keeps a strictly greater score, walking wd upwards);
- refit on train+val with that C, score on test.

Objective, identical for both solvers (W: classes x features, b: bias, not penalised)::

    sum_i CE(W x_i + b, y_i) + 1/(2C) ||W||^2

multinomial (softmax) for 3+ classes, binary logistic for 2 classes and for every column
of a multi-label problem (VOC07: one binary classifier per class, as Ericsson). Solvers:

- ``solver="sklearn"``: ``sklearn.linear_model.LogisticRegression(solver="lbfgs")``; with
  scikit-learn >= 1.8 multinomial is implied for 3+ classes (no ``multi_class``
  argument any more); ``warm_start=True`` along the sweep, as Ericsson;
- ``solver="torch"``: ``torch.optim.LBFGS`` (strong-Wolfe line search) on the same
  objective, written out with its analytic gradient (no autograd), float64 by default
  (``dtype=torch.float32`` for speed on a GPU), on any device. The stopping rule mirrors
  scipy's L-BFGS-B as sklearn calls it: the
  objective is divided by n (sklearn minimises the mean) and the run stops when the
  largest gradient entry is <= ``tol`` or after ``max_iter`` iterations.

Warm starts (``path``): at sklearn's default 100 iterations most fits of the sweep stop
before convergence, so where each fit starts changes the numbers. ``path="ericsson"``
(default) is Ericsson's single warm-started classifier: the sweep walks wd upwards (C from
1e6 down), each fit starting from the previous solution, and the final refit on train+val
starts from the last fit of the sweep. ``path="ascending"`` walks from the smallest C
(strongest penalty) upwards and refits from the train solution at the chosen C (fewer
iterations to converge; not the published protocol). One difference remains for VOC07:
Ericsson refits one classifier for the 20 classes in turn (each class warm-started from
the previous class's solution); here each class has its own warm-started chain.

Scores are percentages: ``top1``, ``mean_per_class_acc`` (mean of the confusion-matrix
diagonal over row sums, sklearn ``confusion_matrix``) and ``mAP`` (VOC07 11-point
interpolated AP per class from ``sklearn.metrics.precision_recall_curve``, averaged).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_curve
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

METRICS = ("top1", "mean_per_class_acc", "mAP")
SOLVERS = ("sklearn", "torch")
PATHS = ("ericsson", "ascending")


# --------------------------------------------------------------------------- grid and metrics


def protocol_grid(n: int = 45, wd_min: float = 1e-6, wd_max: float = 1e5) -> np.ndarray:
    """C values of the protocol's sweep in its order: C = 1/wd for ``n`` wd log-spaced in
    [wd_min, wd_max] (Ericsson: ``torch.logspace(-6, 5, 45)``), i.e. C descending."""
    return 1.0 / np.logspace(np.log10(wd_min), np.log10(wd_max), n)


def select_c(grid, scores) -> int:
    """Index of the winning C: the best score, the first in ``grid`` order among ties."""
    scores = np.asarray(scores, dtype=float)
    if len(scores) != len(grid) or not len(scores):
        raise ValueError(f"{len(scores)} scores for a grid of {len(grid)} values")
    return int(np.argmax(scores))


def top1_accuracy(labels, predictions) -> float:
    return 100.0 * float(np.mean(np.asarray(labels) == np.asarray(predictions)))


def mean_per_class_accuracy(labels, predictions) -> float:
    """Mean over the classes present in ``labels`` of the per-class recall (%)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    present = np.unique(labels)
    every = np.union1d(present, predictions)  # a predicted class absent from labels is still an error
    matrix = confusion_matrix(labels, predictions, labels=every)
    rows = np.searchsorted(every, present)
    return 100.0 * float(np.mean(matrix[rows, rows] / matrix[rows].sum(axis=1)))


def voc07_11point_ap(labels, scores) -> float:
    """VOC2007 11-point interpolated AP in [0, 1] (the devkit's ``VOCevalcls``): the mean over
    recall thresholds t = 0, 0.1, ..., 1 of the best precision at recall >= t (0 where none
    reaches t), over the operating points of the ranking. sklearn's ``precision_recall_curve``
    appends a (recall 0, precision 1) end point that is no operating point; it is dropped here
    (Ericsson's ``voc_ap`` keeps it, which makes t = 0 count 1 when a negative ranks first)."""
    labels = np.asarray(labels).ravel() > 0
    if not labels.any():
        raise ValueError("no positive label: average precision is undefined")
    precision, recall, _ = precision_recall_curve(labels, np.asarray(scores, dtype=np.float64).ravel())
    precision, recall = precision[:-1], recall[:-1]
    return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                          for t in np.linspace(0, 1, 11)]))


def mean_ap_11point(labels, scores) -> float:
    """11-point mAP (%) over the columns of (N, K) binary ``labels`` that have a positive."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    aps = [voc07_11point_ap(labels[:, k], scores[:, k]) for k in range(labels.shape[1])
           if (labels[:, k] > 0).any()]
    if not aps:
        raise ValueError("no class has a positive label")
    return 100.0 * float(np.mean(aps))


def score(metric: str, labels, decision: np.ndarray, classes: np.ndarray) -> float:
    """Percent score of a decision matrix (N, columns) against ``labels``; ``classes`` maps
    columns to labels for single-label problems (a single column = binary, positive = classes[1])."""
    if metric == "mAP":
        return mean_ap_11point(labels, decision)
    if decision.shape[1] == 1:
        predictions = classes[(decision[:, 0] > 0).astype(int)]
    else:
        predictions = classes[np.argmax(decision, axis=1)]
    if metric == "top1":
        return top1_accuracy(labels, predictions)
    if metric == "mean_per_class_acc":
        return mean_per_class_accuracy(labels, predictions)
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


# --------------------------------------------------------------------------- the objective


def _targets(labels: np.ndarray, multilabel: bool) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray]:
    """(classes, targets, binary?, columns to fit). Targets: class indices (multinomial) or
    0/1 columns (binary: two classes, or each class of multi-label data). A multi-label column
    without both a positive and a negative training row is not fitted (its decision stays 0)."""
    if multilabel:
        targets = (np.asarray(labels) > 0).astype(np.float64)
        fitted = (targets.max(axis=0) > 0) & (targets.min(axis=0) < 1)
        if not fitted.any():
            raise ValueError("no class has both positive and negative training rows")
        return np.arange(labels.shape[1]), targets, True, fitted
    classes, index = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes to fit a classifier, got {classes.tolist()}")
    if len(classes) == 2:
        return classes, index[:, None].astype(np.float64), True, np.ones(1, dtype=bool)
    return classes, index, False, np.ones(len(classes), dtype=bool)


def objective(X, targets, W, b, C: float, binary: bool) -> float:
    """sum_i loss_i + ||W||^2 / (2C) in float64 numpy -- the reference value both solvers minimise.
    ``targets``: class indices (multinomial) or (N, M) 0/1 columns (binary); W (K or M, d)."""
    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    z = X @ W.T + b
    if binary:
        y = np.asarray(targets, dtype=np.float64).reshape(z.shape)
        data = np.sum(np.logaddexp(0.0, z) - y * z)
    else:
        zmax = z.max(axis=1, keepdims=True)
        lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
        data = np.sum(lse - z[np.arange(len(z)), np.asarray(targets)])
    return float(data + np.sum(W * W) / (2.0 * C))


# --------------------------------------------------------------------------- solvers


class _SklearnPath:
    """One warm-started sklearn LogisticRegression per output (one for single-label data,
    one per class for multi-label data)."""

    def __init__(self, columns: int, max_iter: int, tol: float):
        self.models = [LogisticRegression(solver="lbfgs", max_iter=max_iter, tol=tol, warm_start=True)
                       for _ in range(columns)]

    def fit(self, X, Y, C: float, init: list[tuple[np.ndarray, np.ndarray]] | None = None) -> int:
        iters = 0
        for k, model in enumerate(self.models):
            model.set_params(C=C)
            if init is not None:
                model.coef_, model.intercept_ = (a.copy() for a in init[k])
            y = Y if Y.ndim == 1 else Y[:, k]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            iters = max(iters, int(np.max(model.n_iter_)))
        return iters

    def state(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(m.coef_.copy(), m.intercept_.copy()) for m in self.models]

    def decision(self, X) -> np.ndarray:
        out = [m.decision_function(X) for m in self.models]
        return np.stack(out, axis=1) if len(out) > 1 else (out[0][:, None] if out[0].ndim == 1 else out[0])


class TorchLogReg:
    """Full-batch L-BFGS (``torch.optim.LBFGS``, strong Wolfe) on the objective above.

    ``fit`` keeps the parameters between calls (warm start along the C path)."""

    def __init__(self, n_features: int, outputs: int, binary: bool, max_iter: int = 100, tol: float = 1e-4,
                 device: str = "cpu", dtype: torch.dtype = torch.float32, history_size: int = 10):
        self.binary, self.max_iter, self.tol, self.history_size = binary, max_iter, tol, history_size
        self.device, self.dtype = torch.device(device), dtype
        self.params = torch.zeros(outputs, n_features + 1, device=self.device, dtype=dtype)  # [W | b]

    def _data(self, X, targets):
        X = torch.as_tensor(np.asarray(X), device=self.device).to(self.dtype)
        if self.binary:
            T = torch.as_tensor(np.asarray(targets), device=self.device).to(self.dtype).reshape(len(X), -1)
        else:
            T = torch.as_tensor(np.asarray(targets), device=self.device).long()
        return X, T

    def fit(self, X, targets, C: float) -> int:
        X, T = self._data(X, targets)
        n = X.shape[0]
        penalty = 1.0 / (C * n)  # mean form, as sklearn: (1/n) sum loss_i + penalty/2 ||W||^2
        param = self.params.clone().contiguous().requires_grad_(True)
        optimizer = torch.optim.LBFGS([param], lr=1.0, max_iter=self.max_iter, max_eval=self.max_iter * 5,
                                      tolerance_grad=self.tol, tolerance_change=1e-12,
                                      history_size=self.history_size, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            with torch.no_grad():
                W, b = param[:, :-1], param[:, -1]
                z = torch.addmm(b, X, W.T)
                if self.binary:
                    data = (torch.nn.functional.softplus(z) - T * z).sum()
                    residual = torch.sigmoid(z) - T
                else:
                    lse = torch.logsumexp(z, dim=1)
                    data = (lse - z.gather(1, T[:, None])[:, 0]).sum()
                    residual = torch.exp(z - lse[:, None])
                    residual[torch.arange(n, device=z.device), T] -= 1.0
                loss = data / n + 0.5 * penalty * (W * W).sum()
                grad_w = torch.mm(residual.T, X).div_(n).add_(W, alpha=penalty)
                param.grad = torch.cat([grad_w, residual.sum(0, keepdim=True).T / n], dim=1)
            return loss

        optimizer.step(closure)
        state = optimizer.state[optimizer._params[0]]
        self.params = param.detach()
        return int(state.get("n_iter", 0))

    def decision(self, X) -> np.ndarray:
        X = torch.as_tensor(np.asarray(X), device=self.device).to(self.dtype)
        with torch.no_grad():
            z = torch.addmm(self.params[:, -1], X, self.params[:, :-1].T)
        return z.double().cpu().numpy()

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.params.double().cpu().numpy()
        return p[:, :-1], p[:, -1]


# --------------------------------------------------------------------------- the protocol


@dataclass
class TransferResult:
    test_score: float  # in ``metric``, the one C was chosen by
    test_scores: dict[str, float]
    best_c: float
    best_index: int
    grid: list[float]
    val_scores: list[float]
    metric: str
    solver: str
    path: str
    dtype: str
    iterations: list[int]
    refit_iterations: int
    sweep_time_s: float
    refit_time_s: float
    counts: dict[str, int] = field(default_factory=dict)

    def protocol(self) -> dict[str, Any]:
        """The settings worth recording with the number."""
        return {"solver": self.solver, "warm_start_path": self.path, "dtype": self.dtype,
                "C": self.best_c, "C_index": self.best_index,
                "grid": {"n": len(self.grid), "C_max": max(self.grid), "C_min": min(self.grid)},
                "val_scores": [round(s, 4) for s in self.val_scores],
                "iterations": self.iterations, "refit_iterations": self.refit_iterations,
                "sweep_time_s": round(self.sweep_time_s, 3), "refit_time_s": round(self.refit_time_s, 3),
                **self.counts}


class _Problem:
    """Labels of one fit turned into what a solver needs, and the solver itself."""

    def __init__(self, labels, multilabel: bool, solver: str, n_features: int, max_iter: int, tol: float,
                 device: str, dtype: torch.dtype):
        self.classes, targets, binary, self.fitted = _targets(np.asarray(labels), multilabel)
        self.width = targets.shape[1] if binary else len(self.classes)  # columns of the decision
        fit_targets = targets[:, self.fitted] if binary else targets
        if solver == "sklearn":
            # sklearn gets the original labels (it finds the classes itself); multi-label: 0/1 columns
            self.y = fit_targets if multilabel else np.asarray(labels)
            self.model: Any = _SklearnPath(fit_targets.shape[1] if multilabel else 1, max_iter, tol)
        elif solver == "torch":
            self.y = fit_targets
            self.model = TorchLogReg(n_features, fit_targets.shape[1] if binary else len(self.classes), binary,
                                     max_iter, tol, device, dtype)
        else:
            raise ValueError(f"unknown solver {solver!r}; expected one of {SOLVERS}")

    def fit(self, X, C: float, init=None) -> int:
        if isinstance(self.model, _SklearnPath):
            return self.model.fit(X, self.y, C, init=init)
        if init is not None:
            self.model.params = init.clone()
        return self.model.fit(X, self.y, C)

    def state(self):
        return self.model.state() if isinstance(self.model, _SklearnPath) else self.model.params.clone()

    def compatible(self, other: "_Problem") -> bool:
        """Can ``other``'s solution warm-start this problem (same classes and fitted columns)?"""
        return np.array_equal(self.classes, other.classes) and np.array_equal(self.fitted, other.fitted)

    def decision(self, X) -> np.ndarray:
        out = np.zeros((len(X), self.width))
        out[:, self.fitted] = self.model.decision(X)
        return out


def _scaled(train, *others, standardize: bool):
    if not standardize:
        return (np.asarray(train, dtype=np.float64), *(np.asarray(o, dtype=np.float64) for o in others))
    scaler = StandardScaler().fit(np.asarray(train, dtype=np.float64))
    return tuple(scaler.transform(np.asarray(a, dtype=np.float64)) for a in (train, *others))


def path_order(grid, path: str) -> np.ndarray:
    """Indices of ``grid`` in the order the warm-started sweep fits them: ``ericsson`` =
    C descending (wd ascending, ``torch.logspace(-6, 5, 45)`` order), ``ascending`` = C ascending."""
    if path not in PATHS:
        raise ValueError(f"unknown path {path!r}; expected one of {PATHS}")
    order = np.argsort(np.asarray(grid, dtype=float), kind="stable")
    return order[::-1] if path == "ericsson" else order


def fit_path(X_train, y_train, X_eval, grid, *, solver: str = "sklearn", multilabel: bool = False,
             max_iter: int = 100, tol: float = 1e-4, device: str = "cpu", dtype: torch.dtype = torch.float64,
             path: str = "ericsson", progress: bool = False
             ) -> tuple[list[np.ndarray], list[int], list[Any], _Problem]:
    """Fit every C of ``grid`` on (already scaled) training rows, each fit warm-started from
    the previous one in ``path_order``; returns (decision on ``X_eval`` per grid entry,
    iterations per entry, solution per entry, the problem), lists in ``grid`` order."""
    problem = _Problem(y_train, multilabel, solver, X_train.shape[1], max_iter, tol, device, dtype)
    order = path_order(grid, path)
    decisions: list[Any] = [None] * len(grid)
    iterations, states = [0] * len(grid), [None] * len(grid)
    for i in tqdm(order, desc=f"C sweep ({solver})", unit="C", disable=not progress):
        iterations[i] = problem.fit(X_train, float(grid[i]))
        decisions[i] = problem.decision(X_eval)
        states[i] = problem.state()
    return decisions, iterations, states, problem


def linear_transfer(X_train, y_train, X_val, y_val, X_test, y_test, *, metric: str,
                    grid=None, solver: str = "sklearn", standardize: bool = False, max_iter: int = 100,
                    tol: float = 1e-4, device: str = "cpu", dtype: torch.dtype = torch.float64,
                    path: str = "ericsson", progress: bool = False) -> TransferResult:
    """The whole protocol: sweep C on train -> val, refit on train+val with the best C, score test.
    Labels: class ids (N,) or, for ``metric="mAP"``, (N, K) multi-label 0/1 (or VOC -1/0/1: > 0 = positive)."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    grid = protocol_grid() if grid is None else np.asarray(grid, dtype=float)
    multilabel = metric == "mAP"
    y_train, y_val, y_test = (np.asarray(y) for y in (y_train, y_val, y_test))
    start = time.perf_counter()
    Xtr, Xva = _scaled(X_train, X_val, standardize=standardize)
    decisions, iterations, states, problem = fit_path(
        Xtr, y_train, Xva, grid, solver=solver, multilabel=multilabel, max_iter=max_iter, tol=tol,
        device=device, dtype=dtype, path=path, progress=progress)
    val_scores = [score(metric, y_val, d, problem.classes) for d in decisions]
    best = select_c(grid, val_scores)
    sweep_time = time.perf_counter() - start

    start = time.perf_counter()
    X_trainval = np.concatenate([np.asarray(X_train), np.asarray(X_val)])
    y_trainval = np.concatenate([y_train, y_val])
    Xtv, Xte = _scaled(X_trainval, X_test, standardize=standardize)
    final = _Problem(y_trainval, multilabel, solver, Xtv.shape[1], max_iter, tol, device, dtype)
    C = float(grid[best])
    start_state = states[path_order(grid, path)[-1]] if path == "ericsson" else states[best]
    refit_iters = final.fit(Xtv, C, init=start_state if final.compatible(problem) else None)
    decision = final.decision(Xte)
    # single-label data: both accuracies (papers differ on which they print for a dataset)
    test_scores = {m: score(m, y_test, decision, final.classes)
                   for m in ((metric,) if multilabel else ("top1", "mean_per_class_acc"))}
    counts = {"train": len(y_train), "val": len(y_val), "test": len(y_test),
              "classes": int(final.width), "features": int(Xtv.shape[1])}
    return TransferResult(test_score=test_scores[metric], test_scores=test_scores, best_c=C, best_index=best,
                          grid=[float(c) for c in grid],
                          val_scores=val_scores, metric=metric, solver=solver, path=path,
                          dtype="float64" if solver == "sklearn" else str(dtype).removeprefix("torch."),
                          iterations=iterations,
                          refit_iterations=refit_iters, sweep_time_s=sweep_time,
                          refit_time_s=time.perf_counter() - start, counts=counts)
