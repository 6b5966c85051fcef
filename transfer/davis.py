"""DAVIS-2017 video object segmentation by label propagation on frozen features.

    python transfer/davis.py --ckpt runs/x/backbone.pth --data /data/DAVIS --scale full
    python transfer/davis.py --smoke --ckpt runs/smoke/mocov2/backbone.pth --data ../shared/data/davis

Revisiting (seed 004, Table 5/9, App. A.6) evaluates frozen representations "with the
publicly available code of Jabri et al." (videowalk). This harness follows that code
(videowalk@047f3f4 code/{test.py,utils/test_utils.py,data/vos.py,resnet.py}; protocol values
in ../shared/protocols.md sec. 4; defaults = its README command
``--topk 10 --videoLen 20 --radius 12 --temperature 0.05 --cropSize -1``):

- frames at their native resolution (480p; ``--cropSize -1``), ImageNet mean/std;
- features: ResNet ``layer3`` (C4) with the strides of layer3 removed (videowalk's
  ``modify()``: stride 1, no dilation; layer4 dropped) -> stride 8, 1024-d for a ResNet-50,
  256-d for a ResNet-18 (channels follow the checkpoint); ``--features dilated`` runs the
  DeepLab-style dilated layer3 instead (not the protocol; recorded);
- each position's feature L2-normalised;
- the first frame's label ids (0 and the objects present, in sorted order) one-hot encoded
  and bilinearly resized to the feature grid (cv2 INTER_LINEAR, as vos.py);
- the video is front-padded with ``--context`` copies of the first frame (make_paths); each
  frame t attends to the first frame (no spatial restriction) and the ``--context`` frames
  before it in the padded video; keys of those context frames further than ``--radius``
  feature cells (Euclidean, ``D < radius`` kept) are masked; affinity = dot product /
  ``--temperature``, top ``--topk`` over all context positions, softmax over those k, label =
  weighted sum of their soft labels; predictions are written back as soft context labels;
- soft labels upsampled bilinearly to the annotation resolution, argmax -> object ids,
  saved as DAVIS palette PNGs ``<out>/<sequence>/<frame>.png``;
- scoring: ``evaluation.davis_metrics`` (J, F with tolerance ceil(0.008 x diagonal), frames
  [1:-1], J-Mean/F-Mean over all objects, J&F = their mean); the official CSVs and a
  per-sequence overlay strip (``<out>/overlays/<sequence>.png``: prediction row over
  ground-truth row) are written next to the PNGs.

Temperature: videowalk's README command uses 0.05, its argparse default is 0.07; 0.05 is the
default here and recorded. Records: task ``video_seg``, dataset ``DAVIS-2017``, metrics
``J_mean``, ``F_mean``, ``JF_mean`` (in %). ``--input-scale`` < 1 (smoke runs) resizes the frames
before the backbone; the predictions are still upsampled to and scored at the annotation size.
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

from evaluation.davis_metrics import DavisScores, evaluate_sequence
from transfer.common import append_record  # adds the checkpoint's `reproduces` and the protocol label
from pretrain.data.readers import DAVIS, VOC_PALETTE, DatasetError, load_image
from pretrain.data.synthetic import save_palette_png, save_png
from pretrain.models.resnet import dilate_stage
from transfer.common import add_common_args, backbone_from_args, dense_features, parse_common

FEATURE_MODES = ("stride", "dilated")
SMOKE = {"input_scale": 0.25, "max_frames": 8}
MASK_VALUE = -1e10  # videowalk: masked affinities get -1e10 before the temperature


# ----------------------------------------------------------------------------- backbone
def label_propagation_backbone(backbone: torch.nn.Module, mode: str = "stride") -> torch.nn.Module:
    """Make C4 a stride-8 map, in place: ``stride`` sets every stride of layer3 to 1 without
    dilation (videowalk ``modify()``), ``dilated`` dilates layer3 by 2 (DeepLab style).
    layer4 is never run (``forward_stages(last="C4")``)."""
    if mode not in FEATURE_MODES:
        raise ValueError(f"features must be one of {FEATURE_MODES}, got {mode!r}")
    dilate_stage(backbone.layer3, 1 if mode == "stride" else 2)
    return backbone


# ----------------------------------------------------------------------------- propagation
def context_frames(t: int, context: int) -> list[int]:
    """Frames whose labels frame ``t`` reads: the first frame (long-term memory), then the
    ``context`` frames before ``t`` in the video front-padded with ``context`` copies of frame 0
    (videowalk ``context_index_bank`` on ``make_paths``' padded list)."""
    return [0] + [max(t - context + j, 0) for j in range(context)]


@torch.no_grad()
def propagate(feats: torch.Tensor, first_labels: torch.Tensor, *, topk: int = 10, radius: float = 12.0,
              context: int = 20, temperature: float = 0.05, chunk: int = 1024,
              progress: bool = False) -> torch.Tensor:
    """Soft labels of every frame from the first frame's.

    ``feats``: ``(T, C, h, w)`` L2-normalised features; ``first_labels``: ``(L, h, w)`` soft
    labels of frame 0. Returns ``(T, L, h, w)`` (frame 0 = ``first_labels``). Affinities are
    computed in fp32 for ``chunk`` query positions at a time.
    """
    frames, channels, h, w = feats.shape
    hw, n_labels = h * w, first_labels.shape[0]
    flat = feats.float().flatten(2)                                   # T, C, hw
    labels = first_labels.new_zeros(frames, n_labels, hw, dtype=torch.float32)
    labels[0] = first_labels.float().flatten(1)
    ys, xs = torch.meshgrid(torch.arange(h, device=feats.device), torch.arange(w, device=feats.device),
                            indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()], 1)             # hw, 2 (integer cells)
    for t in tqdm(range(1, frames), desc="propagate", unit="frame", disable=not progress, leave=False):
        ctx = context_frames(t, context)
        keys = flat[ctx].permute(0, 2, 1).reshape(-1, channels)       # (1 + context) * hw, C
        key_labels = labels[ctx].permute(1, 0, 2).reshape(n_labels, -1)
        out = []
        for start in range(0, hw, chunk):
            query = flat[t, :, start:start + chunk]                   # C, m
            m = query.shape[1]
            affinity = query.T @ keys.T                               # m, (1 + context) * hw
            squared = (coords[start:start + m, None] - coords[None]).pow(2).sum(-1)
            far = squared >= radius ** 2                              # kept: distance < radius (exact)
            affinity.view(m, len(ctx), hw)[:, 1:].masked_fill_(far[:, None], MASK_VALUE)  # first frame exempt
            weights, index = (affinity / temperature).topk(topk, dim=1)
            out.append((key_labels[:, index] * weights.softmax(dim=1)[None]).sum(-1))
        labels[t] = torch.cat(out, 1)
    return labels.view(frames, n_labels, h, w)


def first_frame_labels(annotation: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(label ids present in the first frame, their one-hot maps resized bilinearly to ``size``
    = (h, w)) -- vos.py's label set and cv2 INTER_LINEAR resize."""
    ids = np.unique(annotation)
    onehot = (annotation[..., None] == ids[None, None]).astype(np.float32)
    resized = cv2.resize(onehot, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return ids, resized.reshape(size[0], size[1], len(ids)).transpose(2, 0, 1)


@torch.no_grad()
def labels_to_ids(soft: torch.Tensor, ids: np.ndarray, size: tuple[int, int], batch: int = 8) -> np.ndarray:
    """Upsample ``(T, L, h, w)`` soft labels bilinearly to ``size`` (H, W), argmax, map to ids."""
    lookup = torch.as_tensor(ids, dtype=torch.uint8, device=soft.device)
    out = []
    for start in range(0, len(soft), batch):
        up = F.interpolate(soft[start:start + batch], size=size, mode="bilinear", align_corners=False)
        out.append(lookup[up.argmax(1)].cpu())
    return torch.cat(out).numpy()


# ----------------------------------------------------------------------------- data
class Frames(Dataset):
    """uint8 CHW frames of one sequence, optionally resized by ``scale`` (bilinear)."""

    def __init__(self, paths: list[Path], scale: float = 1.0):
        self.paths, self.scale = paths, scale

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = load_image(self.paths[index])
        if self.scale != 1.0:
            image = image.resize((max(1, round(image.width * self.scale)), max(1, round(image.height * self.scale))),
                                 Image.BILINEAR)
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


def overlay_strip(frame_paths: list[Path], pred: np.ndarray, gt: np.ndarray, n: int = 6,
                  height: int = 180) -> np.ndarray:
    """Two rows of ``n`` evenly spaced frames blended with the palette colours of the
    prediction (top) and the ground truth (bottom)."""
    picks = np.unique(np.linspace(0, len(frame_paths) - 1, min(n, len(frame_paths))).round().astype(int))
    rows = []
    for masks in (pred, gt):
        tiles = []
        for i in picks:
            image = np.asarray(load_image(frame_paths[i]).resize((masks.shape[2], masks.shape[1])), dtype=np.float32)
            colour = VOC_PALETTE[masks[i]].astype(np.float32)
            blend = np.where(masks[i][..., None] > 0, 0.5 * image + 0.5 * colour, image)
            width = max(1, round(masks.shape[2] * height / masks.shape[1]))
            tiles.append(cv2.resize(blend.astype(np.uint8), (width, height), interpolation=cv2.INTER_AREA))
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)


# ----------------------------------------------------------------------------- harness
@torch.no_grad()  # frozen features only; scoped to this call (tests run main() in-process)
def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--data", required=True, help="DAVIS root (JPEGImages/480p, Annotations/480p, ImageSets/2017)")
    parser.add_argument("--split", default="val", help="ImageSets/2017/<split>.txt")
    parser.add_argument("--resolution", default="480p")
    parser.add_argument("--sequences", nargs="*", default=None, help="only these sequences of the split")
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--radius", type=float, default=12.0, help="in feature cells; the first frame is exempt")
    parser.add_argument("--context", type=int, default=20, help="preceding frames (videowalk --videoLen)")
    parser.add_argument("--temperature", type=float, default=0.05,
                        help="videowalk README command 0.05 (its argparse default is 0.07)")
    parser.add_argument("--features", choices=FEATURE_MODES, default="stride",
                        help="stride: layer3 strides removed (videowalk); dilated: layer3 dilated by 2")
    parser.add_argument("--input-scale", type=float, default=None,
                        help=f"resize frames by this factor before the backbone (1 = native; smoke {SMOKE['input_scale']})")
    parser.add_argument("--max-frames", type=int, default=None,
                        help=f"first N frames of each sequence only (smoke {SMOKE['max_frames']})")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per backbone batch")
    parser.add_argument("--chunk", type=int, default=None, help="query positions per affinity block "
                        "(default 1024 on GPU, 256 on CPU)")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for predicted PNGs, CSVs and overlays "
                        "(default work_dirs/davis/<time>)")
    args = parse_common(parser, argv)
    input_scale = args.input_scale if args.input_scale is not None else (SMOKE["input_scale"] if args.smoke else 1.0)
    max_frames = args.max_frames if args.max_frames is not None else (SMOKE["max_frames"] if args.smoke else None)
    if max_frames is not None and max_frames < 3:
        parser.error("--max-frames must be at least 3 (the first and last frames are not scored)")
    if args.scale == "full" and (input_scale != 1.0 or max_frames or args.sequences or args.features != "stride"):
        parser.error("--scale full runs the protocol: native resolution, every frame and sequence, stride features")
    chunk = args.chunk or (1024 if str(args.device).startswith("cuda") else 256)
    start = time.perf_counter()
    backbone, method, ckpt_path = backbone_from_args(args)
    if not hasattr(backbone, "layer3"):
        raise SystemExit(f"{backbone.arch}: label propagation needs a ResNet backbone")
    label_propagation_backbone(backbone, args.features).to(args.device)
    dataset = DAVIS(args.data, split=args.split, resolution=args.resolution)
    sequences = args.sequences or dataset.sequences
    unknown = sorted(set(sequences) - set(dataset.sequences))
    if unknown:
        raise DatasetError(f"sequences not in ImageSets/{dataset.year}/{args.split}.txt: {unknown}")
    out = Path(args.out or Path("work_dirs") / "davis" / time.strftime("%Y%m%d_%H%M%S"))
    scores, n_frames, feature_shape = DavisScores(), 0, None
    for seq in tqdm(sequences, desc="DAVIS sequences", unit="seq"):
        frame_paths, mask_paths = dataset.frames(seq), dataset.annotations(seq)
        if len(mask_paths) != len(frame_paths):
            raise DatasetError(f"{seq}: {len(frame_paths)} frames but {len(mask_paths)} annotations "
                               "(semi-supervised scoring needs every frame's mask)")
        frame_paths, mask_paths = frame_paths[:max_frames], mask_paths[:max_frames]
        gt = np.stack([dataset.load_annotation(p) for p in mask_paths])
        feats = torch.cat([dense_features(backbone, batch, "C4", args.device)
                           for batch in DataLoader(Frames(frame_paths, input_scale), batch_size=args.batch_size,
                                                   num_workers=args.workers)])
        feature_shape = tuple(feats.shape[1:])
        ids, first = first_frame_labels(np.where(gt[0] == 255, 0, gt[0]), feature_shape[1:])
        soft = propagate(feats, torch.from_numpy(first).to(args.device), topk=args.topk, radius=args.radius,
                         context=args.context, temperature=args.temperature, chunk=chunk, progress=True)
        pred = labels_to_ids(soft, ids, gt.shape[1:])
        for path, mask in zip(frame_paths, pred):
            save_palette_png(out / seq / f"{path.stem}.png", mask)
        save_png(out / "overlays" / f"{seq}.png", overlay_strip(frame_paths, pred, gt))
        j, f = evaluate_sequence(gt, pred, seq)
        scores.add(seq, j, f)
        n_frames += len(frame_paths)
    wall = time.perf_counter() - start
    summary = scores.summary()
    scores.write_csv(out, args.split)
    protocol = {"split": args.split, "resolution": args.resolution, "sequences": len(sequences),
                "frames": n_frames, "objects": len(scores.objects), "topk": args.topk, "radius": args.radius,
                "context": args.context, "temperature": args.temperature, "features": args.features,
                "layer": "layer3 (C4)", "feature_dim": feature_shape[0], "input_scale": input_scale,
                "max_frames": max_frames, "data": str(args.data), "predictions": str(out),
                "source": "videowalk@047f3f4 test.py (Jabri et al.), davis2017-evaluation semi-supervised"}
    if args.sequences:
        protocol["sequence_list"] = list(sequences)
    for metric, key in (("J_mean", "J-Mean"), ("F_mean", "F-Mean"), ("JF_mean", "J&F-Mean")):
        append_record(method=method, task="video_seg", dataset="DAVIS-2017", metric=metric,
                      value=100 * summary[key], scale=args.scale, checkpoint=ckpt_path, device=args.device,
                      wall_time_s=wall, runs_dir=args.results, protocol=protocol)
    print(f"DAVIS-2017 {args.split} [{args.scale}] {len(sequences)} sequences, {len(scores.objects)} objects: "
          f"J {100 * summary['J-Mean']:.2f}  F {100 * summary['F-Mean']:.2f}  J&F {100 * summary['J&F-Mean']:.2f}"
          f"  ({n_frames} frames in {wall:.1f} s, {n_frames / wall:.2f} frames/s; outputs in {out})")
    return {k: 100 * v for k, v in summary.items()}


if __name__ == "__main__":
    main()
