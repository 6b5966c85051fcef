"""Weighted kNN classification on frozen backbone features.

    python transfer/knn.py --ckpt runs/x/backbone.pth --dataset cifar10 --data DIR --scale smoke

Features of the train split form the memory bank, each test image is classified by
the k nearest (cosine) bank features weighted by exp(s/T); top-1 accuracy is recorded
as task ``knn_cls``. Defaults k=200, T=0.1 (MoCo's CIFAR monitor); DINO/CGH use
k=20, T=0.07.
"""
from __future__ import annotations

import argparse
import time

from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.data.loading import DATASET_KINDS, UInt8Images, open_dataset
from pretrain.features import knn_accuracy
from transfer.common import add_common_args, add_dataset_args, backbone_from_args, parse_common

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tinyimagenet": "Tiny-ImageNet"}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    add_dataset_args(parser, DATASET_KINDS)
    parser.add_argument("--image-size", type=int, required=True, help="side the images are fed at")
    parser.add_argument("--reduced", default=None, metavar="TEXT",
                        help="what makes this run 'reduced' when it is not --max-per-class "
                        "(e.g. 'Tiny-ImageNet 10-class subset'); recorded in the protocol")
    parser.add_argument("-k", "--k", type=int, default=200)
    parser.add_argument("-t", "--temperature", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=0)
    args = parse_common(parser, argv)
    if args.scale == "reduced" and args.max_per_class is None and not args.reduced:
        parser.error("--scale reduced: say what is reduced (--max-per-class or --reduced TEXT)")

    start = time.perf_counter()
    backbone, method, ckpt_path = backbone_from_args(args)
    reader_args = {"max_per_class": args.max_per_class} if args.max_per_class else {}
    bank, queries = (UInt8Images(open_dataset(args.dataset, args.data, split, **reader_args), args.image_size)
                     for split in (args.train_split, args.test_split))
    accuracy = knn_accuracy(backbone, bank, queries, args.device, args.k, args.temperature,
                            args.batch_size, args.workers)
    dataset = args.dataset_name or DATASET_NAMES.get(args.dataset, args.dataset)
    append_record(method=method, task="knn_cls", dataset=dataset, metric="top1", value=accuracy,
                  scale=args.scale, checkpoint=ckpt_path, device=args.device,
                  wall_time_s=time.perf_counter() - start, runs_dir=args.results,
                  protocol={"k": args.k, "temperature": args.temperature, "image_size": args.image_size,
                            "train_images": len(bank), "test_images": len(queries),
                            "max_per_class": args.max_per_class, "data": str(args.data),
                            **({"reduced": args.reduced} if args.reduced else {})})
    print(f"kNN (k={args.k}, T={args.temperature}) top-1 on {dataset} [{args.scale}]: {accuracy:.2f}% "
          f"({len(queries)} test / {len(bank)} bank images, method {method})")
    return accuracy


if __name__ == "__main__":
    main()
