"""Weighted kNN classification on frozen backbone features.

    python transfer/knn.py --ckpt runs/x/backbone.pth --dataset cifar10 --data DIR --image-size 32 --scale smoke
    python transfer/knn.py --ckpt runs/x/backbone.pth --preset dino --dataset imagefolder --data IMAGENET --scale full

Features of the train split form the memory bank (L2-normalised global-pooled backbone
features, eval mode); each test image is classified by its k nearest (cosine) bank features,
each voting with weight exp(s/T); top-1 accuracy is recorded as task ``knn_cls``.

Evaluation transform: the shorter side resized to ``--resize`` (bicubic), centre crop
``--image-size``; without ``--resize`` the image is resized straight to ``--image-size``
(the small datasets, fed at their native side).

Several ``-k`` values are evaluated on the same features; each k is recorded
(``protocol.aggregate = "k=<k>"``) and, with more than one, the best of them
(``"best_over_k"``, with every k's accuracy) -- CGH (seed 000, Sec. 4.2) follows DINO's kNN
protocol "using several nearest neighbor settings {10, 20, 100, 200} and reporting the highest
accuracy". ``--preset dino`` sets that protocol: k 10 20 100 200, T 0.07, Resize 256 /
CenterCrop 224 (DINO's eval_knn, copied in CGH's code; protocols.md sec. 6). Defaults without
a preset: k=200, T=0.1 (MoCo's CIFAR monitor).

The test split defaults to the dataset's evaluation split (Tiny-ImageNet and ImageNet: val;
CIFAR, STL-10: test).
"""
from __future__ import annotations

import argparse
import time

from evaluation.knn import top1, weighted_knn_predict_many
from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.data.loading import DATASET_KINDS, DATASET_NAMES, UInt8Images, open_dataset
from pretrain.features import REPRESENTATIONS, extract_features, representation
from transfer.common import ResizeCenterCrop, add_common_args, add_dataset_args, backbone_from_args, parse_common

# DINO eval_knn.py (copied verbatim in CGH's eval_knn.py): nb_knn 10 20 100 200, temperature 0.07,
# Resize(256, bicubic) + CenterCrop(224); CGH reports the highest accuracy over the k (seed 000 Sec. 4.2)
PRESETS = {"dino": {"k": [10, 20, 100, 200], "temperature": 0.07, "resize": 256, "image_size": 224}}
DEFAULTS = {"k": [200], "temperature": 0.1, "resize": None, "image_size": None}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    add_dataset_args(parser, DATASET_KINDS)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="a published protocol's settings (dino: DINO/CGH k 10 20 100 200, T 0.07, 256/224); "
                             "flags given explicitly override them")
    parser.add_argument("--image-size", type=int, default=None, help="side the images are fed at (centre crop)")
    parser.add_argument("--resize", type=int, default=None,
                        help="shorter side resized to this (bicubic) before the --image-size centre crop "
                             "(DINO/CGH: 256 for 224)")
    parser.add_argument("--reduced", default=None, metavar="TEXT",
                        help="what makes this run 'reduced' when it is not --max-per-class "
                        "(e.g. 'Tiny-ImageNet 10-class subset'); recorded in the protocol")
    parser.add_argument("-k", "--k", type=int, nargs="+", default=None,
                        help="neighbours; several values are evaluated on the same features and the best is "
                             "recorded too (default 200)")
    parser.add_argument("-t", "--temperature", type=float, default=None, help="vote weight exp(s/T) (default 0.1)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--representation", choices=REPRESENTATIONS, default="global",
                        help="global: pooled last stage; hypercolumn: CGH's hypercolumn head (CGH checkpoints)")
    args = parse_common(parser, argv)
    settings = {**DEFAULTS, **PRESETS.get(args.preset, {})}
    for key, value in settings.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.image_size is None:
        parser.error("--image-size is required (or --preset)")
    if args.resize is not None and args.resize < args.image_size:
        parser.error(f"--resize {args.resize} is smaller than the --image-size {args.image_size} crop")
    if args.scale == "reduced" and args.max_per_class is None and not args.reduced:
        parser.error("--scale reduced: say what is reduced (--max-per-class or --reduced TEXT)")

    start = time.perf_counter()
    backbone, method, ckpt_path = backbone_from_args(args)
    backbone = representation(backbone, args.representation, ckpt_path)
    reader_args = {"max_per_class": args.max_per_class} if args.max_per_class else {}
    readers = [open_dataset(args.dataset, args.data, split, **reader_args)
               for split in (args.train_split, args.test_split)]
    bank, queries = (ResizeCenterCrop(r, args.resize, args.image_size) if args.resize else UInt8Images(r, args.image_size)
                     for r in readers)
    bank_x, bank_y = extract_features(backbone, bank, args.device, args.batch_size, args.workers, "bank features")
    query_x, query_y = extract_features(backbone, queries, args.device, args.batch_size, args.workers,
                                        "query features")
    num_classes = int(max(bank_y.max(), query_y.max())) + 1
    predictions = weighted_knn_predict_many(bank_x, bank_y, query_x, num_classes, args.k, args.temperature)
    per_k = {k: top1(p, query_y) for k, p in predictions.items()}
    best_k = max(per_k, key=lambda k: (per_k[k], -k))  # the smallest k among ties

    dataset = args.dataset_name or DATASET_NAMES.get(args.dataset, args.dataset)
    protocol = {"ks": list(per_k), "temperature": args.temperature, "image_size": args.image_size,
                "transform": (f"resize shorter side to {args.resize} (bicubic), centre crop {args.image_size}"
                              if args.resize else f"resized to {args.image_size} (shorter side, bicubic; centre crop)"),
                "preset": args.preset, "representation": args.representation, "test_split": args.test_split, "train_images": len(bank),
                "test_images": len(queries), "max_per_class": args.max_per_class, "data": str(args.data),
                **({"reduced": args.reduced} if args.reduced else {})}
    runs = [(k, acc, {"k": k, "aggregate": f"k={k}"}) for k, acc in per_k.items()]
    if len(per_k) > 1:
        runs.append((best_k, per_k[best_k], {"k": best_k, "aggregate": "best_over_k",
                                             "top1_per_k": {str(k): acc for k, acc in per_k.items()}}))
    for _, accuracy, extra in runs:
        append_record(method=method, task="knn_cls", dataset=dataset, metric="top1", value=accuracy,
                      scale=args.scale, checkpoint=ckpt_path, device=args.device,
                      wall_time_s=time.perf_counter() - start, runs_dir=args.results, protocol={**protocol, **extra})
    shown = ", ".join(f"k={k} {acc:.2f}%" for k, acc in per_k.items())
    print(f"kNN (T={args.temperature}) top-1 on {dataset} [{args.scale}]: {shown}; best k={best_k} "
          f"{per_k[best_k]:.2f}% ({len(queries)} test / {len(bank)} bank images, method {method})")
    return per_k[best_k]


if __name__ == "__main__":
    main()
