"""What the detectron2 harnesses (coco_det.py, voc_det.py) share.

- ``Res5ROIHeadsExtraNorm``: MoCo's C4 ROI head (res5 stage + one extra norm layer of type
  RESNETS.NORM), here also for BasicBlock ResNets: detectron2's own ``Res5ROIHeads`` always
  builds a Bottleneck res5, which cannot take an R18/R34 checkpoint, so for depth 18/34
  the head is the pretrained network's own res5 (BasicBlocks, 2 or 3 of them, 512 channels).
- ``build_basic_resnet_backbone`` / ``build_basic_resnet_fpn_backbone``: detectron2's ResNet (its
  ``BasicStem``, ``BasicBlock`` stages and ``FPN``) for BasicBlock ResNets whose width is not 64 --
  the smoke scale's narrow ResNet-18 (``resnet18_w16``); detectron2's own builder asserts 64;
- configs (``transfer/configs/detectron2/*.yaml``) resolved into a detectron2 CfgNode with
  the checkpoint's depth, the datasets, the device and (``--smoke``) tiny sizes;
- weights: the suite checkpoint converted (transfer/convert_detectron2.py), placed under
  the exact names of the built model and written as a ``.pth`` that detectron2's
  checkpointer loads *without* name-matching heuristics; after loading every tensor is
  compared with the converted one (``verify_loaded``);
- dataset registration from the original layouts (register_coco_instances, register_pascal_voc);
- one training + evaluation run (DefaultTrainer, COCOEvaluator / PascalVOCDetectionEvaluator)
  under ``detectron2.engine.launch``; rank 0 writes the metrics to ``results.json``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances, register_pascal_voc
from detectron2.engine import DefaultTrainer, hooks, launch
from detectron2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator
from detectron2.layers import get_norm
from detectron2.modeling import BACKBONE_REGISTRY, ROI_HEADS_REGISTRY, build_model
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, ResNet
from detectron2.modeling.roi_heads import Res5ROIHeads
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from pretrain.checkpoint import read_backbone, save_backbone
from pretrain.data.readers import DatasetError
from pretrain.models.resnet import build_backbone, resnet_spec
from transfer.convert_detectron2 import (AUTHOR, decide_norm_rescale, norm_rescale, place_in_model,
                                        suite_to_detectron2, verify_loaded)

CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "detectron2"
RES5_BLOCKS = {18: 2, 34: 3, 50: 3, 101: 3}
NORM_RESCALE_HELP = ("PCD NormRescale factor (default: 0.25 for checkpoints whose method is 'pcd' in C4 "
                     "configs, none otherwise; 0 = off; a factor is refused for other methods and at --scale full)")


# ----------------------------------------------------------------------------- ROI head
class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """Res5 ROI head followed by one extra norm layer (MoCo paper: "an extra BN layer
    following the res5 stage"); BasicBlock res5 for R18/R34."""

    @classmethod
    def _build_res5_block(cls, cfg):
        depth = cfg.MODEL.RESNETS.DEPTH
        if depth in (18, 34):
            out_channels = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS * 8
            blocks = ResNet.make_stage(BasicBlock, RES5_BLOCKS[depth], stride_per_block=[2] + [1] * (RES5_BLOCKS[depth] - 1),
                                       in_channels=out_channels // 2, out_channels=out_channels,
                                       norm=cfg.MODEL.RESNETS.NORM)
            seq = torch.nn.Sequential(*blocks)
        else:
            seq, out_channels = super()._build_res5_block(cfg)
        seq.add_module("norm", get_norm(cfg.MODEL.RESNETS.NORM, out_channels))
        return seq, out_channels


if "Res5ROIHeadsExtraNorm" not in ROI_HEADS_REGISTRY:
    ROI_HEADS_REGISTRY.register(Res5ROIHeadsExtraNorm)


# ----------------------------------------------------------------------------- narrow backbones
def build_basic_resnet_backbone(cfg, input_shape):
    """A BasicBlock ResNet of any RES2_OUT_CHANNELS (stem STEM_OUT_CHANNELS), from detectron2's
    own parts; the stage layout and freezing follow detectron2's ``build_resnet_backbone``."""
    r = cfg.MODEL.RESNETS
    blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}[r.DEPTH]
    stem = BasicStem(in_channels=input_shape.channels, out_channels=r.STEM_OUT_CHANNELS, norm=r.NORM)
    stages, in_channels, out_channels = [], r.STEM_OUT_CHANNELS, r.RES2_OUT_CHANNELS
    for index, count in enumerate(blocks):
        stages.append(ResNet.make_stage(BasicBlock, count, stride_per_block=[1 if index == 0 else 2] + [1] * (count - 1),
                                        in_channels=in_channels, out_channels=out_channels, norm=r.NORM))
        in_channels, out_channels = out_channels, out_channels * 2
    return ResNet(stem, stages, out_features=r.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)


def build_basic_resnet_fpn_backbone(cfg, input_shape):
    """``build_basic_resnet_backbone`` under detectron2's FPN, as ``build_resnet_fpn_backbone``."""
    return FPN(bottom_up=build_basic_resnet_backbone(cfg, input_shape), in_features=cfg.MODEL.FPN.IN_FEATURES,
               out_channels=cfg.MODEL.FPN.OUT_CHANNELS, norm=cfg.MODEL.FPN.NORM, top_block=LastLevelMaxPool(),
               fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


for _builder in (build_basic_resnet_backbone, build_basic_resnet_fpn_backbone):
    if _builder.__name__ not in BACKBONE_REGISTRY:
        BACKBONE_REGISTRY.register(_builder)


# ----------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DatasetSpec:
    """A dataset to register in every worker: kind 'coco' (json, image_root) or 'voc'
    (VOC<year> folder, split, year as the evaluator's AP definition)."""
    kind: str
    name: str
    root: str
    split: str
    json_file: str = ""
    year: int = 2007

    def register(self) -> None:
        if self.name in DatasetCatalog.list():
            DatasetCatalog.remove(self.name)
            MetadataCatalog.remove(self.name)
        if self.kind == "coco":
            register_coco_instances(self.name, {}, self.json_file, self.root)
        else:
            register_pascal_voc(self.name, self.root, self.split, self.year)


def coco_spec(root: str | Path, split: str) -> DatasetSpec:
    """COCO in its original layout: annotations/instances_<split>.json + <split>/ images."""
    root = Path(root)
    json_file, images = root / "annotations" / f"instances_{split}.json", root / split
    for path in (json_file, images):
        if not path.exists():
            raise DatasetError(f"COCO {split}: {path} not found (expected annotations/instances_{split}.json "
                               f"and {split}/ under {root})")
    return DatasetSpec("coco", f"ssl_repro_coco_{split}", str(images), split, json_file=str(json_file))


def voc_spec(root: str | Path, year_split: str, metric_year: int | None = None) -> DatasetSpec:
    """``2007/trainval`` under a VOCdevkit root (VOC2007/, VOC2012/ with Annotations,
    JPEGImages, ImageSets/Main/<split>.txt)."""
    year, _, split = year_split.partition("/")
    folder = Path(root) / f"VOC{year}"
    listing = folder / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"VOC {year_split}: {listing} not found (root {root} must hold VOC{year}/)")
    return DatasetSpec("voc", f"ssl_repro_voc_{year}_{split}", str(folder), split,
                       year=int(metric_year or year))


def coco_num_classes(spec: DatasetSpec) -> int:
    with open(spec.json_file) as f:
        return len(json.load(f)["categories"])


# ----------------------------------------------------------------------------- config
def config_path(name: str) -> Path:
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("Base"))
        raise SystemExit(f"no detectron2 config {name!r} (known: {', '.join(known)})")
    return path


SMOKE = {  # tiny images, a few iterations, every prediction kept so AP is a number
    "INPUT.MIN_SIZE_TRAIN": (64,), "INPUT.MAX_SIZE_TRAIN": 112, "INPUT.MIN_SIZE_TEST": 64,
    "INPUT.MAX_SIZE_TEST": 112, "SOLVER.IMS_PER_BATCH": 2, "SOLVER.MAX_ITER": 3, "SOLVER.STEPS": (),
    "SOLVER.WARMUP_ITERS": 1, "SOLVER.BASE_LR": 0.002, "SOLVER.CHECKPOINT_PERIOD": 1000000,
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN": 100, "MODEL.RPN.POST_NMS_TOPK_TRAIN": 50,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 100, "MODEL.RPN.POST_NMS_TOPK_TEST": 10,
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE": 32, "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 16,
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": 0.0, "TEST.DETECTIONS_PER_IMAGE": 10,
    "TEST.PRECISE_BN.NUM_ITER": 1, "DATALOADER.NUM_WORKERS": 0,
}


def build_cfg(config: str, arch: str, *, train: list[DatasetSpec], test: DatasetSpec, num_classes: int,
              device: str, num_gpus: int, out_dir: Path, smoke: bool, max_iter: int | None,
              opts: list[str], seed: int) -> tuple[CfgNode, dict[str, Any]]:
    """The resolved detectron2 config and what was changed from the YAML (for the record)."""
    try:
        depth, width, channels = resnet_spec(arch)
    except ValueError as err:
        raise SystemExit(f"detectron2 transfer: {err}") from err
    cfg = get_cfg()
    cfg.merge_from_file(str(config_path(config)))
    changes: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if node[leaf] != value:
            changes[key] = list(value) if isinstance(value, tuple) else value
            node[leaf] = value

    put("MODEL.RESNETS.DEPTH", depth)
    put("MODEL.RESNETS.STEM_OUT_CHANNELS", width)
    put("MODEL.RESNETS.RES2_OUT_CHANNELS", channels[0])
    if depth >= 50:
        put("MODEL.RESNETS.WIDTH_PER_GROUP", width // cfg.MODEL.RESNETS.NUM_GROUPS)
    if depth < 50:
        if cfg.MODEL.RESNETS.RES5_DILATION != 1:
            raise SystemExit(f"config {config}: detectron2 has no dilated res5 for BasicBlock ResNets ({arch})")
        if width != 64:  # detectron2's builder takes 64 channels only
            names = {"build_resnet_backbone": "build_basic_resnet_backbone",
                     "build_resnet_fpn_backbone": "build_basic_resnet_fpn_backbone"}
            if cfg.MODEL.BACKBONE.NAME not in names:
                raise SystemExit(f"config {config}: no {cfg.MODEL.BACKBONE.NAME} for the {width}-channel {arch}")
            put("MODEL.BACKBONE.NAME", names[cfg.MODEL.BACKBONE.NAME])
    put("MODEL.ROI_HEADS.NUM_CLASSES", num_classes)
    cfg.DATASETS.TRAIN = tuple(s.name for s in train)
    cfg.DATASETS.TEST = (test.name,)
    put("MODEL.DEVICE", device)
    if device == "cpu" or num_gpus == 1:
        # one process: SyncBN is plain BN (torch falls back to it); say so explicitly
        for key in ("MODEL.RESNETS.NORM", "MODEL.FPN.NORM", "MODEL.ROI_BOX_HEAD.NORM", "MODEL.ROI_MASK_HEAD.NORM"):
            node = cfg
            for p in key.split("."):
                node = node[p]
            if node in ("SyncBN", "naiveSyncBN"):
                put(key, "BN")
    if smoke:
        for key, value in SMOKE.items():
            put(key, value)
    if max_iter is not None:
        put("SOLVER.MAX_ITER", max_iter)
        steps = tuple(s for s in cfg.SOLVER.STEPS if s < max_iter)
        put("SOLVER.STEPS", steps)
    if opts:
        cfg.merge_from_list(opts)
        changes.update(zip(opts[::2], opts[1::2]))
    cfg.OUTPUT_DIR = str(out_dir)
    cfg.SEED = seed
    cfg.freeze()
    return cfg, changes


# ----------------------------------------------------------------------------- weights
def is_c4(cfg: CfgNode) -> bool:
    """A C4 detector: the res5 stage is the ROI head (MoCo's ``Res5ROIHeadsExtraNorm``)."""
    return cfg.MODEL.ROI_HEADS.NAME.startswith("Res5ROIHeads")


def prepare_weights(ckpt: str | Path, cfg: CfgNode, out_dir: Path, norm_rescale_request: float | None
                    ) -> tuple[Path, dict[str, Any]]:
    """Convert the checkpoint, apply NormRescale as the checkpoint's method decides
    (``decide_norm_rescale``: PCD checkpoints in C4 detectors; ``meta["norm_rescale"]``), place
    every tensor under the exact name of the model ``cfg`` builds, write
    ``<out_dir>/backbone_detectron2.pth`` (no heuristics) and return it."""
    named, meta = suite_to_detectron2(ckpt)
    factor = decide_norm_rescale(meta.get("method"), norm_rescale_request, c4_or_fcn=is_c4(cfg))
    if factor:
        named = norm_rescale(named, factor)
    meta = {**meta, "norm_rescale": factor}
    probe = cfg.clone()
    probe.defrost()
    probe.MODEL.DEVICE = "cpu"
    model_state = build_model(probe).state_dict()
    exact = place_in_model(named, model_state)
    path = out_dir / "backbone_detectron2.pth"
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": exact, "__author__": AUTHOR, "matching_heuristics": False}, path)
    meta = {**meta, "tensors_loaded": len(exact)}
    return path, meta


def resolve_checkpoint(args, out_dir: Path) -> tuple[str, str | None, str]:
    """(checkpoint path, method or None, arch) from the common flags; ``--random-init``
    saves a seeded random ImageNet-stem backbone into ``out_dir`` (the baseline)."""
    if args.random_init:
        if not args.arch:
            raise SystemExit("--random-init needs --arch")
        torch.manual_seed(args.seed)
        path = save_backbone(out_dir / "random_init.pth", build_backbone(args.arch, stem="imagenet"),
                             method="random_init")
        return str(path), args.method or "random_init", args.arch
    if not args.ckpt:
        raise SystemExit("give --ckpt (or --random-init --arch ...)")
    payload = read_backbone(args.ckpt)
    for key in ("arch", "stem"):
        wanted = getattr(args, key)
        if wanted and payload[key] != wanted:
            raise SystemExit(f"{args.ckpt}: checkpoint {key} is {payload[key]!r}, but --{key} {wanted!r} was requested")
    return str(args.ckpt), args.method, payload["arch"]


def run_protocol(cfg: CfgNode, config: str, arch: str, changes: dict, args, meta: dict, result: dict) -> dict:
    """What a detection record says about how it was made."""
    return {"config": config, "arch": arch, "changes": changes, "norm_rescale": meta.get("norm_rescale"),
            "norm_rescale_rule": "x0.25 for checkpoints with method 'pcd' in C4 detectors (PCD seed 002), "
                                 "none otherwise" if args.norm_rescale is None else f"--norm-rescale {args.norm_rescale}",
            "checkpoint_method": meta.get("method"),
            "max_iter": cfg.SOLVER.MAX_ITER, "ims_per_batch": cfg.SOLVER.IMS_PER_BATCH,
            "base_lr": cfg.SOLVER.BASE_LR, "norm": cfg.MODEL.RESNETS.NORM, "num_gpus": args.num_gpus,
            "seed": args.seed, "data": str(args.data), "imported_layout": meta.get("imported", {}).get("layout"),
            "verified_tensors": result["verified_tensors"], "output_dir": cfg.OUTPUT_DIR}


def check_scale(args, parser) -> None:
    if args.scale == "reduced" and args.max_iter is None and not args.opts:
        parser.error("--scale reduced: say what is reduced (--max-iter or config KEY VALUE pairs)")
    if args.scale == "full" and args.max_iter is not None:
        parser.error("--scale full runs the paper's schedule; drop --max-iter")
    if args.scale == "full" and args.norm_rescale is not None:
        parser.error("--scale full applies NormRescale as the papers do (PCD checkpoints in C4 detectors); "
                     "drop --norm-rescale")


# ----------------------------------------------------------------------------- training
class Trainer(DefaultTrainer):
    """DefaultTrainer whose evaluator follows the dataset kind; evaluation is run once,
    explicitly, after training (no EvalHook)."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if "_voc_" in dataset_name:
            return PascalVOCDetectionEvaluator(dataset_name)
        return COCOEvaluator(dataset_name, output_dir=str(Path(cfg.OUTPUT_DIR) / "inference"),
                             use_fast_impl=False)  # the official pycocotools COCOeval

    def build_hooks(self):
        return [h for h in super().build_hooks() if not isinstance(h, hooks.EvalHook)]


def _worker(cfg: CfgNode, specs: list[DatasetSpec], weights: str) -> None:
    rank = comm.get_rank()
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=rank, name="fvcore")
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=rank)
    seed_all_rng(cfg.SEED + rank)
    for spec in specs:
        spec.register()
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = weights
    cfg.freeze()
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    expected = torch.load(weights, map_location="cpu", weights_only=True)["model"]
    checked = verify_loaded(trainer.model, expected)
    logging.getLogger("detectron2").info("verified %d backbone tensors loaded with identical values", checked)
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start
    results = Trainer.test(cfg, trainer.model)  # one test set: {task: {metric: value}}
    if comm.is_main_process():
        out = {task: {k: float(v) for k, v in metrics.items()} for task, metrics in results.items()}
        (Path(cfg.OUTPUT_DIR) / "results.json").write_text(
            json.dumps({"results": out, "train_s": train_s, "verified_tensors": checked}, indent=1))


def train_and_evaluate(cfg: CfgNode, specs: list[DatasetSpec], weights: Path, num_gpus: int) -> dict[str, Any]:
    """Fine-tune and evaluate under ``launch`` (``num_gpus`` processes); rank 0's
    ``{"results": {task: {metric: value}}, "train_s", "verified_tensors"}``."""
    if cfg.MODEL.DEVICE == "cpu" and num_gpus != 1:
        raise SystemExit("on CPU detectron2 runs one process: use --num-gpus 1")
    result_file = Path(cfg.OUTPUT_DIR) / "results.json"
    result_file.unlink(missing_ok=True)
    launch(_worker, num_gpus, num_machines=1, machine_rank=0, dist_url="auto",
           args=(cfg, specs, str(weights)))
    if not result_file.is_file():
        raise RuntimeError(f"training ended without {result_file}")
    return json.loads(result_file.read_text())

