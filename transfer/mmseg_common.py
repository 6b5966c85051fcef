"""What the two mmsegmentation harnesses share: registered parts, config patching, the run.

Registered into mmseg's registries (configs import this module via ``custom_imports``):

- ``FeatureNorm`` (neck): PCD's "newly initialized BN layer added to the end of pre-trained
  backbones" -- a fresh norm layer on one backbone output (C5), the others passed through.
- ``RandomRescale`` (transform): the MoCo protocol's "random scaling (ratio 0.5-2.0)" relative
  to each image's own size (mmcv's ``Resize`` with a drawn ``scale_factor``; labels nearest).
- ``BackboneLoadCheck`` (hook, before the first step): every tensor of the built model's
  backbone equals the converted checkpoint named in its ``Pretrained`` init
  (``transfer.convert_mmseg.verify_loaded``); mmengine itself loads with ``strict=False``.
- ``KeepValMetrics`` (hook): keeps the last validation's metrics for the result record.

:func:`run` is the harness: protocol config (``transfer/configs/mmseg``) -> checkpoint
conversion -> data root, arch, norm, batch and smoke patches -> mmengine ``Runner`` train +
val -> one ``sem_seg``/``mIoU`` record.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mmcv.cnn import build_norm_layer
from mmcv.transforms import BaseTransform, Resize
from mmengine.hooks import Hook
from mmengine.model import BaseModule, is_model_wrapper
from mmseg.registry import HOOKS, MODELS, TRANSFORMS

from evaluation.provenance import REPO_ROOT
from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.checkpoint import read_backbone
from pretrain.data.readers import DatasetError
from pretrain.models.resnet import resnet_spec
from transfer.common import add_common_args, add_repeats_arg, parse_common, resolve_repeats
from transfer.convert_detectron2 import decide_norm_rescale
from transfer.convert_mmseg import backbone_cfg, convert, verify_loaded

CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "mmseg"
# published dataset name -> protocol name -> config file
PROTOCOLS = {
    "VOC12": {"lewel": "lewel_voc12aug_fcn_os8_20k.py", "revisiting": "revisiting_voc12aug_fcn_os16.py"},
    "Cityscapes": {"pcd": "pcd_cityscapes_fcn_os16_90k.py", "revisiting": "revisiting_cityscapes_fcn_os16.py"},
}
# --smoke: a few iterations at a tiny crop, single process, evaluation end to end
SMOKE = {"iters": 2, "batch": 2, "crop": 64, "workers": 0}


# ------------------------------------------------------------------ registered parts
@MODELS.register_module()
class FeatureNorm(BaseModule):
    """A newly initialised norm layer (BN: weight 1, bias 0) on backbone output ``in_index``."""

    def __init__(self, in_channels: int, in_index: int = -1, norm_cfg: dict | None = None,
                 init_cfg: dict | None = None):
        super().__init__(init_cfg)
        self.in_index = in_index
        _, self.norm = build_norm_layer(norm_cfg or dict(type="BN", requires_grad=True), in_channels)

    def forward(self, inputs):
        outs = list(inputs)
        outs[self.in_index] = self.norm(outs[self.in_index])
        return tuple(outs)


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Resize by a factor drawn uniformly from ``ratio_range`` of the image's own size."""

    def __init__(self, ratio_range: tuple[float, float] = (0.5, 2.0)):
        low, high = ratio_range
        if not 0 < low <= high:
            raise ValueError(f"ratio_range must be 0 < low <= high, got {ratio_range}")
        self.ratio_range = (float(low), float(high))

    def transform(self, results: dict) -> dict:
        ratio = float(np.random.uniform(*self.ratio_range))
        return Resize(scale_factor=ratio, keep_ratio=True)(results)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ratio_range={self.ratio_range})"


@HOOKS.register_module()
class BackboneLoadCheck(Hook):
    """Before the first training step: the backbone holds exactly the converted weights.

    ``required=False`` only for an explicitly randomly initialised baseline."""

    priority = "VERY_LOW"

    def __init__(self, required: bool = True):
        self.required = required
        self.checked = 0

    def before_train(self, runner) -> None:
        from mmengine.runner.checkpoint import _load_checkpoint

        if runner.iter > 0:
            runner.logger.info(f"BackboneLoadCheck: resumed at iteration {runner.iter}; not compared")
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        init = model.backbone.init_cfg or {}
        if not (isinstance(init, dict) and init.get("type") == "Pretrained"):
            if self.required:
                raise RuntimeError("BackboneLoadCheck: the backbone has no Pretrained init_cfg, so no "
                                   "checkpoint was loaded (use --random-init for a random baseline)")
            runner.logger.info("BackboneLoadCheck: random initialisation requested; nothing to compare")
            return
        expected = _load_checkpoint(init["checkpoint"], map_location="cpu")["state_dict"]
        self.checked = verify_loaded(model.backbone, expected, init["checkpoint"])
        runner.logger.info(f"BackboneLoadCheck: all {self.checked} backbone tensors equal {init['checkpoint']}")


@HOOKS.register_module()
class KeepValMetrics(Hook):
    """The metrics of every validation, last one in ``metrics``."""

    def __init__(self):
        self.metrics: dict[str, float] = {}
        self.history: list[tuple[int, dict[str, float]]] = []

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = {k: round(float(v), 2) for k, v in (metrics or {}).items()}  # mmseg prints 2 decimals
        self.history.append((runner.iter, self.metrics))


# ---------------------------------------------------------------------- config patches
def _walk(node: Any):
    """Every dict inside nested dicts/lists (configs are plain nested containers)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value)


def sync_bn_to_bn(model_cfg: dict) -> int:
    """SyncBN -> BN in a model config (one process, e.g. on CPU); returns how many were replaced."""
    nodes = [node for node in _walk(model_cfg) if node.get("type") == "SyncBN"]
    for node in nodes:
        node["type"] = "BN"
    return len(nodes)


def datasets_of(loader_cfg: dict) -> list[dict]:
    """The leaf dataset dicts of a dataloader config (through ConcatDataset)."""
    dataset = loader_cfg["dataset"]
    return list(dataset["datasets"]) if dataset.get("type") == "ConcatDataset" else [dataset]


def set_backbone(cfg, arch: str, output_stride: int, checkpoint: str | None) -> None:
    """The torchvision-layout mmseg ResNet of ``arch`` and heads/neck sized for it."""
    norm_cfg = cfg.model.backbone.get("norm_cfg")
    cfg.model.backbone = backbone_cfg(arch, output_stride, norm_cfg, checkpoint)
    channels = resnet_spec(arch)[2]  # by stage index 0..3
    for key in ("decode_head", "auxiliary_head", "neck"):
        head = cfg.model.get(key)
        if head and "in_index" in head:
            head["in_channels"] = channels[head["in_index"]]


def scale_schedule(cfg, iters: int) -> None:
    """Shorten/lengthen the iteration schedule proportionally (poly end, step milestones)."""
    old = cfg.train_cfg.max_iters
    for sched in cfg.param_scheduler:
        if "end" in sched and sched["end"] == old:
            sched["end"] = iters
        if "milestones" in sched:
            sched["milestones"] = [max(1, round(m * iters / old)) for m in sched["milestones"]]
    interval = round(cfg.train_cfg.val_interval * iters / old)
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = interval if interval >= 1 else iters


def set_crop(cfg, crop: int) -> float:
    """Train crop ``crop`` x ``crop``; fixed resize scales of train/test pipelines shrink by the
    same factor (relative rescaling and original-size inference stay). Returns the factor."""
    old = cfg.model.data_preprocessor["size"]
    factor = crop / max(old)
    cfg.model.data_preprocessor["size"] = (crop, crop)
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        for dataset in datasets_of(cfg[loader]):
            for step in dataset["pipeline"]:
                if step["type"] == "RandomCrop":
                    step["crop_size"] = (crop, crop)
                elif step["type"] in ("RandomResize", "Resize") and "scale" in step:
                    step["scale"] = tuple(max(1, round(s * factor)) for s in step["scale"])
    return factor


# ------------------------------------------------------------------------------- data
def voc_root(path: str | Path) -> Path:
    """The VOC2012 folder of a VOCdevkit (or the VOC2012 folder itself)."""
    path = Path(path)
    for candidate in (path / "VOC2012", path / "VOCdevkit" / "VOC2012", path):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise DatasetError(f"{path}: no VOC2012 devkit here (expected VOC2012/JPEGImages, "
                       "SegmentationClass and ImageSets/Segmentation/{train,val}.txt)")


def check_voc(root: Path, with_aug: bool) -> None:
    needed = ["SegmentationClass", "ImageSets/Segmentation/train.txt", "ImageSets/Segmentation/val.txt"]
    if with_aug:
        needed += ["SegmentationClassAug", "ImageSets/Segmentation/aug.txt"]
    absent = [n for n in needed if not (root / n).exists()]
    if absent:
        raise DatasetError(f"{root}: missing {', '.join(absent)}")


def voc_has_aug(root: Path) -> bool:
    return (root / "SegmentationClassAug").is_dir() and (root / "ImageSets/Segmentation/aug.txt").is_file()


def check_cityscapes(root: Path) -> None:
    for split in ("train", "val"):
        for folder in (root / "leftImg8bit" / split, root / "gtFine" / split):
            if not folder.is_dir():
                raise DatasetError(f"{root}: missing {folder.relative_to(root)} (Cityscapes layout "
                                   "leftImg8bit/<split>/<city>, gtFine/<split>/<city>)")
        if not next((root / "gtFine" / split).rglob("*_gtFine_labelTrainIds.png"), None):
            raise DatasetError(f"{root / 'gtFine' / split}: no *_gtFine_labelTrainIds.png; make them with "
                               "cityscapesscripts' createTrainIdLabelImgs (CITYSCAPES_DATASET={root})")


def set_data_root(cfg, root: Path) -> None:
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        for dataset in datasets_of(cfg[loader]):
            dataset["data_root"] = str(root)


# ----------------------------------------------------------------------------- harness
def fine_tune_once(cfg) -> dict[str, Any]:
    """One mmengine fine-tuning + validation of a resolved config: the last validation's mIoU
    and what the record says about the run (device, image counts, tensors checked, history)."""
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    runner.train()
    keep = next(h for h in runner.hooks if isinstance(h, KeepValMetrics))
    if "mIoU" not in keep.metrics:
        raise RuntimeError(f"no mIoU from the validation (metrics: {keep.metrics})")
    check = next(h for h in runner.hooks if isinstance(h, BackboneLoadCheck))
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return {"mIoU": keep.metrics["mIoU"], "device": str(next(model.parameters()).device),
            "train_images": len(runner.train_dataloader.dataset), "val_images": len(runner.val_dataloader.dataset),
            "backbone_tensors_checked": check.checked, "val_history": [[i, m.get("mIoU")] for i, m in keep.history]}


def build_parser(dataset: str, doc: str) -> argparse.ArgumentParser:
    protocols = PROTOCOLS[dataset]
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--protocol", choices=sorted(protocols), default=next(iter(protocols)),
                        help="which paper's protocol (config under transfer/configs/mmseg): "
                        + ", ".join(f"{k}={v}" for k, v in protocols.items()))
    parser.add_argument("--config", default=None, help="another mmengine config file instead of --protocol's")
    parser.add_argument("--data", default=None, help="dataset root in its original layout")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes (GPUs); >1 launches torchrun")
    parser.add_argument("--lr", type=float, default=None, help="fine-tuning lr (LEWEL searched it per model)")
    parser.add_argument("--iters", type=int, default=None, help="training iterations (reduced runs)")
    parser.add_argument("--batch-size", type=int, default=None, help="total batch over all processes")
    parser.add_argument("--crop", type=int, default=None, help="square training crop side")
    parser.add_argument("--norm-rescale", type=float, default=None,
                        help="PCD NormRescale factor (default: 0.25 for checkpoints whose method is 'pcd', none "
                             "otherwise; 0 = off; a factor is refused for other methods and at --scale full)")
    parser.add_argument("--workers", type=int, default=None, help="data loader workers per process")
    parser.add_argument("--work-dir", default=None, help="mmengine work dir (default work_dirs/mmseg/...)")
    add_repeats_arg(parser)
    parser.add_argument("--converted", default=None, help=argparse.SUPPRESS)  # set for torchrun children
    if dataset == "VOC12":
        parser.add_argument("--no-aug", action="store_true",
                            help="train on VOC12 train only, without the SBD aug masks (scale reduced)")
    return parser


def _launch_torchrun(args, argv: list[str], converted: str | None) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.num_gpus}",
               sys.argv[0], *argv] + (["--converted", converted] if converted else [])
    raise SystemExit(subprocess.call(command))


def run(dataset: str, doc: str, argv: list[str] | None = None) -> float:
    """Fine-tune and evaluate as ``--protocol`` states; returns the mIoU (rank 0 records it)."""
    from mmengine.config import Config
    from mmengine.dist import is_main_process

    start = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(dataset, doc)
    args = parse_common(parser, argv)
    repeats = resolve_repeats(args, parser)
    if args.scale == "full" and args.norm_rescale is not None:
        parser.error("--scale full applies NormRescale as PCD does (PCD checkpoints only); drop --norm-rescale")
    config = Path(args.config) if args.config else CONFIG_DIR / PROTOCOLS[dataset][args.protocol]
    cfg = Config.fromfile(str(config))
    suite = dict(cfg.get("suite", {}))
    if suite.get("dataset", dataset) != dataset:
        parser.error(f"{config} is a {suite['dataset']} protocol, not {dataset}")
    distributed = "LOCAL_RANK" in os.environ
    world = args.num_gpus
    if world > 1 and torch.cuda.device_count() < world:
        parser.error(f"--num-gpus {world} needs {world} CUDA devices (found {torch.cuda.device_count()}); "
                     "mmengine's distributed launcher is GPU-only")

    # data in its original layout
    reduced: dict[str, Any] = {}
    if dataset == "VOC12":
        root = voc_root(args.data or REPO_ROOT / "data" / "VOCdevkit")
        with_aug = voc_has_aug(root) and not args.no_aug
        if not with_aug:
            if args.scale == "full":
                raise DatasetError(f"{root}: the protocol trains on VOC12 train + SBD aug (10,582 images), but "
                                   "SegmentationClassAug/ + ImageSets/Segmentation/aug.txt are absent; add "
                                   "them or run --no-aug --scale reduced")
            reduced["train_aug"] = "absent: VOC12 train only" if not voc_has_aug(root) else "--no-aug"
            train = cfg.train_dataloader.dataset
            if train.get("type") == "ConcatDataset":  # [VOC12 train, SBD aug] -> VOC12 train
                cfg.train_dataloader.dataset = train["datasets"][0]
        check_voc(root, with_aug)
    else:
        root = Path(args.data or REPO_ROOT / "data" / "cityscapes")
        check_cityscapes(root)
    set_data_root(cfg, root)

    work_dir = Path(args.work_dir or REPO_ROOT / "work_dirs" / "mmseg"
                    / f"{dataset}_{args.protocol}_{time.strftime('%Y%m%d_%H%M%S')}")

    # backbone: convert once (before any torchrun launch) and check it in the built model later
    if args.random_init:
        if not args.arch:
            parser.error("--random-init needs --arch")
        arch, method, ckpt_path, converted = args.arch, args.method or "random_init", None, None
        norm_rescale = None
    else:
        if not args.ckpt:
            parser.error("give --ckpt (or --random-init --arch ...)")
        meta = {k: v for k, v in read_backbone(args.ckpt).items() if k != "state_dict"}
        if args.arch and meta["arch"] != args.arch:
            parser.error(f"{args.ckpt} holds a {meta['arch']}, not {args.arch}")
        arch, method, ckpt_path = meta["arch"], args.method or meta.get("method", "unknown"), str(args.ckpt)
        # PCD's NormRescale for PCD checkpoints (every protocol here is an FCN), never for others
        norm_rescale = decide_norm_rescale(meta.get("method"), args.norm_rescale, c4_or_fcn=True)
        converted = args.converted
        if converted is None:
            work_dir.mkdir(parents=True, exist_ok=True)
            converted = str(convert(args.ckpt, work_dir / "backbone_mmseg.pth", norm_rescale)[0])
    if world > 1 and not distributed:
        _launch_torchrun(args, argv + ([] if args.work_dir else ["--work-dir", str(work_dir)]), converted)

    # model: the checkpoint's arch at the protocol's output stride
    set_backbone(cfg, arch, suite.get("output_stride", 8), converted)
    # the suite's hooks, also for a --config that does not list them
    hooks = [h for h in cfg.get("custom_hooks", []) if h["type"] not in ("BackboneLoadCheck", "KeepValMetrics")]
    cfg.custom_hooks = hooks + [dict(type="BackboneLoadCheck", priority="VERY_LOW", required=converted is not None),
                                dict(type="KeepValMetrics")]
    cfg.custom_imports = dict(imports=["transfer.mmseg_common"], allow_failed_imports=False)

    # overrides (smoke / reduced) and their record
    if args.smoke:
        args.iters = args.iters or SMOKE["iters"]
        args.batch_size = args.batch_size or SMOKE["batch"]
        args.crop = args.crop or SMOKE["crop"]
        args.workers = SMOKE["workers"] if args.workers is None else args.workers
    if args.iters and args.iters != cfg.train_cfg.max_iters:
        reduced["iterations"] = f"{args.iters} instead of {cfg.train_cfg.max_iters}"
        scale_schedule(cfg, args.iters)
    total_batch = suite.get("total_batch_size", 16)
    if args.batch_size and args.batch_size != total_batch:
        reduced["batch_size"] = f"{args.batch_size} instead of {total_batch}"
        total_batch = args.batch_size
    if total_batch % world:
        parser.error(f"total batch {total_batch} is not divisible by --num-gpus {world}")
    cfg.train_dataloader.batch_size = total_batch // world
    protocol_crop = tuple(cfg.model.data_preprocessor["size"])
    if args.crop and (args.crop, args.crop) != protocol_crop:
        reduced["crop"] = f"{args.crop} instead of {protocol_crop[0]} (fixed resize scales x{args.crop / max(protocol_crop):.3g})"
        set_crop(cfg, args.crop)
    if args.lr is not None:
        cfg.optim_wrapper.optimizer.lr = args.lr
    if args.workers is not None:
        for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
            cfg[loader]["num_workers"] = args.workers
            cfg[loader]["persistent_workers"] = args.workers > 0
    if args.scale == "full" and suite.get("train_images"):
        from mmengine.registry import DefaultScope
        from mmseg.registry import DATASETS
        from mmseg.utils import register_all_modules

        register_all_modules(init_default_scope=False)
        with DefaultScope.overwrite_default_scope("mmseg"):
            found = len(DATASETS.build(cfg.train_dataloader.dataset))
        if found != suite["train_images"]:
            raise DatasetError(f"{root}: the protocol trains on {suite['train_images']} images, found {found}")
    if args.scale == "full" and reduced:
        parser.error(f"--scale full, but the run differs from the protocol: {reduced}")
    if args.scale == "reduced" and not reduced:
        parser.error("--scale reduced, but nothing was reduced (use --scale full)")

    # norm: SyncBN as the papers across processes, BN in one process
    norm = "SyncBN"
    if world == 1:
        norm = ("BN (one process; the protocol's SyncBN needs several)" if sync_bn_to_bn(cfg.model)
                else "BN")
    if args.smoke:
        cfg.default_hooks.checkpoint = None
        cfg.default_hooks.logger.interval = 1
    cfg.launcher = "pytorch" if distributed else "none"
    protocol = {
        "protocol": args.protocol if not args.config else str(config), "paper": suite.get("paper"),
        "config": str(config.relative_to(REPO_ROOT) if config.is_relative_to(REPO_ROOT) else config),
        "arch": arch, "mmseg_backbone": cfg.model.backbone["type"],
        "output_stride": suite.get("output_stride"),
        "decode_head": {k: cfg.model.decode_head.get(k) for k in ("type", "channels", "num_convs", "dilation",
                                                                  "concat_input", "dropout_ratio")},
        "auxiliary_head": bool(cfg.model.get("auxiliary_head")), "neck": (cfg.model.get("neck") or {}).get("type"),
        "iterations": cfg.train_cfg.max_iters, "total_batch_size": total_batch, "world_size": world,
        "crop": list(cfg.model.data_preprocessor["size"]), "optimizer": dict(cfg.optim_wrapper.optimizer),
        "lr_schedule": [dict(s) for s in cfg.param_scheduler], "norm": norm, "norm_rescale": norm_rescale,
        "norm_rescale_rule": ("x0.25 for checkpoints with method 'pcd' (PCD seed 002), none otherwise"
                              if args.norm_rescale is None else f"--norm-rescale {args.norm_rescale}"),
        "data": str(root), "sources": list(suite.get("sources", [])), "repeats": repeats,
    }
    if reduced:
        protocol["reduced"] = reduced
    mious = []
    for repeat in range(repeats):
        seed = args.seed + repeat
        run_cfg = copy.deepcopy(cfg)
        run_cfg.work_dir = str(work_dir / f"repeat{repeat}" if repeats > 1 else work_dir)
        run_cfg.randomness = dict(seed=seed)
        result = fine_tune_once(run_cfg)
        mious.append(result.pop("mIoU"))
        device = result.pop("device")
        if is_main_process():
            append_record(method=method, task="sem_seg", dataset=dataset, metric="mIoU", value=mious[-1],
                          scale=args.scale, checkpoint=ckpt_path, device=device,
                          protocol={**protocol, **result, "seed": seed, "repeat": repeat,
                                    "aggregate": "single_run", "work_dir": run_cfg.work_dir},
                          wall_time_s=time.perf_counter() - start, runs_dir=args.results)
            print(f"FCN ({args.protocol}, {arch}, OS {suite.get('output_stride')}) mIoU on {dataset} [{args.scale}], "
                  f"repeat {repeat + 1}/{repeats} (seed {seed}): {mious[-1]:.2f} ({cfg.train_cfg.max_iters} "
                  f"iterations, batch {total_batch}, {result['train_images']} train / {result['val_images']} val "
                  f"images, method {method}, {time.perf_counter() - start:.1f} s)")
    miou = statistics.fmean(mious)
    if repeats > 1 and is_main_process():
        append_record(method=method, task="sem_seg", dataset=dataset, metric="mIoU", value=miou,
                      scale=args.scale, checkpoint=ckpt_path, device=device,
                      protocol={**protocol, "seed": args.seed, "repeat": None, "aggregate": f"mean_of_{repeats}",
                                "values": mious, "std": statistics.stdev(mious)},
                      wall_time_s=time.perf_counter() - start, runs_dir=args.results)
        print(f"mIoU on {dataset} [{args.scale}], mean of {repeats}: {miou:.2f} (runs {mious})")
    return miou
