"""What every harness shares: checkpoint loading and common flags."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from pretrain.checkpoint import load_backbone
from pretrain.data.augment import normalize
from pretrain.data.loading import UInt8Images
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
                        "(default: results/runs of the checkout)")


def add_dataset_args(parser: argparse.ArgumentParser, kinds, kind_help: str = "reader / on-disk layout",
                     name_help: str = "name in the result record (default from --dataset)",
                     split_help: str = "") -> None:
    """The dataset flags of the classification harnesses: --dataset (reader kind), --data,
    --dataset-name, --train-split, --test-split, --max-per-class."""
    parser.add_argument("--dataset", required=True, choices=kinds, help=kind_help)
    parser.add_argument("--data", required=True, help="dataset root (folder or .zip, original layout)")
    parser.add_argument("--dataset-name", default=None, help=name_help)
    parser.add_argument("--train-split", default="train", help=f"train split{split_help}")
    parser.add_argument("--test-split", default="test", help=f"test split{split_help}")
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
