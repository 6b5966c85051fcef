"""COCO detection + instance segmentation transfer with detectron2 (Mask R-CNN).

    python transfer/coco_det.py --ckpt backbone.pth --data /data/coco --config c4_1x --num-gpus 8 --scale full
    python transfer/coco_det.py --ckpt backbone.pth --data data/synthetic/coco --smoke

The backbone initialises a detectron2 Mask R-CNN following the MoCo detection
conventions (SyncBN in backbone and heads, the C4 res5 head with an extra norm layer,
RGB input normalised with torchvision's mean/std x 255, stride in the 3x3 conv, all
stages fine-tuned); the whole detector is fine-tuned on ``train2017`` and evaluated on
``val2017`` with detectron2's COCOEvaluator (official pycocotools COCOeval). Records:
task ``det_coco`` (AP, AP50, AP75 of bbox) and ``inst_seg_coco`` (AP_mask, AP50_mask,
AP75_mask of segm), dataset ``COCO``.

Configs (``transfer/configs/detectron2/``; ``r50_`` prefixes accepted for ResNet-50):
  c4_1x        Mask R-CNN C4, 90k it (CGH, LEWEL, PCD COCO-C4)
  c4_2x        Mask R-CNN C4, 180k it (MoCo)
  c4_2x_ressl  C4 2x at lr 0.04 (ReSSL)
  fpn_1x/2x    Mask R-CNN FPN, 4conv1fc head, SyncBN everywhere (LEWEL, PCD COCO-FPN)
The depth follows the checkpoint (R18/R34 students of PCD Table 6 included; their C4
head is the BasicBlock res5). PCD's NormRescale (weights x0.25) is applied to checkpoints
whose ``method`` is ``pcd`` in the C4 configs (not FPN, as PCD), never to other checkpoints. On CPU or one GPU, SyncBN is plain BN (recorded). ``--smoke``: 3 iterations
at 96-160 px, score threshold 0 so that AP is defined; says nothing about a method.
The COCO root holds ``annotations/instances_{train,val}2017.json`` and ``train2017/``,
``val2017/`` image folders. Extra ``KEY VALUE`` pairs after the flags go to detectron2's
config (recorded).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from transfer.common import add_common_args, parse_common
from transfer.detectron2_common import (NORM_RESCALE_HELP, build_cfg, check_scale, coco_num_classes, coco_spec,
                                        prepare_weights, resolve_checkpoint, run_protocol, train_and_evaluate)

CONFIGS = {"c4_1x": "coco_C4_1x", "c4_2x": "coco_C4_2x", "c4_2x_ressl": "coco_C4_2x_ressl",
           "fpn_1x": "coco_FPN_1x", "fpn_2x": "coco_FPN_2x"}
BOX_METRICS = {"AP": "AP", "AP50": "AP50", "AP75": "AP75"}
MASK_METRICS = {"AP": "AP_mask", "AP50": "AP50_mask", "AP75": "AP75_mask"}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--data", required=True, help="COCO root (original layout)")
    parser.add_argument("--config", default="c4_1x",
                        choices=sorted(CONFIGS) + sorted(f"r50_{c}" for c in CONFIGS))
    parser.add_argument("--num-gpus", type=int, default=1, help="processes on this machine (one per GPU)")
    parser.add_argument("--train-split", default="train2017")
    parser.add_argument("--test-split", default="val2017")
    parser.add_argument("--norm-rescale", type=float, default=None, help=NORM_RESCALE_HELP)
    parser.add_argument("--max-iter", type=int, default=None, help="shorter schedule (scale reduced)")
    parser.add_argument("--out", default=None, help="detectron2 output folder (default runs/detectron2/coco/...)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="detectron2 config KEY VALUE pairs")
    args = parse_common(parser, argv)
    return run(args, parser)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    config = args.config.removeprefix("r50_")
    check_scale(args, parser)
    start = time.perf_counter()
    out = Path(args.out or f"runs/detectron2/coco/{CONFIGS[config]}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    ckpt, method, arch = resolve_checkpoint(args, out)
    if args.config.startswith("r50_") and arch != "resnet50":
        parser.error(f"--config {args.config} is the ResNet-50 setting; the checkpoint is {arch} (use --config {config})")
    train, test = coco_spec(args.data, args.train_split), coco_spec(args.data, args.test_split)
    cfg, changes = build_cfg(CONFIGS[config], arch, train=[train], test=test, num_classes=coco_num_classes(test),
                             device=args.device, num_gpus=args.num_gpus, out_dir=out, smoke=args.smoke,
                             max_iter=args.max_iter, opts=args.opts, seed=args.seed)
    weights, meta = prepare_weights(ckpt, cfg, out, args.norm_rescale)
    result = train_and_evaluate(cfg, [train, test], weights, args.num_gpus)
    metrics = result["results"]
    method = method or meta.get("method", "unknown")
    protocol = {**run_protocol(cfg, CONFIGS[config], arch, changes, args, meta, result),
                "train": args.train_split, "test": args.test_split,
                "evaluator": "detectron2 COCOEvaluator (official pycocotools COCOeval)"}
    wall = time.perf_counter() - start
    for task, key, names in (("det_coco", "bbox", BOX_METRICS), ("inst_seg_coco", "segm", MASK_METRICS)):
        for src, metric in names.items() if key in metrics else ():
            append_record(method=method, task=task, dataset="COCO", metric=metric, value=metrics[key][src],
                          scale=args.scale, checkpoint=None if args.random_init else ckpt, protocol=protocol,
                          device=args.device, wall_time_s=wall, runs_dir=args.results)
    summary = ", ".join(f"{key} AP {metrics[key]['AP']:.2f}" for key in ("bbox", "segm") if key in metrics)
    print(f"COCO {CONFIGS[config]} [{args.scale}] {method} ({arch}): {summary}; "
          f"{result['verified_tensors']} backbone tensors verified; {wall:.0f} s")
    return metrics


if __name__ == "__main__":
    main()
