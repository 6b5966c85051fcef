"""PASCAL VOC detection transfer with detectron2 (Faster R-CNN), repeated and averaged.

    python transfer/voc_det.py --ckpt backbone.pth --data /data/VOCdevkit --num-gpus 8 --repeats 5 --scale full
    python transfer/voc_det.py --ckpt backbone.pth --data data/synthetic/VOCdevkit --smoke

MoCo's VOC protocol: Faster R-CNN R50-C4 (res5 head + extra norm, SyncBN, torchvision
input convention, all stages fine-tuned) trained on VOC2007 trainval + VOC2012 trainval
for 24k iterations (batch 16, lr 0.02, steps 18k/22k, warm-up 100, train scales 480-800,
test 800) and evaluated on VOC2007 test with detectron2's PascalVOCDetectionEvaluator:
AP (mean over IoU .50:.05:.95), AP50, AP75. The papers report the mean of 5 runs: at
``--scale full`` the harness trains 5 times by default (``--repeats N``: seeds seed..seed+N-1;
fewer than 5 cannot be ``full``) and records every repeat (``protocol.aggregate =
"single_run"``) and, with more than one, the mean (``"mean_of_N"``, with each value and the
standard deviation), task ``det_voc``.

Configs (``transfer/configs/detectron2/``): ``c4_24k`` (default; MoCo, LEWEL, CGH, PCD
"VOC 07+12"), ``dc5_24k`` (R50-dilated-C5, Revisiting), ``c4_9k_voc07`` (PCD "VOC 07":
VOC2007 trainval only, 9k iterations; the LR steps are assumed). The depth follows the
checkpoint (R18/R34 with C4: BasicBlock res5 head). PCD's NormRescale (weights x0.25) is applied
to checkpoints whose ``method`` is ``pcd`` in the C4 configs, never to other checkpoints.
``--voc-metric 2007`` (default) scores with detectron2's VOC2007 AP definition (11-point),
as on VOC2007 test; ``2012`` uses the area under the curve. ``--data`` is a VOCdevkit
folder (VOC2007/, VOC2012/ with Annotations, JPEGImages, ImageSets/Main/<split>.txt);
``--train-sets``/``--test-set`` pick other splits (e.g. the 60-image shared VOC2012
subset: ``--train-sets 2012/train --test-set 2012/val``).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from transfer.common import add_common_args, add_repeats_arg, parse_common, resolve_repeats
from transfer.detectron2_common import (NORM_RESCALE_HELP, build_cfg, check_scale, prepare_weights,
                                        resolve_checkpoint, run_protocol, train_and_evaluate, voc_spec)

CONFIGS = {"c4_24k": ("voc_C4_24k", "2007/trainval,2012/trainval", "VOC07+12"),
           "dc5_24k": ("voc_DC5_24k", "2007/trainval,2012/trainval", "VOC07+12"),
           "c4_9k_voc07": ("voc07_C4_9k", "2007/trainval", "VOC07")}
METRICS = ("AP", "AP50", "AP75")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--data", required=True, help="VOCdevkit folder (original layout)")
    parser.add_argument("--config", default="c4_24k", choices=sorted(CONFIGS))
    parser.add_argument("--train-sets", default=None, help="comma list of YEAR/SPLIT (default: the config's)")
    parser.add_argument("--test-set", default="2007/test")
    parser.add_argument("--voc-metric", type=int, choices=(2007, 2012), default=2007,
                        help="AP definition of detectron2's evaluator (2007: 11-point)")
    add_repeats_arg(parser)
    parser.add_argument("--num-gpus", type=int, default=1)
    parser.add_argument("--norm-rescale", type=float, default=None, help=NORM_RESCALE_HELP)
    parser.add_argument("--max-iter", type=int, default=None, help="shorter schedule (scale reduced)")
    parser.add_argument("--dataset-name", default=None, help="name in the records (default: the config's)")
    parser.add_argument("--out", default=None, help="detectron2 output folder (default runs/detectron2/voc/...)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="detectron2 config KEY VALUE pairs")
    args = parse_common(parser, argv)
    check_scale(args, parser)
    resolve_repeats(args, parser)

    config, default_train, dataset = CONFIGS[args.config]
    start = time.perf_counter()
    out = Path(args.out or f"runs/detectron2/voc/{config}-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    ckpt, method, arch = resolve_checkpoint(args, out)
    train = [voc_spec(args.data, s) for s in (args.train_sets or default_train).split(",")]
    test = voc_spec(args.data, args.test_set, metric_year=args.voc_metric)
    runs = []
    for repeat in range(args.repeats):
        seed = args.seed + repeat
        cfg, changes = build_cfg(config, arch, train=train, test=test, num_classes=20, device=args.device,
                                 num_gpus=args.num_gpus, out_dir=out / f"repeat{repeat}", smoke=args.smoke,
                                 max_iter=args.max_iter, opts=args.opts, seed=seed)
        weights, meta = prepare_weights(ckpt, cfg, Path(cfg.OUTPUT_DIR), args.norm_rescale)
        result = train_and_evaluate(cfg, train + [test], weights, args.num_gpus)
        runs.append(result["results"]["bbox"])
        protocol = {**run_protocol(cfg, config, arch, changes, args, meta, result), "seed": seed,
                    "train": [f"{Path(s.root).name}/{s.split}" for s in train], "test": args.test_set,
                    "voc_metric": args.voc_metric, "evaluator": "detectron2 PascalVOCDetectionEvaluator",
                    "repeat": repeat, "repeats": args.repeats, "aggregate": "single_run"}
        _record(args, method or meta.get("method", "unknown"), dataset, runs[-1], protocol, ckpt, start)
        print(f"VOC repeat {repeat + 1}/{args.repeats}: " + ", ".join(f"{m} {runs[-1][m]:.2f}" for m in METRICS))
    mean = {m: statistics.fmean(r[m] for r in runs) for m in METRICS}
    method = method or meta.get("method", "unknown")
    if args.repeats > 1:
        protocol = {**protocol, "repeat": None, "aggregate": f"mean_of_{args.repeats}", "seed": args.seed,
                    "values": {m: [r[m] for r in runs] for m in METRICS},
                    "std": {m: statistics.stdev(r[m] for r in runs) for m in METRICS}}
        _record(args, method, dataset, mean, protocol, ckpt, start)
    print(f"VOC {config} [{args.scale}] {method} ({arch}), mean of {args.repeats}: "
          + ", ".join(f"{m} {mean[m]:.2f}" for m in METRICS))
    return mean


def _record(args, method, dataset, values, protocol, ckpt, start) -> None:
    for metric in METRICS:
        append_record(method=method, task="det_voc", dataset=args.dataset_name or dataset, metric=metric,
                      value=values[metric], scale=args.scale, checkpoint=None if args.random_init else ckpt,
                      protocol=protocol, device=args.device, wall_time_s=time.perf_counter() - start,
                      runs_dir=args.results)


if __name__ == "__main__":
    main()
