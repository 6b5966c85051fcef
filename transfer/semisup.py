"""Semi-supervised ImageNet evaluation: fine-tuning on 1% / 10% of the labels.

    python transfer/semisup.py --ckpt runs/x/backbone.pth --recipe ressl_1pct \\
        --data /data/imagenet --subset 1percent.txt --scale full
    python transfer/semisup.py --ckpt runs/x/backbone.pth --recipe ressl_10pct \\
        --data /data/imagenet --subset 10percent.txt --scale full

``--subset`` is the labelled-image list of SimCLR (``1percent.txt`` / ``10percent.txt``:
one train file name per line, e.g. ``n01440764_10026.JPEG``, or ``<class>/<file>``),
matched to the files of the ImageFolder train split (``--data``/train/<wnid>/<file>); a
listed name that is not found, or found in several class folders, is an error naming it.
The model is a linear layer on the global-pooled backbone features; with a backbone lr
of 0 the backbone is frozen (eval mode, BN statistics fixed), otherwise it is fine-tuned
in train mode (BN batch statistics). Train views: torchvision's RandomResizedCrop over the
whole image + flip (``--train-crop centre-square``: device-side crops inside the centre
square, scale ``reduced``; see transfer/linear.py); test: resize 256 + centre crop 224 of
``--test-split`` (val, in ImageFolder layout). Records task ``semi_sup_1pct`` / ``semi_sup_10pct``, top1 and top5, at the
final epoch.

Recipes (every value overridable by its flag; batch size and momentum are not stated by
ReSSL/LEWEL: 256 and 0.9 assumed):

  ressl_1pct    frozen backbone, head lr 0.1, 60 ep, cosine, no wd        ReSSL (seed 003, Table 10 text)
  ressl_10pct   backbone lr 0.02 / head lr 0.2, 20 ep, cosine, no wd      ReSSL (seed 003, Table 10 text)
  lewel_1pct    backbone 1e-4 / head 1.0, 50 ep, x0.1 at 30 and 40        LEWEL (seed 001, Sec. 4.2)
  lewel_10pct   backbone 0.01 / head 0.1, 50 ep, x0.1 at 30 and 40        LEWEL (seed 001, Sec. 4.2)
  cgh_1pct      backbone 1e-4 / head 0.5, 50 ep, x0.1 at 30 and 40, bs 256 CGH (seed 000, Sec. 4.3)
  cgh_10pct     backbone 2e-4 / head 0.2, 50 ep, x0.1 at 30 and 40, bs 256 CGH (seed 000, Sec. 4.3)

A frozen-backbone recipe accepts ``--precompute`` (features computed once, no augmentation).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.data.loading import open_dataset
from pretrain.data.readers import DatasetError
from transfer.common import add_common_args, backbone_from_args, parse_common
from transfer.linear import (Recipe, add_recipe_args, add_train_crop_args, check_scale, evaluate, freeze, prepare,
                             recipe_protocol, reductions, resolve_recipe, train_aug_text, train_classifier,
                             train_crop_reduction)

_RESSL = "ReSSL seed 003, text of Table 10: SimCLR's 1%/10% file lists; "
_LEWEL = "LEWEL seed 001 Sec. 4.2: SimCLR's 1%/10% subsets, 50 epochs, lr x0.1 at epochs 30 and 40; "
_CGH = "CGH seed 000 Sec. 4.3: SGD, batch 256, wd 0, momentum 0.9, 50 epochs, x0.1 after 30 and 40; "
RECIPES = {
    "ressl_1pct": Recipe(epochs=60, lr=0.1, schedule="cosine", backbone_lr=0.0,
                         source=_RESSL + "1%: backbone frozen, lr 0.1 for the linear layer, 60 epochs, cosine, no wd"),
    "ressl_10pct": Recipe(epochs=20, lr=0.2, schedule="cosine", backbone_lr=0.02,
                          source=_RESSL + "10%: lr 0.02 backbone / 0.2 linear layer, 20 epochs, cosine, no wd"),
    "lewel_1pct": Recipe(epochs=50, lr=1.0, schedule="step", milestones=(30, 40), backbone_lr=1e-4,
                         source=_LEWEL + "1%: classifier lr 1.0, backbone lr 0.0001"),
    "lewel_10pct": Recipe(epochs=50, lr=0.1, schedule="step", milestones=(30, 40), backbone_lr=0.01,
                          source=_LEWEL + "10%: classifier lr 0.1, backbone lr 0.01"),
    "cgh_1pct": Recipe(epochs=50, lr=0.5, schedule="step", milestones=(30, 40), backbone_lr=1e-4,
                       source=_CGH + "1%: head lr 0.5, backbone lr 0.0001"),
    "cgh_10pct": Recipe(epochs=50, lr=0.2, schedule="step", milestones=(30, 40), backbone_lr=2e-4,
                        source=_CGH + "10%: head lr 0.2, backbone lr 0.0002"),
}
TASKS = {"1pct": "semi_sup_1pct", "10pct": "semi_sup_10pct"}


def read_subset(path: str | Path) -> list[str]:
    """File names of a SimCLR subset list (one per line, blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"subset file not found: {path}")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"empty subset file {path}")
    return names


def keep_subset(reader, names: list[str], source: str) -> None:
    """Restrict an ImageFolder-style reader (``samples`` of (relative path, label)) to the
    listed images, in place. A line is a file name (SimCLR's lists: ImageNet file names are
    unique) or ``<class>/<file>``. Unknown or ambiguous names are errors naming them."""
    if not hasattr(reader, "samples"):
        raise DatasetError(f"{type(reader).__name__} has no file list; --subset needs an ImageFolder layout")
    index: dict[str, list[int]] = {}
    for i, (rel, _) in enumerate(reader.samples):
        parts = rel.split("/")
        index.setdefault(parts[-1], []).append(i)
        index.setdefault("/".join(parts[-2:]), []).append(i)
    missing = [n for n in names if n not in index]
    if missing:
        raise DatasetError(f"{len(missing)} image(s) of subset {source} are not in {reader.root}, e.g. "
                           + ", ".join(missing[:5]))
    ambiguous = [n for n in names if len(index[n]) > 1]
    if ambiguous:
        raise DatasetError(f"subset {source}: file name(s) found in several class folders of {reader.root}, "
                           f"write them as <class>/<file>: " + ", ".join(ambiguous[:5]))
    reader.samples = [reader.samples[i] for i in sorted({index[n][0] for n in names})]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--data", required=True, help="ImageFolder root (folder or .zip) with train/ and val/")
    parser.add_argument("--subset", required=True, help="labelled-image list (SimCLR 1percent.txt / 10percent.txt)")
    parser.add_argument("--dataset-name", default=None,
                        help="name in the result record (default IN-1K; at smoke the data folder's name)")
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--test-split", default="val")
    parser.add_argument("--max-per-class", type=int, default=None, help="subset of the test split (reduced runs)")
    add_train_crop_args(parser)
    parser.add_argument("--precompute", action="store_true",
                        help="frozen-backbone recipes only: no augmentation, features computed once")
    parser.add_argument("--workers", type=int, default=0)
    add_recipe_args(parser, RECIPES, default="ressl_1pct")
    parser.add_argument("--backbone-lr", type=float, help="override: backbone lr (0 = frozen backbone)")
    args = parse_common(parser, argv)
    recipe, overrides = resolve_recipe(args, RECIPES, extra=("backbone_lr",))
    if args.precompute and recipe.backbone_lr > 0:
        parser.error("--precompute needs a frozen backbone (backbone lr 0)")
    reduced = reductions(args.recipe, recipe, RECIPES, max_per_class=args.max_per_class,
                         precompute="no train augmentation" if args.precompute else None,
                         train_crop=None if args.precompute else train_crop_reduction(args, recipe))
    check_scale(parser, args.scale, reduced)
    task = TASKS[args.recipe.rsplit("_", 1)[1]]
    args.dataset_name = args.dataset_name or (Path(args.data).name if args.smoke else "IN-1K")

    start = time.perf_counter()
    backbone, method, ckpt_path = backbone_from_args(args)
    freeze(backbone).to(args.device)
    train_reader = open_dataset("imagefolder", args.data, args.train_split)
    all_train = len(train_reader)
    keep_subset(train_reader, read_subset(args.subset), args.subset)
    test_args = {"max_per_class": args.max_per_class} if args.max_per_class else {}
    test_reader = open_dataset("imagefolder", args.data, args.test_split, **test_args)
    num_classes = len(train_reader.classes)
    train_set, test_set, head, (train_x, train_y, test_features) = prepare(
        backbone, recipe, train_reader, test_reader, num_classes, args)
    losses = train_classifier(backbone, head, recipe, train_set, args.device, args.seed, args.workers,
                              train_x, train_y)
    result = evaluate(backbone, head, test_set, args.device, recipe.batch_size, args.workers, test_features)

    protocol = {**recipe_protocol(args.recipe, recipe, overrides),
                "backbone": ("fine-tuned, train mode (BN batch statistics)" if recipe.backbone_lr > 0
                             else "frozen: eval mode (BN running statistics fixed), no gradient"),
                "head_init": "N(0, 0.01), bias 0",
                "train_aug": train_aug_text(args, recipe),
                "test_transform": f"resize shorter side to {recipe.resize} (bicubic), centre crop {recipe.crop}",
                "subset_file": str(args.subset), "labelled_images": len(train_set),
                "train_split_images": all_train, "test_images": len(test_set), "num_classes": num_classes,
                "reported": "final epoch", "final_train_loss": losses[-1], "reduced": reduced,
                "max_per_class": args.max_per_class, "data": str(args.data), "seed": args.seed}
    wall = time.perf_counter() - start
    for metric in ("top1", "top5"):
        append_record(method=method, task=task, dataset=args.dataset_name, metric=metric, value=result[metric],
                      scale=args.scale, checkpoint=ckpt_path, device=args.device, wall_time_s=wall,
                      runs_dir=args.results, protocol=protocol)
    print(f"semi-supervised ({args.recipe}, {recipe.epochs} ep, {len(train_set)} labelled images) on "
          f"{args.dataset_name} [{args.scale}]: top1 {result['top1']:.2f}%, top5 {result['top5']:.2f}% "
          f"({len(test_set)} test images, method {method}, {wall:.0f} s)")
    return result


if __name__ == "__main__":
    main()
