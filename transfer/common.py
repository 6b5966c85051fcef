"""What every harness shares: checkpoint loading, common flags and the one way to record a result."""
from __future__ import annotations

import argparse
import functools
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from evaluation import records
from pretrain.checkpoint import CheckpointError, load_backbone, read_backbone
from pretrain.data.augment import normalize
from pretrain.data.loading import UInt8Images, default_test_split
from pretrain.models.resnet import build_backbone


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", help="checkpoint: the suite's backbone.pth / checkpoint.pth, "
                        "or a torchvision ResNet state_dict")
    parser.add_argument("--random-init", action="store_true",
                        help="evaluate a randomly initialised backbone instead (baseline); needs --arch")
    parser.add_argument("--arch", default=None, help="architecture for --random-init, or a check on --ckpt")
    parser.add_argument("--stem", default=None, choices=["imagenet", "cifar"],
                        help="stem for --random-init, or a check on --ckpt")
    parser.add_argument("--method", default=None, help="method name for the result record "
                        "(default: the checkpoint's metadata)")
    parser.add_argument("--scale", choices=["smoke", "reduced", "full"], default=None,
                        help="how the run relates to the paper's protocol (recorded with every number); "
                        "required unless --smoke")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny CI run: the harness's smoke settings, records at scale 'smoke'")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", default=None, help="runs folder for result records "
                        "(default: $SSL_REPRO_RESULTS/runs, else results/local/runs of the checkout; "
                        "results/runs holds the committed reference records)")


def add_dataset_args(parser: argparse.ArgumentParser, kinds, kind_help: str = "reader / on-disk layout",
                     name_help: str = "name in the result record (default from --dataset)",
                     split_help: str = "") -> None:
    """The dataset flags of the classification harnesses: --dataset (reader kind), --data,
    --dataset-name, --train-split, --test-split, --max-per-class."""
    parser.add_argument("--dataset", required=True, choices=kinds, help=kind_help)
    parser.add_argument("--data", required=True, help="dataset root (folder or .zip, original layout)")
    parser.add_argument("--dataset-name", default=None, help=name_help)
    parser.add_argument("--train-split", default="train", help=f"train split{split_help}")
    parser.add_argument("--test-split", default=None,
                        help=f"test split{split_help} (default: the dataset's evaluation split -- CIFAR/STL-10 "
                             "test, Tiny-ImageNet val, ImageFolder whichever of val/test exists)")
    parser.add_argument("--max-per-class", type=int, default=None,
                        help="subset: first N images per class of each split (ImageFolder layouts)")


def parse_common(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args`` plus the checks every harness shares: ``--smoke`` means scale
    ``smoke``; without it ``--scale`` must be given."""
    args = parser.parse_args(argv)
    if args.smoke:
        if args.scale not in (None, "smoke"):
            parser.error(f"--smoke contradicts --scale {args.scale}")
        args.scale = "smoke"
    elif args.scale is None:
        parser.error("say the scale of this run: --scale smoke|reduced|full (or --smoke)")
    if getattr(args, "test_split", "") is None and getattr(args, "dataset", None):
        args.test_split = default_test_split(args.dataset, args.data)
    return args


def backbone_from_args(args: argparse.Namespace, output_stride: int = 32) -> tuple[nn.Module, str, str | None]:
    """(backbone, method name, checkpoint path or None) as the flags ask; ``output_stride``
    16 or 8 dilates the last stages (``pretrain.models.resnet``)."""
    if args.random_init:
        if not args.arch:
            raise SystemExit("--random-init needs --arch")
        torch.manual_seed(args.seed)
        return (build_backbone(args.arch, stem=args.stem or "imagenet", output_stride=output_stride),
                args.method or "random_init", None)
    if not args.ckpt:
        raise SystemExit("give --ckpt (or --random-init --arch ...)")
    model, meta = load_backbone(args.ckpt, arch=args.arch, stem=args.stem, output_stride=output_stride)
    return model, args.method or meta.get("method", "unknown"), str(Path(args.ckpt))


@torch.no_grad()
def dense_features(backbone: nn.Module, images: torch.Tensor, stage: str, device: str) -> torch.Tensor:
    """Float32 feature maps of ``stage`` (C2..C5) for uint8 images ``(N, 3, H, W)``: eval mode,
    ImageNet normalisation, channels_last, bf16 autocast on CUDA, each position's vector
    L2-normalised over channels (in fp32)."""
    if not hasattr(backbone, "stage_channels"):
        raise SystemExit(f"{getattr(backbone, 'arch', type(backbone).__name__)}: dense stage maps need a ResNet backbone")
    backbone.eval()
    x = normalize(images.to(device, non_blocking=True)).contiguous(memory_format=torch.channels_last)
    kind = torch.device(device).type
    with torch.autocast(kind, dtype=torch.bfloat16, enabled=kind == "cuda"):
        maps = backbone.forward_stages(x, last=stage)[stage]
    return nn.functional.normalize(maps.float(), dim=1)


class ResizeCenterCrop(Dataset):
    """(uint8 CHW tensor, label) of a reader's (PIL image, label) items: shorter side resized
    to ``resize`` (bicubic), then the central ``crop`` x ``crop`` -- torchvision's
    Resize(resize) + CenterCrop(crop), the evaluation transform of the linear/SVM protocols."""

    def __init__(self, reader, resize: int, crop: int):
        if crop > resize:
            raise ValueError(f"centre crop {crop} is larger than the resize side {resize}")
        self.images, self.crop = UInt8Images(reader, resize), crop
        self.offset = (resize - crop) // 2

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.images[index]
        o, c = self.offset, self.crop
        return image[:, o:o + c, o:o + c], label


class ResizeSquare(Dataset):
    """(uint8 CHW tensor, label) of a reader's (PIL image, label) items: the whole image resized to
    ``size`` x ``size`` (aspect ratio not kept, no crop) by torchvision's ``Resize((size, size))``
    with its default bilinear interpolation -- Revisiting App. A.2's transfer transform ("resize all
    images to 224x224 pixels using the Resize transform in PyTorch", no augmentation)."""

    def __init__(self, reader, size: int):
        self.reader, self.size = reader, size

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from torchvision.transforms import functional as TF

        image, label = self.reader[index]
        image = TF.resize(image.convert("RGB"), [self.size, self.size], interpolation=TF.InterpolationMode.BILINEAR)
        return TF.pil_to_tensor(image), label


# The papers average their fine-tuning results over 5 runs: MoCo's detection README ("means of
# 5 trials", VOC), PCD seed 002 Sec. 4.1 ("average AP50 and AP over 5 runs" VOC; "average IoU ...
# over 5 runs" Cityscapes), DenseCL/LEWEL VOC segmentation ("averaged over 5 trials",
# protocols.md 2a), MoCo App. A / Revisiting ("mean of 5 trials" / "average of 5 runs", 2b).
PAPER_REPEATS = 5


def add_repeats_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"independent fine-tunings (seeds seed, seed+1, ...), each recorded, and their mean "
                             f"recorded as aggregate mean_of_N (default: the papers' {PAPER_REPEATS} at --scale "
                             "full, else 1)")


def resolve_repeats(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``--repeats``, defaulting to the papers' 5 at scale ``full`` and 1 otherwise; a full run
    with fewer than 5 repeats is an error (its mean would not be the papers' statistic)."""
    repeats = args.repeats if args.repeats is not None else (PAPER_REPEATS if args.scale == "full" else 1)
    if repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.scale == "full" and repeats < PAPER_REPEATS:
        parser.error(f"--scale full reports the mean of the papers' {PAPER_REPEATS} runs; "
                     f"--repeats {repeats} is a reduced run")
    args.repeats = repeats
    return repeats


# --------------------------------------------------------------------------- result records
def append_record(*, checkpoint: str | os.PathLike | None = None, protocol: dict[str, Any] | None = None,
                  label: str | None = None, **fields) -> records.ResultRecord:
    """:func:`evaluation.records.append_record` plus what lets the collector place the number:

    - ``protocol["reproduces"]``: the published rows the checkpoint's pretraining config stands
      behind (``reproduces`` of its ``backbone.pth`` metadata, written by the engine); a harness
      that names rows itself keeps its own;
    - ``protocol["pretrain_scale"]``: the pretraining run's scale (a ``full`` evaluation of a
      ``smoke`` checkpoint is no reproduction; the collector takes the lower of the two);
    - ``protocol["protocol_label"]``: the evaluation protocol in the published tables' words
      (e.g. ``"Mask R-CNN R50-FPN; 1x schedule"``), ``label`` or :func:`protocol_label`'s.

    Every harness records through this function (one code path for all of them).
    """
    protocol = dict(protocol or {})
    meta = checkpoint_metadata(checkpoint)
    if "reproduces" not in protocol:
        protocol["reproduces"] = meta.get("reproduces", [])
    if meta.get("scale"):
        protocol.setdefault("pretrain_scale", meta["scale"])
    protocol["protocol_label"] = label if label is not None else protocol_label(fields["task"], protocol)
    return records.append_record(checkpoint=checkpoint, protocol=protocol, **fields)


def checkpoint_metadata(checkpoint: str | os.PathLike | None) -> dict[str, Any]:
    """The backbone metadata of a checkpoint (no weights); ``{}`` for none (random init)."""
    if not checkpoint or not Path(checkpoint).is_file():
        return {}
    stat = Path(checkpoint).stat()
    return _metadata(str(Path(checkpoint).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _metadata(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    try:
        payload = read_backbone(path)
    except CheckpointError:
        return {}  # a weights file the harness converted itself (e.g. detectron2's): nothing to carry
    return {k: v for k, v in payload.items() if k != "state_dict"}


_SCHEDULE = re.compile(r"_(\d+x|\d+k)(?:_|$)")


def protocol_label(task: str, protocol: dict[str, Any]) -> str:
    """The evaluation protocol of a record, spelled as the published ``variant`` column spells
    it, from the settings the harness records (``""`` where the tables name no protocol).

    Detection (``protocol["config"]``, e.g. ``coco_FPN_1x``, ``voc_C4_24k``, ``voc07_C4_9k``):
    "Mask R-CNN R50-FPN; 1x schedule", "Faster R-CNN R50-C4; trainval07+12 24k iter";
    segmentation: "FCN (<suite> protocol); OS <n>" (+ "atrous head" for PCD's); low-shot SVM:
    "k=<k>". The collector compares only the facets a published variant names (detector, C4/FPN/
    DC5, schedule, train set, OS, head, k), so a C4 record never fills an FPN cell.
    """
    if task in ("det_coco", "inst_seg_coco", "det_voc"):
        config = str(protocol.get("config", ""))
        neck = next((n for n in ("DC5", "FPN", "C4") if n in config.split("_")), "")
        depth = {"resnet18": "R18", "resnet34": "R34", "resnet50": "R50", "resnet101": "R101"}.get(
            str(protocol.get("arch", "")), "")
        schedule = _SCHEDULE.search(config)
        parts = [f"{'Faster' if task == 'det_voc' else 'Mask'} R-CNN {'-'.join(p for p in (depth, neck) if p)}"]
        if schedule and schedule.group(1).endswith("x"):
            parts.append(f"{schedule.group(1)} schedule")
        elif schedule:
            train = protocol.get("train") or []
            sets = "trainval07+12" if any("2012" in str(t) for t in train) else "trainval07"
            parts.append(f"{sets} {schedule.group(1)} iter")
        return "; ".join(parts)
    if task == "sem_seg":
        suite = str(protocol.get("protocol", ""))
        head = " (atrous head)" if suite == "pcd" else ""
        stride = protocol.get("output_stride")
        return f"FCN{head} ({suite} protocol)" + (f"; OS {stride}" if stride else "")
    if task == "segment_retrieval" and "classes" in protocol:
        return f"{protocol['classes']} classes"
    if task == "low_shot" or (task == "ablation" and "k" in protocol):
        return f"k={protocol['k']}" if "k" in protocol else ""
    return ""
