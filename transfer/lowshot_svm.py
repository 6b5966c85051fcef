"""Low-shot VOC07 classification with linear SVMs on frozen features (ReSSL Table 11).

    python transfer/lowshot_svm.py --ckpt runs/x/backbone.pth --data VOCdevkit --scale full
    python transfer/lowshot_svm.py --ckpt runs/x/backbone.pth --data VOCdevkit --k full --scale full   # VOC07 SVM
    python transfer/lowshot_svm.py --smoke --ckpt runs/smoke/mocov2/backbone.pth --data data/synthetic/VOCdevkit

The protocol is that of PCL's ``eval_svm_voc.py``, which ReSSL says it follows ("we follow
the implementation in [54]"); Revisiting's VOC07 SVM (protocols.md 3c) is the same code
with k = full and C = 0.5:

- features: global-pooled backbone output of VOC2007 ``trainval`` and ``test`` images,
  resized to 256 on the shorter side and centre-cropped to 224 (bicubic here; torchvision's
  default bilinear in PCL), ImageNet normalisation, eval mode; each feature divided by
  (its L2 norm + 1e-5);
- image labels per class: 1 if the image has a non-difficult object of the class, 0 if it
  has only difficult ones, -1 otherwise (the VOC devkit's ``<class>_<split>.txt``), derived
  here from the XML annotations of ``pretrain.data.readers.VOC``. PCL turns 0 into -1:
  difficult-only images are negatives for training and for the AP (``--difficult negative``);
  ``--difficult ignore`` leaves them out of that class's training set and AP instead
  (the Goyal et al. 2019 benchmark convention);
- one ``sklearn.svm.LinearSVC(C, class_weight={1: 2, -1: 1}, penalty='l2',
  loss='squared_hinge', dual=True, tol=1e-4, max_iter=2000, intercept_scaling=1,
  random_state=0)`` per class, scored by its ``decision_function`` on the test images;
- low-shot sampling (PCL ``convert_low_shot``): for every class, k images drawn without
  replacement among its positives; the training set is the concatenation of the 20 draws
  (an image drawn for several classes appears several times) with all of its labels, so a
  class's SVM sees its k drawn positives plus any drawn for other classes that contain it.
  ``--runs`` independent samplings (5 in ReSSL/PCL; one numpy Generator seeded by ``--seed``,
  drawn in sequence), their mAPs averaged; ``k = full`` uses all of trainval once;
- AP: all-points AP with the precision envelope (PCL/Revisiting ``calculate_ap``,
  ``evaluation.voc_ap``); ``--ap none`` gives the plain step-wise AP (sklearn's);
  mAP = mean over the classes with a test positive (all 20 on the real VOC07 test);
- ``--costs`` several values: the mAP of each is recorded and the best is reported -- PCL
  picks the best cost on the test set; ReSSL does not state C (PCL's default 0.5).

Records task ``low_shot`` (``--task ablation`` for Revisiting's table), dataset VOC07,
metric mAP, one record per k; the protocol holds each sampling's mAP and a digest of its
drawn image ids. Classes with fewer than k positives in trainval are an error at scale
full and are left out (listed) otherwise.
"""
from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np
from sklearn.svm import LinearSVC

from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from evaluation.voc_ap import INTERPOLATIONS, mean_average_precision
from pretrain.data.readers import VOC, VOC_CLASSES, DatasetError, load_image
from pretrain.features import extract_features
from transfer.common import ResizeCenterCrop, add_common_args, backbone_from_args, parse_common

DEFAULT_KS = ("4", "8", "16", "32", "64", "full")   # ReSSL Table 11
SMOKE_KS = ("1", "2", "full")


class VOCImages:
    """(PIL image, index) items of a VOC split, for ``ResizeCenterCrop``."""

    def __init__(self, voc: VOC):
        self.voc = voc

    def __len__(self) -> int:
        return len(self.voc)

    def __getitem__(self, index: int):
        return load_image(self.voc.image_path(self.voc.ids[index])), index


def image_labels(voc: VOC) -> np.ndarray:
    """(N, 20) int8: 1 a non-difficult object of the class, 0 only difficult ones, -1 none
    (the devkit's classification labels)."""
    labels = np.full((len(voc), len(VOC_CLASSES)), -1, dtype=np.int8)
    for i, image_id in enumerate(voc.ids):
        for obj in voc.objects(image_id):
            labels[i, obj.label] = max(labels[i, obj.label], 0 if obj.difficult else 1)
    return labels


def l2_normalize(features: np.ndarray) -> np.ndarray:
    return features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-5)


def sample_low_shot(labels: np.ndarray, k: int, rng: np.random.Generator,
                    classes: list[int] | None = None) -> dict[int, np.ndarray]:
    """Class -> k indices drawn without replacement among the images labelled 1 for it."""
    draws = {}
    for c in range(labels.shape[1]) if classes is None else classes:
        positives = np.flatnonzero(labels[:, c] == 1)
        if len(positives) < k:
            raise DatasetError(f"class {VOC_CLASSES[c]} has {len(positives)} positive training images, "
                               f"fewer than k={k}")
        draws[c] = np.sort(rng.choice(positives, size=k, replace=False))
    return draws


def svm_scores(train_x: np.ndarray, train_labels: np.ndarray, test_x: np.ndarray, cost: float,
               classes: list[int], difficult: str) -> np.ndarray:
    """(N_test, 20) decision values of one LinearSVC per class (NaN for classes not trained)."""
    scores = np.full((len(test_x), train_labels.shape[1]), np.nan)
    for c in classes:
        y = train_labels[:, c].astype(np.int64)
        keep = y != 0 if difficult == "ignore" else np.ones(len(y), bool)
        y = np.where(y > 0, 1, -1)[keep]
        if len(np.unique(y)) < 2:
            raise DatasetError(f"class {VOC_CLASSES[c]}: the training set has only "
                               f"{'positives' if y[0] > 0 else 'negatives'}")
        svm = LinearSVC(C=cost, class_weight={1: 2, -1: 1}, intercept_scaling=1.0, penalty="l2",
                        loss="squared_hinge", dual=True, tol=1e-4, max_iter=2000, random_state=0)
        svm.fit(train_x[keep], y)
        scores[:, c] = svm.decision_function(test_x)
    return scores


def score_map(test_labels: np.ndarray, scores: np.ndarray, classes: list[int], difficult: str,
              interpolation: str) -> tuple[float, dict[int, float]]:
    """mAP (%) over ``classes``; difficult-only test images count as negatives or are dropped."""
    aps = {}
    for c in classes:
        keep = test_labels[:, c] != 0 if difficult == "ignore" else np.ones(len(test_labels), bool)
        _, per = mean_average_precision(test_labels[keep, c:c + 1], scores[keep, c:c + 1], interpolation)
        aps[c] = 100 * per[0]
    return float(np.mean(list(aps.values()))), aps


def digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--data", required=True, help="VOCdevkit folder (or its VOC2007 folder)")
    parser.add_argument("--year", default="2007")
    parser.add_argument("--train-split", default="trainval")
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--dataset-name", default="VOC07", help="name in the result record")
    parser.add_argument("--k", nargs="+", default=None,
                        help=f"labelled images per class, or 'full' (default {' '.join(DEFAULT_KS)}; "
                             f"--smoke: {' '.join(SMOKE_KS)})")
    parser.add_argument("--runs", type=int, default=None, help="independent samplings per k (default 5; smoke 2)")
    parser.add_argument("--costs", type=float, nargs="+", default=[0.5],
                        help="SVM C values; with several, the best mean mAP is reported (PCL: chosen on test)")
    parser.add_argument("--difficult", choices=["negative", "ignore"], default="negative",
                        help="difficult-only images: negatives (PCL, Revisiting) or left out (Goyal et al.)")
    parser.add_argument("--ap", choices=INTERPOLATIONS, default="envelope",
                        help="AP definition: precision envelope (PCL/Revisiting) or none (sklearn)")
    parser.add_argument("--resize", type=int, default=None, help="shorter side before the crop (256; smoke 36)")
    parser.add_argument("--crop", type=int, default=None, help="centre crop side (224; smoke 32)")
    parser.add_argument("--reduced-note", default=None, help="--scale reduced: what else is reduced (e.g. the data)")
    parser.add_argument("--task", choices=["low_shot", "ablation"], default="low_shot",
                        help="record task (ablation: Revisiting's VOC SVM rows)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    args = parse_common(parser, argv)
    ks = args.k or list(SMOKE_KS if args.smoke else DEFAULT_KS)
    for k in ks:
        if k != "full" and not (k.isdigit() and int(k) > 0):
            parser.error(f"--k takes positive integers or 'full', got {k!r}")
    runs = args.runs or (2 if args.smoke else 5)
    args.resize = args.resize or (36 if args.smoke else 256)
    args.crop = args.crop or (32 if args.smoke else 224)
    reduced = [f"runs {runs} of 5"] if runs < 5 and any(k != "full" for k in ks) else []
    reduced += [f"image side {args.crop} (resize {args.resize}) instead of 224 (256)"] \
        if (args.resize, args.crop) != (256, 224) else []
    reduced += [args.reduced_note] if args.reduced_note else []
    if args.scale == "reduced" and not reduced:
        parser.error("--scale reduced: nothing is reduced; say what with --reduced-note")
    if args.scale == "full" and reduced:
        parser.error(f"--scale full, but the run is reduced: {', '.join(reduced)}")

    start = time.perf_counter()
    backbone, method, ckpt_path = backbone_from_args(args)
    train_voc = VOC(args.data, year=args.year, split=args.train_split)
    test_voc = VOC(args.data, year=args.year, split=args.test_split)
    train_labels, test_labels = image_labels(train_voc), image_labels(test_voc)
    feats = {}
    for name, voc in (("train", train_voc), ("test", test_voc)):
        x, _ = extract_features(backbone, ResizeCenterCrop(VOCImages(voc), args.resize, args.crop), args.device,
                                args.batch_size, args.workers, desc=f"{name} features")
        feats[name] = l2_normalize(x.double().cpu().numpy())
    scored = [c for c in range(len(VOC_CLASSES)) if (test_labels[:, c] == 1).any()]
    feature_time = time.perf_counter() - start

    rng = np.random.default_rng(args.seed)
    records = []
    for k in ks:
        k_start = time.perf_counter()
        if k == "full":
            samplings = [(np.arange(len(train_voc)), {})]
            classes, skipped = scored, []
        else:
            short = [c for c in scored if (train_labels[:, c] == 1).sum() < int(k)]
            if short and args.scale == "full":
                sample_low_shot(train_labels, int(k), rng, short)  # raises, naming the class
            classes, skipped = [c for c in scored if c not in short], short
            samplings = []
            for _ in range(runs):
                draws = sample_low_shot(train_labels, int(k), rng, classes)
                samplings.append((np.concatenate([draws[c] for c in classes]), draws))
        per_cost = {}
        for cost in args.costs:
            run_maps, run_info = [], []
            for run, (index, draws) in enumerate(samplings):
                scores = svm_scores(feats["train"][index], train_labels[index], feats["test"], cost, classes,
                                    args.difficult)
                value, _ = score_map(test_labels, scores, classes, args.difficult, args.ap)
                run_maps.append(value)
                run_info.append({"run": run, "mAP": round(value, 4), "train_images": int(len(index)),
                                 "sample_sha256": digest([train_voc.ids[i] for i in index])})
            per_cost[cost] = (float(np.mean(run_maps)), float(np.std(run_maps)), run_info)
        best_cost = max(per_cost, key=lambda c: per_cost[c][0])
        value, std, run_info = per_cost[best_cost]
        protocol = {
            "k": k, "variant": f"k={k}", "runs": len(samplings), "mAP_per_run": run_info, "mAP_std": std,
            "cost": best_cost, "mAP_per_cost": {str(c): v[0] for c, v in per_cost.items()},
            "cost_selection": "best mean mAP on test over --costs (as PCL)" if len(args.costs) > 1 else "fixed",
            "svm": "sklearn LinearSVC(class_weight={1:2,-1:1}, penalty=l2, loss=squared_hinge, dual=True, "
                   "tol=1e-4, max_iter=2000, intercept_scaling=1, random_state=0), one per class",
            "features": f"global-pooled backbone output, resize {args.resize} (bicubic) + centre crop {args.crop}, "
                        "ImageNet normalisation, eval mode, x / (||x||_2 + 1e-5)",
            "sampling": ("all trainval images" if k == "full" else
                         f"per class {k} of its positives without replacement, concatenated over classes "
                         f"(PCL convert_low_shot); numpy default_rng({args.seed}) drawn in sequence over "
                         f"k in {ks}"),
            "difficult": args.difficult, "ap": f"all-points, interpolation={args.ap}",
            "classes_scored": [VOC_CLASSES[c] for c in classes],
            "classes_skipped_few_positives": [VOC_CLASSES[c] for c in skipped],
            "classes_without_test_positive": [VOC_CLASSES[c] for c in range(len(VOC_CLASSES)) if c not in scored],
            "train_split": f"VOC{args.year} {args.train_split} ({len(train_voc)} images)",
            "test_split": f"VOC{args.year} {args.test_split} ({len(test_voc)} images)",
            "data": str(args.data), "seed": args.seed,
            "follows": "PCL eval_svm_voc.py (ReSSL seed 003 Table 11 cites [54] = PCL)",
        }
        protocol["reduced"] = [r for r in reduced if k != "full" or not r.startswith("runs")] + ([f"classes with fewer than k positives left out: {len(skipped)}"]
                                         if skipped else [])
        wall = feature_time + time.perf_counter() - k_start
        append_record(method=method, task=args.task, dataset=args.dataset_name, metric="mAP", value=value,
                      scale=args.scale, checkpoint=ckpt_path, device=args.device, wall_time_s=wall,
                      runs_dir=args.results, protocol=protocol)
        records.append({"k": k, "mAP": value, "std": std, "cost": best_cost})
        print(f"low-shot VOC SVM k={k} on {args.dataset_name} [{args.scale}]: mAP {value:.2f} "
              f"(std {std:.2f} over {len(samplings)} run(s), C={best_cost}, {len(classes)} classes, method {method})")
    return records


if __name__ == "__main__":
    main()
