"""Linear transfer with L-BFGS logistic regression on frozen features (ReSSL Table 9,
Revisiting's transfer table; the Kornblith et al. / Ericsson et al. protocol).

    python transfer/lbfgs_transfer.py --ckpt runs/x/backbone.pth --dataset dtd --data /data/dtd --scale full
    python transfer/lbfgs_transfer.py --ckpt runs/x/backbone.pth --dataset imagefolder \\
        --data ../shared/data/cifar10-jpeg.zip --dataset-name CIFAR-10 --max-per-class 100 --scale reduced
    python transfer/lbfgs_transfer.py --smoke --random-init --arch resnet18 --stem cifar \\
        --dataset dtd --data data/synthetic_transfer/dtd

Protocol (``evaluation.logreg`` has the details): features of every image extracted once,
without augmentation -- shorter side resized to ``--image-size`` (bicubic), centre crop of
that size, ImageNet normalisation, backbone in eval mode, global-pooled output, fed raw
(float64, not standardised: Ericsson's code) to an L2-regularised logistic regression
(multinomial; one binary classifier per class for VOC2007) swept over ``--grid-size`` C
values (45: C = 1/wd, wd log-spaced in [1e-6, 1e5]) with sklearn's default 100 L-BFGS
iterations, one warm-started classifier walking wd upwards (Ericsson's path), C chosen on
the validation split (official where the dataset has one, else a random 20% of train,
numpy seed 0), refit on train+val, scored on test.

``--preset revisiting`` is Revisiting's variant of it (seed 004 App. A.2): every image resized
to 224x224 without a crop (torchvision's ``Resize((224, 224))``, bilinear; ``--resize square``)
and the L2 constant among 45 values log-spaced in [1e-5, 1e5] (``--wd-range 1e-5 1e5``).

Defaults are the published protocol: ``--solver sklearn`` (scikit-learn's
``LogisticRegression(solver="lbfgs")``), raw features, float64. ``--solver torch`` is
the same objective with torch.optim.LBFGS (CPU or GPU; ``--dtype float32`` for speed) and
is recorded as such (``protocol.solver``, ``protocol.deviations``); ``--standardize`` and
``--path ascending`` change the protocol and cannot be recorded as ``--scale full``.

Records task ``transfer_linear`` with the dataset's published name: the protocol's metric
(top1, mean_per_class_acc for Aircraft/Caltech-101/Flowers/Pets, mAP for VOC07) and, for
single-label data, the other accuracy too (ReSSL prints Aircraft as top-1, Revisiting
Pets as top-1). The protocol dict holds the chosen C, the grid, solver, image size,
val scores and image counts.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from evaluation.logreg import PATHS, SOLVERS, linear_transfer, protocol_grid
from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.data.loading import DATASET_KINDS, open_dataset
from pretrain.data.transfer_readers import KINDS, SPECS, Subset, protocol_splits, random_val_indices
from pretrain.features import extract_features
from transfer.common import (ResizeCenterCrop, ResizeSquare, add_common_args, add_dataset_args, backbone_from_args,
                             parse_common)

GENERIC_NAMES = {"imagefolder": None, "tinyimagenet": "Tiny-ImageNet", "stl10": "STL-10"}
SMOKE_GRID = 5  # C values at --smoke
SMOKE_IMAGE_SIZE = 32
# the image transform and the L2 (wd = 1/C) range of each published variant of the protocol
RESIZES = {"shorter-crop": "shorter side, bicubic, centre crop", "square": "whole image to a square, bilinear, no crop"}
PRESETS = {"ericsson": {"resize": "shorter-crop", "wd_range": (1e-6, 1e5)},    # Ericsson et al.; ReSSL Table 9
           "revisiting": {"resize": "square", "wd_range": (1e-5, 1e5)}}       # seed 004 App. A.2


def splits_for(args) -> dict:
    """train / val / test readers as the protocol (transfer datasets) or a random 20% val
    (the suite's other classification layouts)."""
    reader_args = {"max_per_class": args.max_per_class} if args.max_per_class else {}
    if args.dataset in SPECS:
        if args.dataset in ("cifar10", "cifar100", "voc2007") and reader_args:
            raise SystemExit(f"--max-per-class is not available for {args.dataset}")
        return protocol_splits(args.dataset, args.data, args.val_fraction, seed=0, **reader_args)
    train = open_dataset(args.dataset, args.data, args.train_split, **reader_args)
    test = open_dataset(args.dataset, args.data, args.test_split, **reader_args)
    train_idx, val_idx = random_val_indices(len(train), args.val_fraction, seed=0)
    return {"train": Subset(train, train_idx), "val": Subset(train, val_idx), "test": test,
            "val_source": f"random {args.val_fraction:.0%} of '{args.train_split}' (numpy seed 0)"}


def features(backbone, reader, args, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """(float32 features, labels) of a reader; VOC2007 labels are its 0/1 label rows."""
    images = (ResizeSquare(reader, args.image_size) if args.resize == "square"
              else ResizeCenterCrop(reader, args.image_size, args.image_size))
    x, y = extract_features(backbone, images, args.device, args.batch_size, args.workers, desc=desc)
    x, y = x.cpu().numpy(), y.cpu().numpy()
    if args.dataset == "voc2007":
        y = reader.multi_hot[y]
    return x, y


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    add_dataset_args(parser, KINDS + tuple(k for k in DATASET_KINDS if k not in KINDS),
                     kind_help="reader / on-disk layout (transfer datasets, or imagefolder/tinyimagenet/...)",
                     name_help="name in the result record (default: the published spelling, e.g. Food-101, VOC07)",
                     split_help=" (generic layouts only)")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="share of train held out as val where there is no official val split")
    parser.add_argument("--image-size", type=int, default=None,
                        help="resize (shorter side, bicubic) + centre crop side; protocol 224 (smoke: 32)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="ericsson",
                        help="the published variant: ericsson (default; ReSSL Table 9) or revisiting (224x224 "
                             "resize without crop, wd in [1e-5, 1e5]); --resize / --wd-range override it")
    parser.add_argument("--resize", choices=sorted(RESIZES), default=None,
                        help="shorter-crop: shorter side to --image-size (bicubic) + centre crop; square: the whole "
                             "image resized to --image-size x --image-size (bilinear, no crop)")
    parser.add_argument("--wd-range", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                        help="L2 constants (wd = 1/C) of the sweep, log-spaced (ericsson: 1e-6 1e5)")
    parser.add_argument("--solver", choices=SOLVERS, default="sklearn",
                        help="sklearn = LogisticRegression(lbfgs), the published protocol (default); "
                             "torch = torch.optim.LBFGS on the same objective (recorded as a deviation)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="torch solver precision (sklearn always works in float64)")
    parser.add_argument("--path", choices=PATHS, default="ericsson",
                        help="warm-start path along the C sweep (ericsson: the published one)")
    parser.add_argument("--grid-size", type=int, default=None, help="number of C values (protocol 45; smoke 5)")
    parser.add_argument("--max-iter", type=int, default=100, help="L-BFGS iterations per C (sklearn's default)")
    parser.add_argument("--tol", type=float, default=1e-4, help="gradient tolerance (sklearn's default)")
    parser.add_argument("--standardize", action="store_true",
                        help="standardise the features with the training rows' mean/std (not the published "
                             "protocol, which feeds the raw pooled features; never --scale full)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    args = parse_common(parser, argv)
    args.image_size = args.image_size or (SMOKE_IMAGE_SIZE if args.smoke else 224)
    args.grid_size = args.grid_size or (SMOKE_GRID if args.smoke else 45)
    preset = PRESETS[args.preset]
    args.resize = args.resize or preset["resize"]
    args.wd_range = tuple(args.wd_range) if args.wd_range else preset["wd_range"]
    spec = SPECS.get(args.dataset)
    metric = spec.metric if spec else "top1"
    dataset = args.dataset_name or (spec.name if spec else GENERIC_NAMES.get(args.dataset)) or args.dataset
    reduced = {key: value for key, value in (
        ("max_per_class", args.max_per_class), ("image_size", args.image_size if args.image_size != 224 else None),
        ("grid_size", args.grid_size if args.grid_size != 45 else None)) if value is not None}
    if args.scale == "full" and reduced:
        parser.error(f"--scale full contradicts the reduced settings {reduced}")
    changed = [flag for flag, on in (("--standardize", args.standardize),
                                     ("--path ascending", args.path != "ericsson"),
                                     (f"--resize {args.resize} (preset {args.preset}: {preset['resize']})",
                                      args.resize != preset["resize"]),
                                     (f"--wd-range {args.wd_range} (preset {args.preset}: {preset['wd_range']})",
                                      args.wd_range != preset["wd_range"])) if on]
    if args.scale == "full" and changed:
        parser.error(f"--scale full is the published protocol; {', '.join(changed)} changes it")
    if args.solver == "sklearn" and args.dtype != "float64":
        parser.error("the sklearn solver works in float64; --dtype is for --solver torch")
    deviations = changed + ([f"solver torch.optim.LBFGS ({args.dtype}) instead of sklearn LogisticRegression(lbfgs)"]
                            if args.solver == "torch" else [])
    if args.scale == "reduced" and not reduced:
        parser.error("--scale reduced: say what is reduced (--max-per-class, --image-size, --grid-size)")

    start = time.perf_counter()
    backbone, method, ckpt_path = backbone_from_args(args)
    splits = splits_for(args)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        features(backbone, splits[s], args, f"{s} features") for s in ("train", "val", "test"))
    feature_time = time.perf_counter() - start
    result = linear_transfer(x_train, y_train, x_val, y_val, x_test, y_test, metric=metric,
                             grid=protocol_grid(args.grid_size, *args.wd_range), solver=args.solver,
                             standardize=args.standardize, max_iter=args.max_iter, tol=args.tol,
                             device=args.device, dtype=getattr(torch, args.dtype), path=args.path, progress=True)
    protocol = {**result.protocol(), "preset": args.preset, "image_size": args.image_size,
                "resize": RESIZES[args.resize], "wd_range": list(args.wd_range),
                "feature_input": "raw global-pooled backbone output" if not args.standardize
                else "standardised with the training rows' mean/std",
                "standardize": args.standardize, "max_iter": args.max_iter, "tol": args.tol,
                "deviations": deviations,
                "val_source": splits["val_source"], "selection_metric": metric, "data": str(args.data),
                "feature_time_s": round(feature_time, 3), "reduced": reduced}
    for name, value in result.test_scores.items():
        append_record(method=method, task="transfer_linear", dataset=dataset, metric=name, value=value,
                      scale=args.scale, checkpoint=ckpt_path, device=args.device,
                      wall_time_s=time.perf_counter() - start, runs_dir=args.results, protocol=protocol)
    scores = ", ".join(f"{name} {value:.2f}" for name, value in result.test_scores.items())
    print(f"L-BFGS linear transfer on {dataset} [{args.scale}, solver {args.solver}]: {scores} "
          f"(C={result.best_c:.4g}, {result.counts['train']}/{result.counts['val']}/{result.counts['test']} "
          f"train/val/test images, {result.counts['features']}-d features, sweep {result.sweep_time_s:.1f} s, "
          f"method {method})")
    return result.test_score


if __name__ == "__main__":
    main()
