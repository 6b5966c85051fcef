"""Linear evaluation: a linear classifier trained on a frozen backbone.

    python transfer/linear.py --ckpt runs/x/backbone.pth --recipe ressl_small \\
        --dataset cifar10 --data cifar-10-batches-py --scale full
    python transfer/linear.py --ckpt runs/x/backbone.pth --recipe simclr_imagenet \\
        --dataset imagefolder --data /data/imagenet --test-split val --scale full
    python transfer/linear.py --smoke --ckpt runs/smoke/mocov2/backbone.pth \\
        --dataset imagefolder --data data/synthetic/imagefolder --test-split val

The backbone is frozen: its weights get no gradient and it stays in eval mode, so the BN
running statistics never change. A linear layer on the global-pooled features (init
N(0, 0.01), bias 0, as ReSSL's linear_eval.py) is trained with SGD + cross-entropy.

Train views (``--train-crop whole``, the default): torchvision's RandomResizedCrop(``--crop``,
``--crop-scale``; bilinear) over the whole decoded image, aspect ratio preserved, + horizontal
flip -- the papers' transform (ReSSL@4d67daa linear_eval.py: RRC224 + flip). The crop box is
drawn per sample from (seed, epoch, index) with torchvision's sampling rule
(``pretrain.data.augment.sample_params``) and cut and resized by torchvision on the CPU in the
loader, where the image is decoded (images differ in size, so they cannot be batched before
the crop). ``--train-crop centre-square`` is the faster device-side path: the images are
loaded as their centre square at ``--load-size`` and the crops are made in batches on the
device; for non-square images that crop never sees the image outside the centre square, so
such a run is recorded as ``reduced`` (never ``full``). Test: resize ``--resize`` + centre
crop ``--crop``. ``--precompute`` drops the augmentation: the features of the train images
(test transform) are computed once and the linear layer is trained on them -- much faster
on a CPU, but not the papers' protocol (recorded, and such a run cannot be ``full``).

Recipes (``--recipe``; every value can be overridden by its flag, overrides are recorded):

  ressl_small      100 ep, SGD lr 10, momentum 0.9, wd 0, x0.1 at 60 and 80   ReSSL (seed 003, Sec. 4)
  ressl_imagenet   100 ep, lr 0.3, per-iteration cosine, wd 0, bs 256          ReSSL code linear_eval.py
  simclr_imagenet  90 ep, Nesterov 0.9, lr 0.1 x bs/256, cosine, wd 0          ReSSL TPAMI (seed 003, Table 7)
  lewel            50 ep, bs 256, lr 0.4, x0.1 at 30 and 40, wd 0              LEWEL_B (seed 001, Sec. 4.1)
  cgh_small        100 ep, bs 256, lr 3.0, cosine, wd 0                        CGH (seed 000, Sec. 4.1)
  cgh_imagenet     100 ep, bs 256, lr 0.3, cosine, wd 0                        CGH (seed 000) + its code
  moco_imagenet    100 ep, lr 30, wd 1e-4, x0.1 at 60 and 80                   Revisiting (seed 004, App. A.2)

The final-epoch accuracy is recorded (task ``linear_cls``: top1, and top5 when there are
more than 5 classes). ReSSL's linear_eval.py printed the best accuracy over epochs;
``--eval-every N`` also records the accuracy every N epochs and their best in the protocol,
but the reported value stays the final epoch's.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.data.augment import ViewSpec, make_views, normalize, sample_params
from pretrain.data.loading import (DATASET_KINDS, DATASET_NAMES, UInt8Images, batch_loader, epoch_batches,
                                   open_dataset)
from pretrain.features import REPRESENTATIONS, extract_features, representation
from pretrain.schedules import cosine_with_warmup
from transfer.common import ResizeCenterCrop, add_common_args, add_dataset_args, backbone_from_args, parse_common

SMOKE_EPOCHS = 2


@dataclass(frozen=True)
class Recipe:
    """One paper's classifier-training protocol. ``lr`` is the head's rate; ``backbone_lr``
    0 means a frozen backbone (eval mode, no gradient), > 0 fine-tunes it (train mode)."""
    epochs: int
    lr: float
    schedule: str                        # "cosine" (per iteration, to 0) or "step" (per epoch)
    milestones: tuple[int, ...] = ()     # epochs at which a "step" schedule multiplies by gamma
    gamma: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    batch_size: int = 256
    lr_scales_with_batch: bool = False   # lr = lr x batch_size / 256
    backbone_lr: float = 0.0
    crop: int = 224                      # train view side and test centre-crop side
    resize: int = 256                    # test: shorter side resized to this before the crop
    crop_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop area range (torchvision default)
    paper_reports: str = "final epoch"
    source: str = ""

    def head_lr(self) -> float:
        return self.lr * self.batch_size / 256 if self.lr_scales_with_batch else self.lr


RECIPES = {
    "ressl_small": Recipe(
        epochs=100, lr=10.0, schedule="step", milestones=(60, 80), crop=32, resize=32,
        source="ReSSL seed 003 Sec. 4 'Evaluation Protocol': 100 epochs, lr 10, no weight decay, momentum 0.9, "
               "x0.1 at epochs 60 and 80, centre crop at test; batch size and train augmentation not stated "
               "(256, RandomResizedCrop + flip assumed); images at 32 px (64 px for Tiny-ImageNet: --crop/--resize)"),
    "ressl_imagenet": Recipe(
        epochs=100, lr=0.3, schedule="cosine", paper_reports="best top-1 over epochs (linear_eval.py prints the best)",
        source="ReSSL@4d67daa linear_eval.py (protocols.md sec. 7): 100 ep, SGD lr 0.3, momentum 0.9, wd 0, "
               "batch 32x8, per-iteration cosine, fc init N(0,0.01), RRC224+flip / Resize256+CC224, eval mode"),
    "simclr_imagenet": Recipe(
        epochs=90, lr=0.1, lr_scales_with_batch=True, nesterov=True, schedule="cosine",
        source="ReSSL TPAMI seed 003 'Linear Evaluation' (SimCLR protocol): 90 epochs, SGD Nesterov momentum 0.9, "
               "wd 0, lr 0.1 x BatchSize/256, cosine; batch size not stated (256 assumed)"),
    "lewel": Recipe(
        epochs=50, lr=0.4, schedule="step", milestones=(30, 40),
        source="LEWEL seed 001 Sec. 4.1 (LEWEL_B): 50 epochs, batch 256, wd 0, SGD with momentum, lr 0.4 "
               "x0.1 at epochs 30 and 40 (= LEWEL@4ee47eb srun_lin.sh)"),
    "cgh_small": Recipe(
        epochs=100, lr=3.0, schedule="cosine", crop=64, resize=64,
        source="CGH seed 000 Sec. 4.1 (Tiny-ImageNet/STL-10): 100 epochs, batch 256, lr 3.0, no wd, "
               "momentum 0.9, cosine; image side 64 assumed (Tiny-ImageNet; --crop/--resize for others)"),
    "cgh_imagenet": Recipe(
        epochs=100, lr=0.3, schedule="cosine",
        source="CGH seed 000 Sec. 4.1 (IN-1K, 'as in ReSSL'): lr 0.3, no wd, momentum 0.9, cosine; 100 epochs, "
               "batch 256 from CGH code (protocols.md sec. 7)"),
    "moco_imagenet": Recipe(
        epochs=100, lr=30.0, schedule="step", milestones=(60, 80), weight_decay=1e-4,
        source="Revisiting seed 004 App. A.2 (He et al. protocol): 100 epochs, SGD momentum 0.9, lr 30, "
               "wd 1e-4, x0.1 after epochs 60 and 80; batch size not stated (256 as MoCo)"),
}


# --------------------------------------------------------------------------- schedule / metrics


def lr_multipliers(recipe: Recipe, steps_per_epoch: int) -> np.ndarray:
    """Per-step factor on each parameter group's base lr (index = global step)."""
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "cosine":
        return cosine_with_warmup(1.0, total)
    if recipe.schedule == "step":
        epoch = np.arange(total) // steps_per_epoch
        return recipe.gamma ** np.sum(epoch[:, None] >= np.asarray(recipe.milestones or [total])[None], axis=1)
    raise ValueError(f"unknown lr schedule {recipe.schedule!r}; expected 'cosine' or 'step'")


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Percentage of rows whose label is among the k highest logits."""
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return 100.0 * (top == labels[:, None]).any(1).float().mean().item()


# --------------------------------------------------------------------------- training


def linear_head(num_features: int, num_classes: int, seed: int) -> nn.Linear:
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(num_features, num_classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.01, generator=generator)
        head.bias.zero_()
    return head


def train_view_spec(recipe: Recipe) -> ViewSpec:
    """RandomResizedCrop(crop, scale) + horizontal flip, nothing else."""
    return ViewSpec(size=recipe.crop, scale=tuple(recipe.crop_scale), flip_p=0.5, jitter_p=0.0, gray_p=0.0,
                    blur_p=0.0, solarize_p=0.0)


class RandomResizedCropImages(Dataset):
    """(uint8 CHW crop, label) of a reader's (PIL image, label) items: torchvision's
    RandomResizedCrop(spec.size, spec.scale, spec.ratio) over the whole image (bilinear,
    antialiased, as torchvision on PIL images) + horizontal flip with probability
    ``spec.flip_p``. The box and the flip are drawn by ``sample_params`` (torchvision's rule)
    from a generator seeded by (seed, epoch, index), so an epoch's crops do not depend on the
    loader's workers; call ``set_epoch`` before each epoch."""

    def __init__(self, reader, spec: ViewSpec, seed: int):
        self.reader, self.spec, self.seed, self.epoch = reader, spec, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.reader[index]
        image = image.convert("RGB")
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)
        params = sample_params(self.spec, 1, image.height, image.width, g, "cpu")
        x0, y0, x1, y1 = (int(v) for v in params.boxes[0].tolist())
        crop = TF.resized_crop(image, y0, x0, y1 - y0, x1 - x0, [self.spec.size, self.spec.size],
                               interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        if bool(params.flip[0]):
            crop = TF.hflip(crop)
        return torch.from_numpy(np.asarray(crop, dtype=np.uint8).copy()).permute(2, 0, 1), int(label)


def freeze(backbone: nn.Module) -> nn.Module:
    """Eval mode (BN uses and keeps its running statistics) and no gradients."""
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    return backbone


@torch.no_grad()
def evaluate(backbone: nn.Module, head: nn.Module, test_set, device: str, batch_size: int, workers: int,
             features: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """top1/top5 of backbone+head on a ``ResizeCenterCrop`` dataset (or its precomputed features)."""
    was_training = backbone.training
    x, y = features if features is not None else extract_features(
        backbone, test_set, device, batch_size, workers, desc="test features")
    backbone.train(was_training)
    logits = head(x.to(device))
    return {"top1": topk_accuracy(logits, y, 1), "top5": topk_accuracy(logits, y, 5)}


def train_classifier(backbone: nn.Module, head: nn.Module, recipe: Recipe, train_set, device: str, seed: int,
                     workers: int = 0, train_features: torch.Tensor | None = None,
                     train_labels: torch.Tensor | None = None, on_epoch_end=None) -> list[float]:
    """Train ``head`` (and the backbone when ``recipe.backbone_lr > 0``) for ``recipe.epochs``.

    With ``train_features`` (precomputed, frozen backbone) the head is trained on them;
    otherwise on the crops of a ``RandomResizedCropImages`` set, or on batched device views
    of a ``UInt8Images`` set. Batches are a
    function of (seed, epoch) (``epoch_batches``), the views of (seed, epoch) too.
    ``on_epoch_end(epoch)`` is called after each epoch. Returns the mean loss per epoch.
    """
    finetune = recipe.backbone_lr > 0
    if finetune:
        backbone.train()
        for p in backbone.parameters():
            p.requires_grad_(True)
    else:
        freeze(backbone)
    backbone.to(device)
    head.to(device).train()
    groups = [{"params": list(head.parameters()), "base_lr": recipe.head_lr()}]
    if finetune:
        groups.append({"params": list(backbone.parameters()), "base_lr": recipe.backbone_lr})
    optimizer = torch.optim.SGD([dict(g, lr=g["base_lr"]) for g in groups], lr=recipe.head_lr(),
                                momentum=recipe.momentum, nesterov=recipe.nesterov,
                                weight_decay=recipe.weight_decay)
    n = len(train_features) if train_features is not None else len(train_set)
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    multipliers = lr_multipliers(recipe, steps_per_epoch)
    spec = train_view_spec(recipe)
    losses = []
    for epoch in tqdm(range(recipe.epochs), desc="epochs", unit="ep"):
        batches = epoch_batches(n, recipe.batch_size, seed, epoch, drop_last=False)
        if train_features is not None:
            source = ((train_features[b], train_labels[b]) for b in batches)
        else:
            if isinstance(train_set, RandomResizedCropImages):
                train_set.set_epoch(epoch)
            source = batch_loader(train_set, batches, workers)
            views_rng = torch.Generator(device=device).manual_seed(seed * 1_000_003 + epoch)
        total = 0.0
        for i, (x, y) in enumerate(source):
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * float(multipliers[epoch * steps_per_epoch + i])
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if train_features is None:
                x = normalize(x) if isinstance(train_set, RandomResizedCropImages) else make_views(x, spec, views_rng)[0]
                with torch.set_grad_enabled(finetune):
                    x = backbone(x)
            loss = F.cross_entropy(head(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        losses.append(total / n)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return losses


# --------------------------------------------------------------------------- command line


def add_recipe_args(parser: argparse.ArgumentParser, recipes: dict[str, Recipe], default: str) -> None:
    """``--recipe`` plus one override flag per recipe field (default: the recipe's value)."""
    parser.add_argument("--recipe", choices=sorted(recipes), default=default,
                        help=f"training protocol (default {default}); see the table above")
    group = parser.add_argument_group("recipe overrides (default: the recipe's value)")
    group.add_argument("--epochs", type=int)
    group.add_argument("--lr", type=float, help="head learning rate (before x bs/256 for simclr_imagenet)")
    group.add_argument("--schedule", choices=["cosine", "step"])
    group.add_argument("--milestones", type=int, nargs="*",
                       help="step epochs (default: the recipe's, scaled by --epochs/recipe epochs)")
    group.add_argument("--gamma", type=float)
    group.add_argument("--momentum", type=float)
    group.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--weight-decay", type=float)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--crop", type=int, help="train view side and test centre-crop side")
    group.add_argument("--resize", type=int, help="test: shorter side before the centre crop")
    group.add_argument("--crop-scale", type=float, nargs=2, help="RandomResizedCrop area range")


def resolve_recipe(args: argparse.Namespace, recipes: dict[str, Recipe],
                   extra: tuple[str, ...] = ()) -> tuple[Recipe, dict]:
    """The chosen recipe with the flags' overrides applied, and the overrides themselves."""
    base = recipes[args.recipe]
    fields = ("epochs", "lr", "schedule", "gamma", "momentum", "nesterov", "weight_decay", "batch_size",
              "crop", "resize", "crop_scale") + extra
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    if "crop_scale" in overrides:
        overrides["crop_scale"] = tuple(overrides["crop_scale"])
    if args.smoke and "epochs" not in overrides:
        overrides["epochs"] = SMOKE_EPOCHS
    if args.milestones is not None:
        overrides["milestones"] = tuple(args.milestones)
    elif "epochs" in overrides and base.milestones:
        overrides["milestones"] = tuple(round(m * overrides["epochs"] / base.epochs) for m in base.milestones)
    recipe = dataclasses.replace(base, **overrides)
    return recipe, {k: v for k, v in overrides.items() if getattr(base, k) != v}


def recipe_protocol(name: str, recipe: Recipe, overrides: dict) -> dict:
    protocol = {"recipe": name, **dataclasses.asdict(recipe), "head_lr": recipe.head_lr(),
                "overrides": overrides}
    protocol["milestones"] = list(recipe.milestones)
    protocol["crop_scale"] = list(recipe.crop_scale)
    return protocol


def reductions(recipe_name: str, recipe: Recipe, recipes: dict[str, Recipe], **subsets) -> list[str]:
    """What this run does less of than the recipe (for the ``reduced`` scale check)."""
    base = recipes[recipe_name]
    out = [f"epochs {recipe.epochs} of {base.epochs}"] if recipe.epochs < base.epochs else []
    return out + [f"{k}={v}" for k, v in subsets.items() if v]


def check_scale(parser: argparse.ArgumentParser, scale: str, reduced: list[str]) -> None:
    if scale == "reduced" and not reduced:
        parser.error("--scale reduced: nothing is reduced (use fewer --epochs, --max-per-class or --precompute)")
    if scale == "full" and reduced:
        parser.error(f"--scale full, but the run is reduced: {', '.join(reduced)}")


TRAIN_CROPS = ("whole", "centre-square")


def add_train_crop_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-crop", choices=TRAIN_CROPS, default="whole",
                        help="whole: RandomResizedCrop over the whole image (the papers'; CPU, in the loader); "
                             "centre-square: crops inside the centre square loaded at --load-size, made on the "
                             "device (faster; scale reduced)")
    parser.add_argument("--load-size", type=int, default=None,
                        help="--train-crop centre-square: side of the centre square the train images are loaded "
                             "as (default: --resize)")


def train_crop_reduction(args: argparse.Namespace, recipe: Recipe) -> str | None:
    """What ``--train-crop`` reduces (for ``reductions``), or None for the papers' crop."""
    if args.train_crop == "whole":
        if args.load_size is not None:
            raise SystemExit("--load-size is for --train-crop centre-square")
        return None
    return f"train crops inside the centre {args.load_size or recipe.resize}px square, not the whole image"


def train_aug_text(args: argparse.Namespace, recipe: Recipe) -> str:
    if args.precompute:
        return "none: features of the test transform, computed once (--precompute)"
    crop = f"RandomResizedCrop({recipe.crop}, scale={tuple(recipe.crop_scale)}) + flip"
    if args.train_crop == "whole":
        return f"{crop} over the whole image (aspect preserved; torchvision, bilinear)"
    return f"{crop} on the device from images loaded as the centre {args.load_size or recipe.resize}px square"


def prepare(backbone, recipe: Recipe, train_reader, test_reader, num_classes: int, args: argparse.Namespace):
    """What linear evaluation and semi-supervised fine-tuning share: the train set (whole-image
    random resized crops, or the centre square at ``--load-size`` for on-device crops), the test
    set (resize + centre crop), a fresh linear head, and with ``--precompute`` the frozen
    features of both sets (else Nones)."""
    test_set = ResizeCenterCrop(test_reader, recipe.resize, recipe.crop)
    if args.train_crop == "whole":
        train_set = RandomResizedCropImages(train_reader, train_view_spec(recipe), args.seed)
    else:
        train_set = UInt8Images(train_reader, args.load_size or recipe.resize)
    head = linear_head(backbone.num_features, num_classes, args.seed)
    features = (None, None, None)
    if args.precompute:
        train_x, train_y = extract_features(backbone, ResizeCenterCrop(train_reader, recipe.resize, recipe.crop),
                                            args.device, recipe.batch_size, args.workers, desc="train features")
        test_features = extract_features(backbone, test_set, args.device, recipe.batch_size, args.workers,
                                         desc="test features")
        features = (train_x, train_y, test_features)
    return train_set, test_set, head, features


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    add_dataset_args(parser, DATASET_KINDS)
    add_train_crop_args(parser)
    parser.add_argument("--precompute", action="store_true",
                        help="no augmentation: train the linear layer on features computed once (test transform)")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="also evaluate every N epochs (recorded in protocol; the value stays the final epoch's)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--representation", choices=REPRESENTATIONS, default="global",
                        help="global: pooled last stage; hypercolumn: CGH's hypercolumn head (CGH Table 8 'hyper')")
    add_recipe_args(parser, RECIPES, default="ressl_small")
    args = parse_common(parser, argv)
    recipe, overrides = resolve_recipe(args, RECIPES)
    reduced = reductions(args.recipe, recipe, RECIPES, max_per_class=args.max_per_class,
                         precompute="no train augmentation" if args.precompute else None,
                         train_crop=None if args.precompute else train_crop_reduction(args, recipe))
    check_scale(parser, args.scale, reduced)

    start = time.perf_counter()
    backbone, method, ckpt_path = backbone_from_args(args)
    backbone = freeze(representation(backbone, args.representation, ckpt_path)).to(args.device)
    reader_args = {"max_per_class": args.max_per_class} if args.max_per_class else {}
    train_reader, test_reader = (open_dataset(args.dataset, args.data, split, **reader_args)
                                 for split in (args.train_split, args.test_split))
    num_classes = len(getattr(train_reader, "classes", [])) or int(max(train_reader.targets)) + 1
    train_set, test_set, head, (train_x, train_y, test_features) = prepare(
        backbone, recipe, train_reader, test_reader, num_classes, args)
    history = {}

    def on_epoch_end(epoch: int) -> None:
        if args.eval_every and (epoch + 1) % args.eval_every == 0 and epoch + 1 < recipe.epochs:
            history[epoch + 1] = evaluate(backbone, head, test_set, args.device, recipe.batch_size, args.workers,
                                          test_features)["top1"]

    losses = train_classifier(backbone, head, recipe, train_set, args.device, args.seed, args.workers,
                              train_x, train_y, on_epoch_end)
    result = evaluate(backbone, head, test_set, args.device, recipe.batch_size, args.workers, test_features)
    history[recipe.epochs] = result["top1"]

    dataset = args.dataset_name or DATASET_NAMES.get(args.dataset, args.dataset)
    protocol = {**recipe_protocol(args.recipe, recipe, overrides),
                "backbone": "frozen: eval mode (BN running statistics fixed), no gradient",
                "representation": args.representation,
                "head_init": "N(0, 0.01), bias 0",
                "train_aug": train_aug_text(args, recipe),
                "test_transform": f"resize shorter side to {recipe.resize} (bicubic), centre crop {recipe.crop}",
                "reported": "final epoch", "top1_per_eval": history, "best_top1": max(history.values()),
                "final_train_loss": losses[-1], "reduced": reduced, "train_images": len(train_set),
                "test_images": len(test_set), "num_classes": num_classes, "max_per_class": args.max_per_class,
                "data": str(args.data), "seed": args.seed}
    metrics = ["top1"] + (["top5"] if num_classes > 5 else [])
    wall = time.perf_counter() - start
    for metric in metrics:
        append_record(method=method, task="linear_cls", dataset=dataset, metric=metric, value=result[metric],
                      scale=args.scale, checkpoint=ckpt_path, device=args.device, wall_time_s=wall,
                      runs_dir=args.results, protocol=protocol)
    shown = ", ".join(f"{m} {result[m]:.2f}%" for m in metrics)
    print(f"linear ({args.recipe}, {recipe.epochs} ep) on {dataset} [{args.scale}]: {shown} "
          f"({len(train_set)} train / {len(test_set)} test images, method {method}, {wall:.0f} s)")
    return {m: result[m] for m in metrics}


if __name__ == "__main__":
    main()
