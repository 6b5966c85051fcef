"""PASCAL VOC semantic segment retrieval with frozen dense features (Revisiting, Table 6).

    python transfer/segment_retrieval.py --ckpt runs/x/backbone.pth --data /data/VOCdevkit --scale full
    python transfer/segment_retrieval.py --smoke --ckpt runs/smoke/mocov2/backbone.pth --data ../shared/data/voc

Protocol (seed 004, App. A.7 and Table 6): a ResNet-50 without its average pooling, the final
block dilated; images rescaled to 512x512 (bicubic; masks nearest, as MaskContrast's
FixedResize); for each image the spatial features are clustered with K-means (K = 15) into
regions; a region's descriptor is the mean of its pixels' features; each val region takes the
label of its single nearest train region (plain 1-NN, not weighted); the predictions are
rescaled (nearest) to the original image size and scored by mIoU on VOC12 val.

- Output stride: the seed says both "dilation 2 and stride 1 in the final block" (output
  stride 16) and "the output is of size 64x64" for a 512 input (output stride 8). The default
  is 8: it matches the stated output size and the code the authors point to (MaskContrast
  ``ResnetDilated``, default ``dilate_scale=8``: layer3 dilated 2, layer4 dilated 4).
  ``--output-stride 16`` runs the other reading; the record states which ran.
- Bank: VOC12 ``train_aug`` (train.txt + aug.txt = 10,582 ids, masks from
  SegmentationClassAug), the segmentation training split of App. A.3 that A.7 reuses;
  ``--bank train`` is VOC12 train (SegmentationClass), MaskContrast's retrieval bank.
- Train regions are labelled by the majority ground-truth class of their pixels (void 255
  excluded; regions with no valid pixel are left out of the bank).
- Feature geometry (the seed is silent): pixel features L2-normalised before K-means and
  averaging, descriptors L2-normalised, nearest neighbour by cosine similarity (MaskContrast
  retrieval_utils normalises its region prototypes and takes the argmax of dot products).
- K-means: batched k-means++ seeding + Lloyd iterations in torch on the device, all images of
  a batch at once (``kmeans``); each image's random draws come from its own generator seeded
  by (``--seed``, image index), so results do not depend on the batch size. Chosen over
  sklearn ``KMeans`` (one CPU call per image, 12,031 images) for speed on the GPU; from the
  same initial centres the Lloyd iterations give sklearn's clustering (tested).
- Two scorings, as MaskContrast's retrieval configs: ``7 classes`` (aeroplane, bottle, bus,
  car, cat, cow, person; every other object class set to void 255 in train and val masks,
  mean IoU over the 7 without background) and ``21 classes`` (all, background included).
  IoU per class from mmseg's ``IoUMetric`` helpers (intersection/union accumulated over the
  val set, void ignored); a class absent from both prediction and ground truth (only on data
  subsets) is left out of the mean (mmseg's nan), where MaskContrast's meter would count 0.

Records: task ``segment_retrieval``, dataset ``VOC12``, metric ``mIoU`` (protocol.classes 7 or
21). Writes ``<out>/retrievals.png`` (val query regions and their nearest train regions).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.data.readers import VOC_CLASSES, VOC_PALETTE, DatasetError, load_image, load_index_mask
from pretrain.data.synthetic import save_png
from transfer.common import add_common_args, backbone_from_args, dense_features, parse_common
from transfer.mmseg_common import voc_has_aug, voc_root

CLASSES = ("background",) + VOC_CLASSES
SUBSET_7 = ("aeroplane", "bottle", "bus", "car", "cat", "cow", "person")  # MaskContrast retrieval config
IGNORE = 255
SMOKE = {"size": 128, "max_images": 12}


# ----------------------------------------------------------------------------- k-means
def _squared_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B, N, K) squared Euclidean distances of points (B, N, D) to centres (B, K, D)."""
    return ((x * x).sum(-1, keepdim=True) - 2 * x @ centers.transpose(1, 2)
            + (centers * centers).sum(-1)[:, None]).clamp_min_(0)


def kmeans_pp_init(x: torch.Tensor, k: int, uniforms: torch.Tensor) -> torch.Tensor:
    """k-means++ seeding of every image at once: the first centre is the point at quantile
    ``uniforms[:, 0]``, each next one is drawn with probability proportional to the squared
    distance to the nearest chosen centre, by inverting the cumulative distribution at
    ``uniforms[:, j]`` (``(B, k)`` numbers in [0, 1)). Returns ``(B, k, D)``."""
    b, n, _ = x.shape
    rows = torch.arange(b, device=x.device)
    first = (uniforms[:, 0] * n).long().clamp_max(n - 1)
    centers = [x[rows, first]]
    nearest = _squared_distances(x, centers[0][:, None])[..., 0]
    for j in range(1, k):
        total = nearest.sum(1, keepdim=True)
        # all points already chosen (fewer distinct points than k): fall back to a uniform draw
        probs = torch.where(total > 0, nearest / total.clamp_min(1e-30), torch.full_like(nearest, 1.0 / n))
        cdf = probs.cumsum(1)
        pick = torch.searchsorted(cdf, (uniforms[:, j:j + 1] * cdf[:, -1:]).contiguous()).clamp_max(n - 1)[:, 0]
        centers.append(x[rows, pick])
        nearest = torch.minimum(nearest, _squared_distances(x, centers[-1][:, None])[..., 0])
    return torch.stack(centers, 1)


def lloyd(x: torch.Tensor, centers: torch.Tensor, max_iter: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd iterations from ``centers`` until no assignment changes (or ``max_iter``); an empty
    cluster keeps its centre. Returns (labels (B, N), centres (B, K, D))."""
    k = centers.shape[1]
    labels = _squared_distances(x, centers).argmin(-1)
    for _ in range(max_iter):
        onehot = F.one_hot(labels, k).to(x.dtype)                    # B, N, K
        counts = onehot.sum(1)                                        # B, K
        sums = onehot.transpose(1, 2) @ x                             # B, K, D
        centers = torch.where(counts[..., None] > 0, sums / counts.clamp_min(1)[..., None], centers)
        new = _squared_distances(x, centers).argmin(-1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels, centers


def kmeans(x: torch.Tensor, k: int, seeds: list[int], max_iter: int = 300) -> torch.Tensor:
    """Cluster labels ``(B, N)`` of each image's points ``x`` (B, N, D); image i draws its
    k-means++ seeding from ``torch.Generator().manual_seed(seeds[i])``."""
    uniforms = torch.stack([torch.rand(k, generator=torch.Generator().manual_seed(s)) for s in seeds])
    return lloyd(x, kmeans_pp_init(x, k, uniforms.to(x.device)), max_iter)[0]


# ----------------------------------------------------------------------------- regions
def region_descriptors(feats: torch.Tensor, regions: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean feature of every region, L2-normalised: ``feats`` (B, N, D), ``regions`` (B, N) ->
    (descriptors (B, k, D), pixel counts (B, k))."""
    onehot = F.one_hot(regions, k).to(feats.dtype)
    counts = onehot.sum(1)
    means = (onehot.transpose(1, 2) @ feats) / counts.clamp_min(1)[..., None]
    return F.normalize(means, dim=-1), counts


def region_majority(regions: torch.Tensor, labels: torch.Tensor, k: int, num_classes: int = 21) -> torch.Tensor:
    """Majority class of each region's valid pixels: ``regions`` and ``labels`` (B, H, W) at the
    same size (labels 255 = void). Returns (B, k) class ids, -1 for a region without valid pixels."""
    b = regions.shape[0]
    valid = labels != IGNORE
    key = (torch.arange(b, device=regions.device)[:, None, None] * k + regions) * num_classes + labels.long()
    counts = torch.bincount(key[valid], minlength=b * k * num_classes).view(b, k, num_classes)
    return torch.where(counts.sum(-1) > 0, counts.argmax(-1), torch.full_like(counts[..., 0], -1))


def subset_labels(mask: torch.Tensor, keep: tuple[str, ...] | None) -> torch.Tensor:
    """Ground truth for a class subset: every object class outside ``keep`` becomes void (255)."""
    if keep is None:
        return mask
    lookup = torch.full((256,), IGNORE, dtype=mask.dtype, device=mask.device)
    lookup[0] = 0
    for name in keep:
        lookup[CLASSES.index(name)] = CLASSES.index(name)
    return lookup[mask.long()]


def nearest_labels(descriptors: torch.Tensor, bank_desc: torch.Tensor,
                   bank_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Label of each query region's single nearest (cosine) bank region: ``descriptors``
    (B, K, D), ``bank_desc`` (M, D) with ``bank_labels`` (M,) -> (labels (B, K),
    similarities (B, K, M))."""
    similarity = descriptors @ bank_desc.T
    return bank_labels[similarity.argmax(-1)], similarity


def accumulate_iou(totals: torch.Tensor, region_label: torch.Tensor, regions: torch.Tensor,
                   masks: list[torch.Tensor], keep: tuple[str, ...] | None) -> None:
    """Paint each image's region labels (``regions`` (B, h, w) -> ``region_label`` (B, K)),
    rescale them (nearest) to the original mask size and add mmseg's per-class areas
    (intersection, union, prediction, label) to ``totals`` (4, 21)."""
    from mmseg.evaluation.metrics import IoUMetric

    painted = torch.gather(region_label, 1, regions.flatten(1)).view_as(regions)
    for pred_small, mask in zip(painted, masks):
        gt = subset_labels(mask.to(painted.device), keep)
        pred = F.interpolate(pred_small[None, None].float(), size=tuple(gt.shape), mode="nearest")[0, 0].long()
        for row, area in enumerate(IoUMetric.intersect_and_union(pred, gt, 21, IGNORE)):
            totals[row] += area.cpu().double()


def mean_iou(totals: torch.Tensor, keep: tuple[str, ...] | None) -> tuple[float, torch.Tensor, list[int], list[int]]:
    """(mIoU in %, IoU per class, classes averaged, those that occur) of accumulated areas:
    the kept object classes without background for a subset, all 21 otherwise."""
    intersect, union = totals[0], totals[1]
    iou = intersect / union                                             # nan where a class never occurs
    classes = [CLASSES.index(c) for c in keep] if keep else list(range(21))
    present = [c for c in classes if union[c] > 0]
    return (100 * float(iou[present].mean()) if present else 0.0), iou, classes, present


# ----------------------------------------------------------------------------- data
def split_ids(root: Path, bank: str) -> tuple[list[tuple[str, Path]], str]:
    """(image id, mask path) pairs of the bank split and what was read."""
    def ids(name: str) -> list[str]:
        path = root / "ImageSets" / "Segmentation" / f"{name}.txt"
        if not path.is_file():
            raise DatasetError(f"missing split file {path}")
        return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]

    if bank == "train_aug":
        if not voc_has_aug(root):
            raise DatasetError(f"{root}: the train_aug bank needs SegmentationClassAug/ and "
                               "ImageSets/Segmentation/aug.txt (SBD); use --bank train for VOC12 train only")
        names = sorted(set(ids("train")) | set(ids("aug")))
        return [(i, root / "SegmentationClassAug" / f"{i}.png") for i in names], "train_aug (SegmentationClassAug)"
    if bank == "train":
        return [(i, root / "SegmentationClass" / f"{i}.png") for i in ids("train")], "train (SegmentationClass)"
    if bank == "val":
        return [(i, root / "SegmentationClass" / f"{i}.png") for i in ids("val")], "val (SegmentationClass)"
    raise ValueError(f"unknown split {bank!r}")


class VOCImages(Dataset):
    """(uint8 image resized to size x size bicubic, mask resized nearest, original mask, index)."""

    def __init__(self, root: Path, items: list[tuple[str, Path]], size: int):
        self.root, self.items, self.size = root, items, size

    def __len__(self) -> int:
        return len(self.items)

    def image_path(self, index: int) -> Path:
        return self.root / "JPEGImages" / f"{self.items[index][0]}.jpg"

    def __getitem__(self, index: int):
        image = load_image(self.image_path(index))
        mask = load_index_mask(self.items[index][1])
        if mask.shape != (image.height, image.width):
            raise DatasetError(f"{self.items[index][1]} is {mask.shape[1]}x{mask.shape[0]} but its image "
                               f"{self.image_path(index)} is {image.width}x{image.height}")
        small = image.resize((self.size, self.size), Image.BICUBIC)
        small_mask = cv2.resize(mask, (self.size, self.size), interpolation=cv2.INTER_NEAREST)
        return (torch.from_numpy(np.asarray(small, dtype=np.uint8).copy()).permute(2, 0, 1),
                torch.from_numpy(small_mask), torch.from_numpy(mask), index)


def _collate(items):
    images, small, masks, index = zip(*items)
    return torch.stack(images), torch.stack(small), list(masks), list(index)


# ----------------------------------------------------------------------------- harness
@torch.no_grad()
def describe(backbone, dataset: VOCImages, args, desc: str):
    """Yield per batch: (region maps (B, h, w), descriptors (B, K, D), counts (B, K),
    small masks (B, S, S), original masks, dataset indices)."""
    loader = DataLoader(dataset, batch_size=args.batch_size, num_workers=args.workers, collate_fn=_collate)
    for images, small, masks, index in tqdm(loader, desc=desc, unit="batch"):
        feats = dense_features(backbone, images, "C5", args.device)   # B, D, h, w
        b, d, h, w = feats.shape
        points = feats.flatten(2).transpose(1, 2)                      # B, hw, D
        regions = kmeans(points, args.k, [args.seed * 1_000_003 + i for i in index], args.kmeans_iters)
        desc_, counts = region_descriptors(points, regions, args.k)
        yield regions.view(b, h, w), desc_, counts, small.to(args.device), masks, index


def upsample_regions(regions: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(regions[:, None].float(), size=size, mode="nearest")[:, 0].long()


def retrieval_figure(val: VOCImages, bank: VOCImages, examples: list, size: int = 160) -> np.ndarray:
    """Rows: a val query region (tinted white) followed by its nearest train regions (tinted with
    the bank label's VOC colour, grey for background)."""
    def tile(dataset, index, region_map, region, colour):
        image = np.asarray(load_image(dataset.image_path(index)).resize((size, size), Image.BICUBIC), dtype=np.float32)
        inside = cv2.resize(region_map.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) == region
        out = np.where(inside[..., None], 0.45 * image + 0.55 * np.asarray(colour, np.float32), 0.6 * image)
        return out.astype(np.uint8)

    rows = []
    for query, query_map, region, hits in examples:
        tiles = [tile(val, query, query_map, region, (255, 255, 255))]
        tiles += [tile(bank, index, bank_map, bank_region, VOC_PALETTE[label] if label else (128, 128, 128))
                  for index, bank_map, bank_region, label in hits]
        rows.append(np.concatenate(tiles, axis=1))
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)


@torch.no_grad()  # frozen features only; scoped to this call (tests run main() in-process)
def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--data", required=True, help="VOCdevkit (or its VOC2012 folder)")
    parser.add_argument("--bank", choices=("train_aug", "train"), default="train_aug",
                        help="memory bank: train_aug (seed A.7/A.3, 10,582 images) or VOC12 train (MaskContrast)")
    parser.add_argument("--output-stride", type=int, choices=(8, 16), default=8,
                        help="8: 64x64 output at 512 px (seed A.7, MaskContrast ResnetDilated); 16: layer4 dilated 2 only")
    parser.add_argument("--size", type=int, default=None, help=f"input side (512; smoke {SMOKE['size']})")
    parser.add_argument("--k", type=int, default=15, help="K-means clusters per image")
    parser.add_argument("--kmeans-iters", type=int, default=300, help="Lloyd iterations at most (sklearn's default)")
    parser.add_argument("--max-images", type=int, default=None,
                        help=f"first N ids of the bank and of val only (smoke {SMOKE['max_images']})")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--examples", type=int, default=4, help="val images in retrievals.png")
    parser.add_argument("--out", default=None, help="folder for retrievals.png (default work_dirs/retrieval/<time>)")
    args = parse_common(parser, argv)
    size = args.size or (SMOKE["size"] if args.smoke else 512)
    max_images = args.max_images if args.max_images is not None else (SMOKE["max_images"] if args.smoke else None)
    if args.scale == "full" and (size != 512 or max_images or args.bank != "train_aug"):
        parser.error("--scale full runs the protocol: 512 px, the train_aug bank, every image")
    start = time.perf_counter()
    root = voc_root(args.data)
    bank_items, bank_name = split_ids(root, args.bank)
    val_items, _ = split_ids(root, "val")
    bank_set = VOCImages(root, bank_items[:max_images], size)
    val_set = VOCImages(root, val_items[:max_images], size)
    backbone, method, ckpt_path = backbone_from_args(args, output_stride=args.output_stride)
    backbone.to(args.device)
    subsets = {"7": SUBSET_7, "21": None}

    # memory bank: descriptors of every region with a valid pixel, per class subset
    bank_desc, bank_regions, bank_maps, bank_labels = [], [], [], {name: [] for name in subsets}
    for regions, descriptors, _, small, _, index in describe(backbone, bank_set, args, "bank regions"):
        full = upsample_regions(regions, (size, size))
        bank_desc.append(descriptors)
        bank_regions.append(torch.stack([torch.as_tensor(index, device=regions.device)[:, None].expand(-1, args.k),
                                         torch.arange(args.k, device=regions.device).expand(len(index), -1)], -1))
        bank_maps += list(regions.to(torch.uint8).cpu().numpy())
        for name, keep in subsets.items():
            bank_labels[name].append(region_majority(full, subset_labels(small, keep), args.k))
    bank_desc = torch.cat(bank_desc).flatten(0, 1)                    # regions, D
    bank_regions = torch.cat(bank_regions).flatten(0, 1)              # regions, (image, region)
    bank_labels = {name: torch.cat(v).flatten() for name, v in bank_labels.items()}
    banks = {}  # per subset: the regions with a valid label (descriptors, labels, rows)
    for name, labels in bank_labels.items():
        usable = torch.nonzero(labels >= 0).flatten()
        if len(usable) == 0:
            raise DatasetError(f"no region of the {bank_name} bank ({len(bank_set)} images) has a valid "
                               f"{name}-class label")
        banks[name] = (bank_desc[usable], labels[usable], usable)
    del bank_desc

    # val: 1-NN label of each region, painted at the original resolution
    totals = {name: torch.zeros(4, 21, dtype=torch.float64) for name in subsets}
    examples, n_val_regions = [], 0
    for regions, descriptors, counts, _, masks, index in describe(backbone, val_set, args, "val regions"):
        n_val_regions += int((counts > 0).sum())
        for name, keep in subsets.items():
            desc_bank, labels_bank, usable = banks[name]
            region_label, similarity = nearest_labels(descriptors, desc_bank, labels_bank)
            accumulate_iou(totals[name], region_label, regions, masks, keep)
            if name == "21" and len(examples) < args.examples:
                top = similarity.topk(min(3, similarity.shape[-1]), dim=-1).indices
                for i in range(min(len(index), args.examples - len(examples))):
                    region = int(counts[i].argmax())
                    hits = []
                    for j in usable[top[i, region]].tolist():
                        image, bank_region = bank_regions[j].tolist()
                        hits.append((image, bank_maps[image], bank_region, int(bank_labels[name][j])))
                    examples.append((index[i], regions[i].cpu().numpy(), region, hits))

    wall = time.perf_counter() - start
    out = Path(args.out or Path("work_dirs") / "retrieval" / time.strftime("%Y%m%d_%H%M%S"))
    if examples:
        save_png(out / "retrievals.png", retrieval_figure(val_set, bank_set, examples))
    results = {}
    for name, keep in subsets.items():
        miou, iou, classes, present = mean_iou(totals[name], keep)
        results[name] = miou
        append_record(method=method, task="segment_retrieval", dataset="VOC12", metric="mIoU", value=miou,
                      scale=args.scale, checkpoint=ckpt_path, device=args.device, wall_time_s=wall,
                      runs_dir=args.results,
                      protocol={"classes": int(name), "class_names": [CLASSES[c] for c in classes],
                                "classes_scored": len(present), "bank": bank_name, "bank_images": len(bank_set),
                                "bank_regions": len(banks[name][2]), "val_images": len(val_set),
                                "val_regions": n_val_regions, "k": args.k, "input_size": size,
                                "output_stride": args.output_stride, "features": "C5 (no avgpool), L2-normalised",
                                "nearest_neighbour": "1-NN, cosine", "kmeans": "k-means++ + Lloyd (torch), "
                                f"seed {args.seed}", "per_class_iou": {CLASSES[c]: round(100 * float(iou[c]), 3)
                                                                      for c in present},
                                "max_images": max_images, "data": str(args.data), "figure": str(out / "retrievals.png"),
                                "source": "seed 004 App. A.7; MaskContrast@dfd5fa0 retrieval (7-class subset, 1-NN)"})
    n_images = len(bank_set) + len(val_set)
    print(f"VOC12 segment retrieval [{args.scale}] bank {bank_name} ({len(bank_set)} images), {len(val_set)} val: "
          f"mIoU 7 classes {results['7']:.2f}, 21 classes {results['21']:.2f}  (OS {args.output_stride}, "
          f"{n_images} images in {wall:.1f} s, {n_images / wall:.2f} images/s; figure {out / 'retrievals.png'})")
    return results


if __name__ == "__main__":
    main()
