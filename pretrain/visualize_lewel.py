"""Alignment maps of a LEWEL training checkpoint over a few images, as one PNG (seed 001, Fig. 5).

    python -m pretrain.visualize_lewel --ckpt runs/smoke/lewel_m/checkpoint.pth \\
        --images data/synthetic/imagefolder/val/circle/00000.jpg ../shared/data/imagenet-sample/train/n01443537 \\
        --size 224 --maps 5 --out results/lewel_maps.png

Reads the FULL training checkpoint (``checkpoint.pth``): the maps come from the projector g
(per pixel), which the exported backbone does not contain. Each row is one image, resized and
centre-cropped to ``--size`` (the network is convolutional: a larger side gives a finer map,
size/32 cells per side), then the ``--maps`` alignment maps W_k of the online network with the
highest peak, upsampled and blended over the image (red = weight, each map stretched from its
own minimum to its maximum: the maps are soft, a softmax of values in [-1, 1]; the corner prints
the peak weight and the uniform weight 1/HW for comparison).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from pretrain import checkpoint as ckpt
from pretrain.data.augment import IMAGENET_MEAN, IMAGENET_STD
from pretrain.engine import build_method

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def load_lewel(path: str | Path) -> torch.nn.Module:
    """The LEWEL method (online and momentum networks) of a training checkpoint, in eval mode."""
    state = ckpt.load(path)
    if "models" not in state or "config" not in state:
        raise ckpt.CheckpointError(f"{path}: not a training checkpoint (no 'models'/'config'); the alignment "
                                   f"maps need the projector g, which backbone.pth does not hold")
    name = state["config"]["method"]["name"]
    if name != "lewel":
        raise ValueError(f"{path}: a {name!r} checkpoint; alignment maps exist only for method 'lewel'")
    model = build_method(state["config"])
    ckpt.load_state_strict(model, state["models"]["method"], str(path))
    return model.eval()


def image_paths(items: list[str], limit: int) -> list[Path]:
    """Files as given; a folder contributes its image files (recursively, sorted)."""
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            paths.append(p)
        else:
            raise FileNotFoundError(f"image or folder not found: {p}")
    if not paths:
        raise FileNotFoundError(f"no images in {items}")
    return paths[:limit]


def square(path: Path, size: int) -> Image.Image:
    image = Image.open(path).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


@torch.no_grad()
def maps_of(model: torch.nn.Module, image: Image.Image) -> torch.Tensor:
    """(d, H', W') alignment maps of one RGB image (online network)."""
    x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(image.height, image.width, 3)
    x = x.permute(2, 0, 1).float().div(255)
    x = ((x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None])[None]
    x = x.to(next(model.parameters()).device)
    _, _, maps = model.embed(x)                                  # (1, HW, d), square input
    side = round(maps.shape[1] ** 0.5)
    return maps[0].t().reshape(-1, side, side).cpu()


def render(rows: list[tuple[Image.Image, torch.Tensor]], count: int) -> Image.Image:
    size = rows[0][0].width
    sheet = Image.new("RGB", (size * (count + 1), size * len(rows)), "white")
    for r, (image, maps) in enumerate(rows):
        sheet.paste(image, (0, r * size))
        peaks = maps.flatten(1).max(dim=1).values
        for c, k in enumerate(peaks.argsort(descending=True)[:count].tolist()):
            w = F.interpolate(maps[k][None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
            w = ((w - w.min()) / (w.max() - w.min()).clamp_min(1e-12)).clamp(0, 1)
            base = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(size, size, 3).float()
            red = torch.stack([255 * w, torch.zeros_like(w), torch.zeros_like(w)], dim=-1)
            blend = (0.45 * base + 0.55 * red).clamp(0, 255).to(torch.uint8).numpy()
            tile = Image.fromarray(blend)
            ImageDraw.Draw(tile).text((3, 3), f"W{k} max {float(peaks[k]):.3f} (1/HW {1 / maps[k].numel():.3f})",
                                      fill="white")
            sheet.paste(tile, ((c + 1) * size, r * size))
    return sheet


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="training checkpoint (checkpoint.pth) of a lewel run")
    parser.add_argument("--images", nargs="+", required=True, help="image files or folders")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--size", type=int, default=224, help="side the images are resized to (default 224)")
    parser.add_argument("--maps", type=int, default=5, help="maps shown per image (the highest peaks)")
    parser.add_argument("--limit", type=int, default=8, help="at most this many images")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    model = load_lewel(args.ckpt).to(args.device)
    rows = []
    for path in image_paths(args.images, args.limit):
        image = square(path, args.size)
        rows.append((image, maps_of(model, image)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    render(rows, args.maps).quantize(256).save(tmp, format="PNG", optimize=True)  # palette PNG: small files
    tmp.replace(out)
    print(f"wrote {out} ({len(rows)} images x {args.maps} maps, {rows[0][1].shape[-1]}x{rows[0][1].shape[-1]} "
          f"cells each)")
    return out


if __name__ == "__main__":
    main()
