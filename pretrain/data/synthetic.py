"""Generate small, deterministic stand-ins for the suite's datasets in their real on-disk layouts.

    python -m pretrain.data.synthetic --out DIR [--seed 0] [--formats voc,coco] [--scale smoke]
    python -m pretrain.data.synthetic --out DIR --formats coco --coco-colors palette --coco-layout themed

Every image is a scene of textured, randomly coloured shapes on a textured, randomly
coloured background. The *shape* is the class; colour, size, position and a small rotation
are nuisances, so representation learning is possible and measurable. One rendering core
(:func:`render_scene`) draws every format; the writers only differ in how they store the
result. Formats and their folders under DIR:

==============  =========================  ==================================================
format          folder                     content
==============  =========================  ==================================================
imagefolder     imagefolder/               ``{train,val}/<shape>/<NNNNN>.jpg``, 64 px
cifar10         cifar-10-batches-py/       python pickles, 32 px, label = shape (5 at smoke, 10 at small)
cifar100        cifar-100-python/          fine label = shape x hue bin (100), coarse = shape x hue half (20)
voc             VOCdevkit/VOC{2007,2012}/  XML boxes, palette ``SegmentationClass``/``SegmentationObject``
coco            coco/                      ``instances_{train,val}2017.json`` (polygons + a few crowd RLEs)
davis           DAVIS/                     moving shapes, palette masks of object ids every frame
cityscapes      cityscapes/                street-like scenes, ``labelIds`` + ``labelTrainIds``
==============  =========================  ==================================================

Conventions (documented here once):

* Shape ``i`` (``SHAPES[i]``) is VOC class ``VOC_CLASSES[i]`` (circle=aeroplane, square=bicycle,
  triangle=bird, cross=boat, ring=bottle, star=bus, diamond=car, crescent=cat, hourglass=chair,
  ell=cow) and COCO category id ``i + 1`` (named after the shape).
* Objects of VOC/COCO scenes never overlap, so a shape's outline polygon is its visible mask.
  Masks are the polygon filled by the even-odd rule at pixel centres. A ring is one polygon
  (outer circle, a zero-width cut, inner circle backwards), so the even-odd fill of
  pycocotools leaves its hole empty. COCO ``area`` is the pixel count of pycocotools'
  rasterisation of the segmentation (== ``annToMask(ann).sum()``); ``bbox`` is the polygon's
  extent for polygons and ``toBbox`` of the RLE for crowds.
* ``DAVIS/*/480p`` and the small Cityscapes frames keep the real folder names; at smoke scale
  the frames are 192x108 and 256x128, not 854x480 / 2048x1024.
* CIFAR ``num_cases_per_batch`` is the real count per batch here, not 10000.
* ``--coco-colors palette`` draws every COCO scene in the shape sets' one (background, object)
  colour pair, plain background, instead of random colours: scenes that only their objects'
  shapes and layout tell apart (Revisiting's smoke check on COCO-format scenes). The folder's
  marker records the choice, so switching regenerates.
* ``--coco-layout themed`` gives every COCO scene one theme shape, drawn 5-10 times at 16-50 px
  (and, every fourth scene, a crowd row of a random shape), instead of 2-5 objects of random
  shapes at 16-60 px: any part of a scene then shows what its whole shows, as a herd or a
  table setting does in real scene-centric photos -- the premise of multi-crop, whose small
  crops must share the anchor's content (Revisiting's smoke check; the marker records it).

Output is byte-identical for the same seed and scale (numpy ``Generator`` seeded per image,
fixed JPEG quality, sorted writing order). A finished format folder holds a ``.complete``
marker; a later run with the same seed, scale and generator code skips it.
"""

from __future__ import annotations

import argparse
import colorsys
import dataclasses
import hashlib
import json
import logging
import os
import pickle
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from pretrain.data.readers import (
    IGNORE_INDEX,
    VOC_CLASSES,
    VOC_PALETTE,
    cityscapes_train_ids,
)

log = logging.getLogger(__name__)

FORMATS = ("imagefolder", "cifar10", "cifar100", "voc", "coco", "davis", "cityscapes")
FORMAT_DIRS = {
    "imagefolder": "imagefolder",
    "cifar10": "cifar-10-batches-py",
    "cifar100": "cifar-100-python",
    "voc": "VOCdevkit",
    "coco": "coco",
    "davis": "DAVIS",
    "cityscapes": "cityscapes",
}
MARKER = ".complete"
COCO_COLORS = ("random", "palette")  # --coco-colors
COCO_LAYOUTS = ("mixed", "themed")  # --coco-layout
JPEG_QUALITY = 90
PICKLE_PROTOCOL = 4  # loads like the official files: pickle.load(f, encoding="bytes") -> bytes keys
SUPERSAMPLE = 2  # classification images are drawn at 2x and box-filtered down (anti-aliasing)
MAX_ROTATION_DEG = 20.0  # shape rotation is a nuisance, kept small so square != diamond
# (background, object) colours of the shape-classification sets (imagefolder, cifar10): one pair,
# so that only the shape (and its size, position, rotation, shading) tells two images apart.
# Measured here (ResNet-18 at a quarter width, 32 px, batch 64, 1,000 steps, kNN k 20 on val):
# - a random colour per image: colour alone identifies an image, MoCo v2's colour jitter (hue
#   +-0.1) does not hide it, and instance discrimination learns colour, not shape;
# - four shared (background, object) pairs: MoCo v2 learns shapes (62% vs 45-53% at random
#   init), but ReSSL's relation targets and BYOL's regression targets are ruled by the pair
#   (ReSSL 42%, below random init); two pairs: ReSSL 54% vs 51-58%;
# - one pair: ReSSL 82% and MoCo v2 (tau 0.5) 76% vs 57-65% at random init.
CLASSIFICATION_PALETTE = (((55, 55, 60), (215, 210, 200)),)
MIN_CONTRAST = 110.0  # minimum RGB distance between an object colour and the background mean


# --------------------------------------------------------------------------- scales


@dataclass(frozen=True)
class Scale:
    """Dataset sizes (images, sequences or frames) for one ``--scale``; ``coco_palette`` and
    ``coco_themed`` are not sizes: ``generate`` sets them from ``coco_colors`` and ``coco_layout``
    (no scale sets them)."""

    imagefolder_classes: int = 5
    imagefolder_train_per_class: int = 400  # the smoke pretraining set (64 px, ImageNet stem)
    imagefolder_val_per_class: int = 100
    imagefolder_size: int = 64
    # 5 well-separated shapes at smoke scale (colours from CLASSIFICATION_PALETTE). The smoke
    # pretraining uses the imagefolder set above (read at 32 px)
    cifar10_classes: int = 5
    cifar10_train: int = 2000
    cifar10_test: int = 500
    cifar100_train: int = 500
    cifar100_test: int = 100
    voc2007_per_split: int = 20  # train, val and test each
    voc2012_per_split: int = 20  # train and val each
    coco_train: int = 40
    coco_val: int = 20
    davis_train: int = 2
    davis_val: int = 3
    davis_frames: int = 12
    davis_size: tuple[int, int] = (192, 108)  # width, height
    cityscapes_train: tuple[tuple[str, int], ...] = (("aachen", 3), ("bochum", 2))
    cityscapes_val: tuple[tuple[str, int], ...] = (("frankfurt", 3),)
    cityscapes_size: tuple[int, int] = (256, 128)
    # COCO scenes in the one (background, object) colour pair of the shape-classification sets
    # (--coco-colors palette) instead of a random background and random object colours. Measured
    # (issue 18): on random colours, instance discrimination on COCO-format scenes is solved by
    # each image's own background and the learned features rank objects below random init.
    coco_palette: bool = False
    # COCO scenes of one theme shape each (--coco-layout themed) instead of 2-5 random shapes.
    # Measured (issue 18): on the colour-pair scenes with random shapes, most small crops of
    # multi-crop show plain background or a shape the anchor crop need not show;
    # the multi-crop loss then stays at chance and every multi-crop variant ends at or below
    # random init on the shapes (13 settings); on themed scenes they learn the shapes.
    coco_themed: bool = False


SCALES = {
    "smoke": Scale(),
    "small": Scale(
        imagefolder_classes=10,
        cifar10_classes=10,
        imagefolder_train_per_class=500,
        imagefolder_val_per_class=100,
        cifar10_train=10000,
        cifar10_test=2000,
        cifar100_train=5000,
        cifar100_test=1000,
        voc2007_per_split=200,
        voc2012_per_split=200,
        coco_train=400,
        coco_val=200,
        davis_train=10,
        davis_val=10,
        davis_frames=30,
        cityscapes_train=(("aachen", 20), ("bochum", 20)),
        cityscapes_val=(("frankfurt", 20),),
    ),
}


# --------------------------------------------------------------------------- shapes


def _regular(n: int, radius: float = 1.0, phase: float = -np.pi / 2) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _arc(cx: float, cy: float, r: float, start: float, stop: float, n: int) -> np.ndarray:
    angles = np.linspace(start, stop, n)
    return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)


def _ring(outer: float, inner: float, n: int = 32) -> np.ndarray:
    """Outer circle, a zero-width cut, the inner circle backwards: the even-odd fill has a hole."""
    out, inn = _regular(n, outer, 0.0), _regular(n, inner, 0.0)
    return np.concatenate([out, out[:1], inn[:1], inn[:0:-1], inn[:1]])


def _crescent() -> np.ndarray:
    """Unit disc minus a disc of radius 0.8 centred at (0.5, 0): outer arc, then inner arc back."""
    x = (1 - 0.64 + 0.25) / 1.0  # intersection abscissa: x^2 - (x - 0.5)^2 = 1 - 0.64
    y = np.sqrt(1 - x * x)
    a_outer = np.arctan2(y, x)
    a_inner = np.arctan2(y, x - 0.5)
    outer = _arc(0, 0, 1, a_outer, 2 * np.pi - a_outer, 28)
    inner = _arc(0.5, 0, 0.8, 2 * np.pi - a_inner, a_inner, 20)[1:-1]
    return np.concatenate([outer, inner]) + [0.25, 0]  # roughly centre the visible part


def _cross(arm: float) -> np.ndarray:
    """Plus sign with arms ``2 * arm`` wide: the top arm's corners, rotated by 90 degrees three times."""
    top = np.array([[-arm, -1.0], [arm, -1.0], [arm, -arm]])
    quarter_turn = np.array([[0.0, 1.0], [-1.0, 0.0]])  # (x, y) -> (-y, x) for row vectors
    return np.concatenate([top @ np.linalg.matrix_power(quarter_turn, k) for k in range(4)])


def _star(points: int = 5, inner: float = 0.42) -> np.ndarray:
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return _regular(2 * points) * radii[:, None]


# Unit outlines (about [-1, 1]^2, y pointing down), in class order. VOC class i = shape i.
SHAPE_OUTLINES: dict[str, np.ndarray] = {
    "circle": _regular(32),
    "square": np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]]),
    "triangle": _regular(3) + [0, 0.2],
    "cross": _cross(0.3),
    "ring": _ring(1.0, 0.55),
    "star": _star(),
    "diamond": np.array([[0, -1], [0.6, 0], [0, 1], [-0.6, 0]]),
    "crescent": _crescent(),
    "hourglass": np.array([[-0.75, -1], [0.75, -1], [0.15, 0], [0.75, 1], [-0.75, 1], [-0.15, 0]]),
    "ell": np.array([[-0.7, -1], [-0.15, -1], [-0.15, 0.45], [0.7, 0.45], [0.7, 1], [-0.7, 1]]),
}
SHAPES = tuple(SHAPE_OUTLINES)
HUE_NAMES = ("red", "orange", "yellow", "lime", "green", "teal", "azure", "blue", "violet", "magenta")


# --------------------------------------------------------------------------- rendering core


class Drawable(Protocol):
    """Anything :func:`render_scene` can paint: an outline, a colour and an integer label."""

    @property
    def polygon(self) -> np.ndarray: ...  # (K, 2) float x, y in pixels

    @property
    def color(self) -> tuple[int, int, int]: ...

    @property
    def label(self) -> int: ...


@dataclass(frozen=True)
class ShapeObject:
    """A shape instance; ``label`` is ``shape + 1`` (0 is background)."""

    shape: int
    cx: float
    cy: float
    size: float  # outline diameter in pixels before aspect/rotation
    angle: float  # degrees
    aspect: float  # x stretch
    color: tuple[int, int, int]

    @property
    def label(self) -> int:
        return self.shape + 1

    @property
    def polygon(self) -> np.ndarray:
        return shape_polygon(self.shape, self.cx, self.cy, self.size, self.angle, self.aspect)


@dataclass(frozen=True)
class Region:
    """A labelled polygon (Cityscapes stuff and things)."""

    polygon: np.ndarray
    color: tuple[int, int, int]
    label: int


@dataclass
class Scene:
    """Rendered image and its per-pixel and per-object annotations (object k has instance id k + 1)."""

    image: np.ndarray  # H x W x 3 uint8
    instance_ids: np.ndarray  # H x W uint8, 0 = background, topmost object wins
    class_ids: np.ndarray  # H x W uint8, object labels, background_label elsewhere
    boxes: np.ndarray  # N x 4 int (x0, y0, x1, y1), exclusive ends, of the visible mask; -1 if hidden
    polygons: list[np.ndarray]


def shape_polygon(
    shape: int, cx: float, cy: float, size: float, angle: float = 0.0, aspect: float = 1.0
) -> np.ndarray:
    """Outline of ``SHAPES[shape]`` centred at (cx, cy), ``size`` px across, rotated by ``angle`` degrees."""
    unit = SHAPE_OUTLINES[SHAPES[shape]] * [aspect * size / 2, size / 2]
    theta = np.deg2rad(angle)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return unit @ rotation.T + [cx, cy]


def rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies inside ``polygon`` (even-odd rule)."""
    mask = np.zeros((height, width), dtype=bool)
    x0, y0 = np.maximum(np.floor(polygon.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(polygon.max(axis=0)).astype(int), [width, height])
    if x0 >= x1 or y0 >= y1:
        return mask
    px = np.arange(x0, x1) + 0.5  # (w,)
    py = (np.arange(y0, y1) + 0.5)[:, None]  # (h, 1)
    xa, ya = polygon[:, 0, None, None], polygon[:, 1, None, None]  # (E, 1, 1)
    xb, yb = np.roll(xa, -1, axis=0), np.roll(ya, -1, axis=0)
    spans = (ya > py) != (yb > py)  # (E, h, 1): edge crosses this pixel row
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = xa + (py - ya) * (xb - xa) / (yb - ya)
    crossings = spans & (px < x_cross)  # (E, h, w): ray to the right meets the edge
    mask[y0:y1, x0:x1] = np.logical_xor.reduce(crossings, axis=0)
    return mask


def _bilinear_weights(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) matrix that linearly interpolates n_in samples onto n_out points."""
    positions = np.linspace(0, n_in - 1, n_out)
    return np.clip(1 - np.abs(positions[:, None] - np.arange(n_in)[None, :]), 0, None)


def make_background(
    rng: np.random.Generator, height: int, width: int, color: Sequence[float] | None = None,
    blotches: bool = True,
) -> np.ndarray:
    """Random-coloured background: base colour + smooth colour blotches (optional) + pixel noise.

    Deliberately no periodic texture: a grating of random orientation survives crops,
    colour jitter and grayscale, so instance discrimination could match backgrounds
    instead of learning the objects' shapes.
    """
    base = np.asarray(color if color is not None else random_color(rng, value=(0.25, 0.95)), dtype=float)
    noise = rng.normal(0, 12, size=(height, width, 3))
    if not blotches:
        return np.clip(base + noise, 0, 255).astype(np.uint8)
    grid = int(rng.integers(3, 7))
    blotches = rng.normal(0, 30, size=(grid, grid, 3))
    field = (
        _bilinear_weights(height, grid) @ blotches.transpose(2, 0, 1) @ _bilinear_weights(width, grid).T
    ).transpose(1, 2, 0)
    return np.clip(base + field + noise, 0, 255).astype(np.uint8)


def random_color(
    rng: np.random.Generator,
    hue: tuple[float, float] = (0.0, 1.0),
    saturation: tuple[float, float] = (0.45, 1.0),
    value: tuple[float, float] = (0.45, 1.0),
) -> tuple[int, int, int]:
    rgb = colorsys.hsv_to_rgb(rng.uniform(*hue) % 1.0, rng.uniform(*saturation), rng.uniform(*value))
    return tuple(int(round(255 * c)) for c in rgb)  # type: ignore[return-value]


def contrasting_color(
    rng: np.random.Generator, background: np.ndarray, hue: tuple[float, float] = (0.0, 1.0)
) -> tuple[int, int, int]:
    """A random colour at least MIN_CONTRAST away from the background's mean (best of a few tries)."""
    mean = background.reshape(-1, 3).mean(axis=0)
    best, best_distance = (0, 0, 0), -1.0
    for _ in range(12):
        color = random_color(rng, hue=hue, value=(0.2, 1.0))
        distance = float(np.linalg.norm(np.subtract(color, mean)))
        if distance >= MIN_CONTRAST:
            return color
        if distance > best_distance:
            best, best_distance = color, distance
    return best


def _paint(
    image: np.ndarray, mask: np.ndarray, color: Sequence[int], rng: np.random.Generator, noise: float = 8.0
) -> None:
    """Fill ``mask`` in ``image`` with ``color`` plus a random linear shading and pixel noise."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    extent = max(float(np.ptp(xs)), float(np.ptp(ys)), 1.0)
    gx, gy = rng.normal(0, 0.25, size=2)
    shade = 1 + (gx * (xs - xs.mean()) + gy * (ys - ys.mean())) / extent
    values = np.asarray(color, float)[None, :] * shade[:, None] + rng.normal(0, noise, size=(len(ys), 3))
    image[ys, xs] = np.clip(values, 0, 255).astype(np.uint8)


def render_scene(
    background: np.ndarray, objects: Sequence[Drawable], rng: np.random.Generator, background_label: int = 0
) -> Scene:
    """Paint ``objects`` in order onto a copy of ``background``; later objects occlude earlier ones."""
    if len(objects) > 254:
        raise ValueError("at most 254 objects per scene")
    height, width = background.shape[:2]
    image = background.copy()
    instance_ids = np.zeros((height, width), dtype=np.uint8)
    polygons = [np.asarray(o.polygon, dtype=float) for o in objects]
    for k, (obj, polygon) in enumerate(zip(objects, polygons), start=1):
        mask = rasterize(polygon, height, width)
        _paint(image, mask, obj.color, rng)
        instance_ids[mask] = k
    labels = np.array([background_label] + [o.label for o in objects], dtype=np.uint8)
    boxes = np.full((len(objects), 4), -1, dtype=int)
    for k in range(len(objects)):
        visible = instance_ids == k + 1
        rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
        if len(rows):
            boxes[k] = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
    return Scene(image, instance_ids, labels[instance_ids], boxes, polygons)


# --------------------------------------------------------------------------- placement


Box = tuple[float, float, float, float]


def _overlaps(a: Box, b: Box, gap: float) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def place_objects(
    rng: np.random.Generator,
    background: np.ndarray,
    shapes: Iterable[int],
    size_range: tuple[float, float],
    occupied: list[Box] | None = None,
    gap: float = 3.0,
    hue: tuple[float, float] = (0.0, 1.0),
    tries: int = 30,
    allow_overlap: bool = False,
    color: tuple[int, int, int] | None = None,
) -> list[ShapeObject]:
    """Randomly size, rotate, colour and place shapes fully inside the image.

    Boxes stay ``gap`` px apart unless ``allow_overlap``; a shape that finds no free spot in
    ``tries`` attempts is dropped. ``occupied`` (a list of boxes) is updated. ``color``: every
    object's colour (default: a random one contrasting with the background, per object).
    """
    height, width = background.shape[:2]
    occupied = occupied if occupied is not None else []
    placed = []
    for shape in shapes:
        for _ in range(tries):
            size = rng.uniform(*size_range)
            angle = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)
            aspect = rng.uniform(0.85, 1.15)
            outline = shape_polygon(shape, 0, 0, size, angle, aspect)
            lo, hi = outline.min(axis=0), outline.max(axis=0)
            x_range, y_range = (1 - lo[0], width - 1 - hi[0]), (1 - lo[1], height - 1 - hi[1])
            if x_range[0] > x_range[1] or y_range[0] > y_range[1]:
                continue
            cx, cy = rng.uniform(*x_range), rng.uniform(*y_range)
            box = (cx + lo[0], cy + lo[1], cx + hi[0], cy + hi[1])
            if not allow_overlap and any(_overlaps(box, other, gap) for other in occupied):
                continue
            occupied.append(box)
            fill = color if color is not None else contrasting_color(rng, background, hue)
            placed.append(
                ShapeObject(int(shape), float(cx), float(cy), float(size), float(angle), float(aspect), fill)
            )
            break
    return placed


def place_crowd(
    rng: np.random.Generator,
    background: np.ndarray,
    shape: int,
    count: int,
    size: float,
    occupied: list[Box],
    gap: float = 3.0,
    color: tuple[int, int, int] | None = None,
) -> list[ShapeObject]:
    """A row of ``count`` same-shape objects (one COCO ``iscrowd`` annotation), or [] if it does not fit."""
    height, width = background.shape[:2]
    slot_w, slot_h = count * size, size
    if slot_w + 2 > width or slot_h + 2 > height:
        return []
    color = color if color is not None else contrasting_color(rng, background)
    for _ in range(30):
        x0, y0 = rng.uniform(1, width - 1 - slot_w), rng.uniform(1, height - 1 - slot_h)
        box = (x0, y0, x0 + slot_w, y0 + slot_h)
        if not any(_overlaps(box, other, gap) for other in occupied):
            occupied.append(box)
            return [
                ShapeObject(int(shape), x0 + (j + 0.5) * size, y0 + size / 2, 0.9 * size, 0.0, 1.0, color)
                for j in range(count)
            ]
    return []


# --------------------------------------------------------------------------- file helpers


def _image_rng(seed: int, *key: int | str) -> np.random.Generator:
    """An independent generator per (seed, format, split, index): outputs don't depend on order or subset."""
    words = [seed] + [
        int.from_bytes(hashlib.sha256(k.encode()).digest()[:4], "little") if isinstance(k, str) else k
        for k in key
    ]
    return np.random.default_rng(words)


def save_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY)


def save_png(path: Path, array: np.ndarray) -> None:
    """RGB (H x W x 3) or grey (H x W) uint8 PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")


def save_palette_png(path: Path, indices: np.ndarray) -> None:
    """Palette ("P") PNG of uint8 indices with the VOC/DAVIS colour map."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = indices.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(indices, dtype=np.uint8).tobytes())
    image.putpalette(VOC_PALETTE.tobytes())
    image.save(path, format="PNG")


def write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def write_pickle(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=PICKLE_PROTOCOL))


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":")))


def void_boundary(ids: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels within ``width`` of a change of id (the band VOC marks 255 = void)."""
    edge = np.zeros(ids.shape, dtype=bool)
    horizontal, vertical = ids[:, 1:] != ids[:, :-1], ids[1:, :] != ids[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    for _ in range(width - 1):  # dilation by one pixel per round
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


class _Progress:
    """tqdm bar on a terminal (when tqdm is installed), otherwise a log line every ~25%."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.total, self.desc, self.done, self._next_log = total, desc, 0, 0.25
        self._bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=desc, unit="img", leave=False)
            except ImportError:
                pass
        self._log = enabled and self._bar is None

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._log and self.total and self.done / self.total >= self._next_log:
            log.info("  %s: %d/%d", self.desc, self.done, self.total)
            self._next_log += 0.25

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------- classification formats


def render_classification(
    rng: np.random.Generator, shape: int, size: int, hue: tuple[float, float] = (0.0, 1.0),
    palette: bool = False,
) -> np.ndarray:
    """One shape, 30-75% of the side across, at a random position on a plain noisy background, in
    a ``size`` px image (drawn at SUPERSAMPLE x, then reduced). Position, size and rotation are
    nuisances. Colours: random (object hue within ``hue``), or with ``palette`` one of the few
    (background, object) pairs of ``CLASSIFICATION_PALETTE``, so that colour cannot tell two images
    apart (see there)."""
    side = size * SUPERSAMPLE
    pair = CLASSIFICATION_PALETTE[int(rng.integers(len(CLASSIFICATION_PALETTE)))] if palette else None
    background = make_background(rng, side, side, color=pair[0] if pair else None, blotches=False)
    objects = place_objects(rng, background, [shape], (0.3 * side, 0.75 * side), hue=hue, tries=100)
    assert objects, "a single object always fits"
    if pair:
        objects = [dataclasses.replace(o, color=pair[1]) for o in objects]
    scene = render_scene(background, objects, rng)
    return np.asarray(Image.fromarray(scene.image).reduce(SUPERSAMPLE))


def _balanced_labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes)


def write_imagefolder(root: Path, seed: int, scale: Scale, progress: _Progress) -> None:
    shapes = range(scale.imagefolder_classes)
    for split, per_class in (
        ("train", scale.imagefolder_train_per_class),
        ("val", scale.imagefolder_val_per_class),
    ):
        for shape in shapes:
            for i in range(per_class):
                rng = _image_rng(seed, "imagefolder", split, shape, i)
                save_jpeg(
                    root / split / SHAPES[shape] / f"{i:05d}.jpg",
                    render_classification(rng, shape, scale.imagefolder_size, palette=True),
                )
                progress.update()


def _cifar_split(
    seed: int, fmt: str, split: str, n: int, classes: int, hue_bins: bool, progress: _Progress
) -> tuple[np.ndarray, np.ndarray]:
    """(N x 3072 uint8 rows in CIFAR channel-major order, labels); with hue_bins label = shape * 10 + hue."""
    labels = _balanced_labels(_image_rng(seed, fmt, split, "labels"), n, classes)
    rows = np.empty((n, 3 * 32 * 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        shape, hue_bin = (int(label) // 10, int(label) % 10) if hue_bins else (int(label), None)
        hue = (hue_bin / 10, (hue_bin + 1) / 10) if hue_bin is not None else (0.0, 1.0)
        image = render_classification(_image_rng(seed, fmt, split, i), shape, 32, hue=hue,
                                      palette=not hue_bins)
        rows[i] = image.transpose(2, 0, 1).reshape(-1)
        progress.update()
    return rows, labels


def _cifar_filenames(labels: np.ndarray, names: Sequence[str], offset: int = 0) -> list[bytes]:
    return [f"{names[label]}_s_{offset + i:06d}.png".encode() for i, label in enumerate(labels)]


def write_cifar10(root: Path, seed: int, scale: Scale, progress: _Progress) -> None:
    names = list(SHAPES[: scale.cifar10_classes])
    data, labels = _cifar_split(seed, "cifar10", "train", scale.cifar10_train, len(names), False, progress)
    chunks = np.array_split(np.arange(len(labels)), 5)
    for b, idx in enumerate(chunks, start=1):
        write_pickle(
            root / f"data_batch_{b}",
            {
                b"batch_label": f"training batch {b} of 5".encode(),
                b"labels": [int(x) for x in labels[idx]],
                b"data": data[idx],
                b"filenames": _cifar_filenames(labels[idx], names, int(idx[0]) if len(idx) else 0),
            },
        )
    test_data, test_labels = _cifar_split(
        seed, "cifar10", "test", scale.cifar10_test, len(names), False, progress
    )
    write_pickle(
        root / "test_batch",
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": [int(x) for x in test_labels],
            b"data": test_data,
            b"filenames": _cifar_filenames(test_labels, names),
        },
    )
    write_pickle(
        root / "batches.meta",
        {
            b"num_cases_per_batch": len(chunks[0]),
            b"label_names": [n.encode() for n in names],
            b"num_vis": 3 * 32 * 32,
        },
    )


def write_cifar100(root: Path, seed: int, scale: Scale, progress: _Progress) -> None:
    fine_names = [f"{shape}_{hue}" for shape in SHAPES for hue in HUE_NAMES]
    coarse_names = [f"{shape}_{half}" for shape in SHAPES for half in ("warm", "cool")]
    for split, n in (("train", scale.cifar100_train), ("test", scale.cifar100_test)):
        data, fine = _cifar_split(seed, "cifar100", split, n, len(fine_names), True, progress)
        coarse = (fine // 10) * 2 + (fine % 10 >= 5)  # hue bins 0-4 "warm", 5-9 "cool"
        write_pickle(
            root / split,
            {
                b"filenames": _cifar_filenames(fine, fine_names),
                b"batch_label": f"{'training' if split == 'train' else 'testing'} batch 1 of 1".encode(),
                b"fine_labels": [int(x) for x in fine],
                b"coarse_labels": [int(x) for x in coarse],
                b"data": data,
            },
        )
    write_pickle(
        root / "meta",
        {
            b"fine_label_names": [n.encode() for n in fine_names],
            b"coarse_label_names": [n.encode() for n in coarse_names],
        },
    )


# --------------------------------------------------------------------------- detection / segmentation formats


def _random_size(
    rng: np.random.Generator, width: tuple[int, int], height: tuple[int, int]
) -> tuple[int, int]:
    return int(rng.integers(width[0], width[1] + 1)), int(rng.integers(height[0], height[1] + 1))


def render_objects_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    n_objects: tuple[int, int],
    size_range: tuple[float, float],
) -> tuple[Scene, list[ShapeObject]]:
    """Background + n_objects[0]..n_objects[1] non-overlapping shapes of random classes (VOC scenes)."""
    background = make_background(rng, height, width)
    shapes = rng.integers(0, len(SHAPES), size=int(rng.integers(n_objects[0], n_objects[1] + 1)))
    objects = place_objects(rng, background, shapes, size_range)
    return render_scene(background, objects, rng), objects


VOC_IMAGE_WIDTH, VOC_IMAGE_HEIGHT = (160, 200), (120, 160)
VOC_DIFFICULT_PX = 20  # objects whose box is smaller than this on both sides are "difficult"


@dataclass(frozen=True)
class VOCBox:
    name: str
    box: tuple[int, int, int, int]  # xmin, ymin, xmax, ymax: 1-based, inclusive, as VOC writes them
    difficult: bool


def voc_boxes(scene: Scene, objects: Sequence[ShapeObject]) -> list[VOCBox]:
    boxes = []
    for obj, (x0, y0, x1, y1) in zip(objects, scene.boxes.tolist()):
        if x0 >= 0:
            difficult = max(x1 - x0, y1 - y0) < VOC_DIFFICULT_PX
            boxes.append(VOCBox(VOC_CLASSES[obj.shape], (x0 + 1, y0 + 1, x1, y1), difficult))
    return boxes


def _voc_xml(year: str, image_id: str, width: int, height: int, boxes: Sequence[VOCBox]) -> str:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = f"VOC{year}"
    ET.SubElement(root, "filename").text = f"{image_id}.jpg"
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = f"The VOC{year} Database"
    ET.SubElement(source, "annotation").text = f"PASCAL VOC{year}"
    ET.SubElement(source, "image").text = "synthetic"
    size = ET.SubElement(root, "size")
    for key, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, key).text = str(value)
    ET.SubElement(root, "segmented").text = "1"
    for b in boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = b.name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = str(int(b.difficult))
        bndbox = ET.SubElement(obj, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), b.box):
            ET.SubElement(bndbox, key).text = str(value)
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def _voc_year(root: Path, seed: int, year: str, splits: dict[str, int], progress: _Progress) -> None:
    """One VOC<year> folder; ``splits`` maps split name -> image count (trainval = train + val)."""
    base = root / f"VOC{year}"
    total = sum(splits.values())
    ids = [f"{i:06d}" if year == "2007" else f"{year}_{i:06d}" for i in range(1, total + 1)]
    order = _image_rng(seed, "voc", year, "splits").permutation(total)
    split_ids: dict[str, list[str]] = {}
    start = 0
    for split, n in splits.items():
        split_ids[split] = sorted(ids[j] for j in order[start : start + n])
        start += n
    split_ids["trainval"] = sorted(split_ids["train"] + split_ids["val"])
    presence: dict[str, np.ndarray] = {}  # id -> per class: 1 present, 0 only difficult, -1 absent
    for i, image_id in enumerate(ids):
        rng = _image_rng(seed, "voc", year, i)
        width, height = _random_size(rng, VOC_IMAGE_WIDTH, VOC_IMAGE_HEIGHT)
        scene, objects = render_objects_scene(rng, width, height, (1, 4), (14, 64))
        boxes = voc_boxes(scene, objects)
        save_jpeg(base / "JPEGImages" / f"{image_id}.jpg", scene.image)
        write_lines(
            base / "Annotations" / f"{image_id}.xml",
            [_voc_xml(year, image_id, width, height, boxes).rstrip("\n")],
        )
        void = void_boundary(scene.instance_ids)
        save_palette_png(
            base / "SegmentationClass" / f"{image_id}.png", np.where(void, IGNORE_INDEX, scene.class_ids)
        )
        save_palette_png(
            base / "SegmentationObject" / f"{image_id}.png", np.where(void, IGNORE_INDEX, scene.instance_ids)
        )
        flags = np.full(len(VOC_CLASSES), -1)
        for b in boxes:
            c = VOC_CLASSES.index(b.name)
            flags[c] = max(flags[c], 0 if b.difficult else 1)
        presence[image_id] = flags
        progress.update()
    for split, members in split_ids.items():
        write_lines(base / "ImageSets" / "Main" / f"{split}.txt", members)
        write_lines(base / "ImageSets" / "Segmentation" / f"{split}.txt", members)
        for c, name in enumerate(VOC_CLASSES):
            write_lines(
                base / "ImageSets" / "Main" / f"{name}_{split}.txt",
                (f"{i} {presence[i][c]:2d}" for i in members),
            )


def write_voc(root: Path, seed: int, scale: Scale, progress: _Progress) -> None:
    n7, n12 = scale.voc2007_per_split, scale.voc2012_per_split
    _voc_year(root, seed, "2007", {"train": n7, "val": n7, "test": n7}, progress)
    _voc_year(root, seed, "2012", {"train": n12, "val": n12}, progress)


COCO_IMAGE_WIDTH, COCO_IMAGE_HEIGHT = (160, 240), (120, 180)
COCO_CROWD_EVERY = 4  # every 4th image gets one iscrowd group
# objects per scene [low, high) and their size range in px: random shapes (mixed) or one theme shape
COCO_MIXED_COUNT, COCO_MIXED_SIZE = (2, 6), (16, 60)
COCO_THEMED_COUNT, COCO_THEMED_SIZE = (5, 11), (16, 50)
COCO_IMAGE_ID_OFFSET = {"train2017": 0, "val2017": 500_000}


def uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE: run lengths of the column-major mask, starting with a run of zeros."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {"counts": counts, "size": list(mask.shape)}


def _coco_split(
    root: Path, seed: int, split: str, n: int, ann_id: int, progress: _Progress, palette: bool = False,
    themed: bool = False,
) -> tuple[dict[str, Any], int]:
    """``palette``: every scene in the (background, object) colours of CLASSIFICATION_PALETTE;
    ``themed``: every scene's objects of one shape (see ``Scale.coco_themed``)."""
    from pycocotools import mask as mask_utils

    pair = CLASSIFICATION_PALETTE[0] if palette else None
    images, annotations = [], []
    for i in range(n):
        rng = _image_rng(seed, "coco", split, i)
        width, height = _random_size(rng, COCO_IMAGE_WIDTH, COCO_IMAGE_HEIGHT)
        background = make_background(rng, height, width, color=pair[0] if pair else None, blotches=not pair)
        object_color = pair[1] if pair else None
        occupied: list[Box] = []
        if themed:
            count = int(rng.integers(*COCO_THEMED_COUNT))
            shapes = np.full(count, int(rng.integers(len(SHAPES))))
        else:
            shapes = rng.integers(0, len(SHAPES), size=int(rng.integers(*COCO_MIXED_COUNT)))
        objects = place_objects(rng, background, shapes, COCO_THEMED_SIZE if themed else COCO_MIXED_SIZE,
                                occupied, color=object_color)
        crowd: list[ShapeObject] = []
        if i % COCO_CROWD_EVERY == COCO_CROWD_EVERY - 1:
            crowd = place_crowd(
                rng,
                background,
                int(rng.integers(len(SHAPES))),
                int(rng.integers(3, 5)),
                float(rng.uniform(10, 16)),
                occupied,
                color=object_color,
            )
        scene = render_scene(background, objects + crowd, rng)
        image_id = COCO_IMAGE_ID_OFFSET[split] + i + 1
        file_name = f"{image_id:012d}.jpg"
        save_jpeg(root / split / file_name, scene.image)
        images.append(
            {
                "license": 1,
                "file_name": file_name,
                "coco_url": "",
                "height": height,
                "width": width,
                "date_captured": "2017-01-01 00:00:00",
                "flickr_url": "",
                "id": image_id,
            }
        )
        for obj, polygon in zip(objects, scene.polygons):
            segmentation = [[round(float(v), 2) for v in polygon.ravel()]]
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
            x0, y0 = polygon.min(axis=0)
            x1, y1 = polygon.max(axis=0)
            ann_id += 1
            annotations.append(
                {
                    "segmentation": segmentation,
                    "area": float(mask_utils.area(rle)),
                    "iscrowd": 0,
                    "image_id": image_id,
                    "bbox": [
                        round(float(x0), 2),
                        round(float(y0), 2),
                        round(float(x1 - x0), 2),
                        round(float(y1 - y0), 2),
                    ],
                    "category_id": obj.label,
                    "id": ann_id,
                }
            )
        if crowd:
            mask = np.isin(scene.instance_ids, np.arange(len(objects) + 1, len(objects) + len(crowd) + 1))
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            # Real COCO crowds are uncompressed (list counts); alternate with the compressed string form.
            compressed = (i // COCO_CROWD_EVERY) % 2 == 1
            segmentation = (
                {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])}
                if compressed
                else uncompressed_rle(mask)
            )
            ann_id += 1
            annotations.append(
                {
                    "segmentation": segmentation,
                    "area": float(mask_utils.area(rle)),
                    "iscrowd": 1,
                    "image_id": image_id,
                    "bbox": [round(float(v), 2) for v in mask_utils.toBbox(rle)],
                    "category_id": crowd[0].label,
                    "id": ann_id,
                }
            )
        progress.update()
    document = {
        "info": {
            "description": "ssl-repro synthetic shapes in COCO format",
            "url": "",
            "version": "1.0",
            "year": 2017,
            "contributor": "pretrain.data.synthetic",
            "date_created": "2017/09/01",
        },
        "licenses": [
            {"url": "https://creativecommons.org/publicdomain/zero/1.0/", "id": 1, "name": "CC0 1.0"}
        ],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"supercategory": "shape", "id": s + 1, "name": name} for s, name in enumerate(SHAPES)
        ],
    }
    write_json(root / "annotations" / f"instances_{split}.json", document)
    return document, ann_id


def write_coco(root: Path, seed: int, scale: Scale, progress: _Progress) -> None:
    options = dict(palette=scale.coco_palette, themed=scale.coco_themed)
    _, last_id = _coco_split(root, seed, "train2017", scale.coco_train, 0, progress, **options)
    _coco_split(root, seed, "val2017", scale.coco_val, last_id, progress, **options)


# --------------------------------------------------------------------------- video / street formats


DAVIS_MAX_PAN_PX = 24


def _davis_sequence(root: Path, seed: int, index: int, scale: Scale, progress: _Progress) -> str:
    """Write one sequence of 1-3 shapes moving along linear paths with a sinusoidal wobble."""
    rng = _image_rng(seed, "davis", index)
    width, height = scale.davis_size
    pan = int(rng.integers(0, DAVIS_MAX_PAN_PX + 1))
    canvas = make_background(rng, height, width + pan)
    shapes = rng.integers(0, len(SHAPES), size=int(rng.integers(1, 4)))
    objects = place_objects(rng, canvas[:, :width], shapes, (0.2 * height, 0.4 * height), allow_overlap=True)
    name = "-".join(SHAPES[o.shape] for o in objects) + f"-{index:02d}"
    margin = np.array([[o.size * 0.6] for o in objects])  # keep each object inside the frame
    start = np.array([[o.cx, o.cy] for o in objects])
    # head roughly towards the frame centre so that clipping at the border rarely stops the motion
    to_centre = np.arctan2(height / 2 - start[:, 1], width / 2 - start[:, 0])
    heading = to_centre + rng.uniform(-np.pi / 3, np.pi / 3, len(objects))
    distance = rng.uniform(0.25, 0.6, len(objects)) * width
    end = np.clip(
        start + distance[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1),
        margin,
        [width, height] - margin,
    )
    wobble, freq, phase = (
        rng.uniform(0, 6, len(objects)),
        rng.uniform(0.5, 2, len(objects)),
        rng.uniform(0, 2 * np.pi, len(objects)),
    )
    spin = rng.uniform(-30, 30, len(objects))
    frames = scale.davis_frames
    for t in range(frames):
        u = t / max(frames - 1, 1)
        centres = start + u * (end - start)
        centres[:, 1] += wobble * np.sin(2 * np.pi * freq * u + phase)
        centres = np.clip(centres, margin, [width, height] - margin)
        moved = [
            dataclasses.replace(o, cx=c[0], cy=c[1], angle=o.angle + u * s)
            for o, c, s in zip(objects, centres, spin)
        ]
        offset = int(round(u * pan))
        scene = render_scene(
            np.ascontiguousarray(canvas[:, offset : offset + width]),
            moved,
            _image_rng(seed, "davis", index, t),
        )
        save_jpeg(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", scene.image)
        save_palette_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", scene.instance_ids)
        progress.update()
    return name


def write_davis(root: Path, seed: int, scale: Scale, progress: _Progress) -> None:
    n_train = scale.davis_train
    names = [_davis_sequence(root, seed, i, scale, progress) for i in range(n_train + scale.davis_val)]
    write_lines(root / "ImageSets" / "2017" / "train.txt", sorted(names[:n_train]))
    write_lines(root / "ImageSets" / "2017" / "val.txt", sorted(names[n_train:]))


# Cityscapes label ids (cityscapesscripts labels.py).
CS_EGO_VEHICLE, CS_ROAD, CS_SIDEWALK, CS_BUILDING, CS_FENCE, CS_POLE = 1, 7, 8, 11, 13, 17
CS_TRAFFIC_SIGN, CS_VEGETATION, CS_TERRAIN, CS_SKY, CS_PERSON, CS_CAR = 20, 21, 22, 23, 24, 26


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def _jitter(rng: np.random.Generator, color: Sequence[int], amount: int = 20) -> tuple[int, int, int]:
    jittered = np.clip(np.asarray(color) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return tuple(int(c) for c in jittered)  # type: ignore[return-value]


def cityscapes_regions(rng: np.random.Generator, width: int, height: int) -> list[Region]:
    """Street scene, back to front: sky, buildings, trees, sidewalk, road, poles, cars, people, ego car."""
    horizon = rng.uniform(0.42, 0.5) * height
    kerb = horizon + 0.08 * height
    regions = [Region(_rect(0, 0, width, kerb), _jitter(rng, (120, 160, 210)), CS_SKY)]
    x = -rng.uniform(0, 20)
    while x < width:
        w = rng.uniform(0.08, 0.2) * width
        if rng.random() < 0.3:  # a tree instead of a building
            r = w / 2
            radius = r * (
                1 + 0.12 * np.sin(np.linspace(0, 2 * np.pi, 24, endpoint=False) * 5 + rng.uniform(0, 6))
            )
            crown = _regular(24) * radius[:, None] + [x + r, kerb - r - rng.uniform(0, 0.1) * height]
            regions.append(Region(crown, _jitter(rng, (70, 120, 50)), CS_VEGETATION))
        else:
            regions.append(
                Region(
                    _rect(x, rng.uniform(0.08, 0.35) * height, x + w, kerb),
                    _jitter(rng, (130, 110, 100), 30),
                    CS_BUILDING,
                )
            )
        x += w
    if rng.random() < 0.5:
        regions.append(
            Region(_rect(0, kerb - 0.05 * height, width, kerb), _jitter(rng, (150, 140, 120)), CS_FENCE)
        )
    regions.append(Region(_rect(0, kerb, width, height), _jitter(rng, (170, 165, 160)), CS_SIDEWALK))
    if rng.random() < 0.5:
        regions.append(Region(_rect(0, kerb, 0.15 * width, height), _jitter(rng, (110, 140, 70)), CS_TERRAIN))
    road = np.array([[0.3 * width, kerb], [0.7 * width, kerb], [1.3 * width, height], [-0.3 * width, height]])
    regions.append(Region(road, _jitter(rng, (90, 90, 95)), CS_ROAD))
    for _ in range(int(rng.integers(1, 4))):
        px = rng.uniform(0, width)
        top = rng.uniform(0.15, 0.3) * height
        regions.append(
            Region(_rect(px, top, px + 2.5, kerb + 0.06 * height), _jitter(rng, (80, 80, 80)), CS_POLE)
        )
        if rng.random() < 0.7:
            regions.append(
                Region(
                    _rect(px - 4, top - 3, px + 6.5, top + 7), _jitter(rng, (220, 200, 40)), CS_TRAFFIC_SIGN
                )
            )
    for _ in range(int(rng.integers(1, 4))):
        bottom = rng.uniform(kerb + 0.1 * height, height - 0.08 * height)
        w = (bottom - horizon) * rng.uniform(0.9, 1.3)
        x0 = rng.uniform(-0.2 * w, width - 0.8 * w)
        body = _rect(x0, bottom - 0.3 * w, x0 + w, bottom - 0.08 * w)
        cabin = np.array(
            [
                [x0 + 0.2 * w, bottom - 0.3 * w],
                [x0 + 0.3 * w, bottom - 0.5 * w],
                [x0 + 0.7 * w, bottom - 0.5 * w],
                [x0 + 0.8 * w, bottom - 0.3 * w],
            ]
        )
        color = random_color(rng)
        regions += [Region(cabin, color, CS_CAR), Region(body, color, CS_CAR)]
        regions += [
            Region(_regular(12, 0.1 * w) + [x0 + f * w, bottom - 0.1 * w], (25, 25, 25), CS_CAR)
            for f in (0.22, 0.78)
        ]
    for _ in range(int(rng.integers(1, 4))):
        feet = rng.uniform(kerb + 0.02 * height, kerb + 0.12 * height)
        h = (feet - horizon) * rng.uniform(1.4, 1.9)
        cx = rng.uniform(0, width)
        body = np.array(
            [
                [cx - 0.12 * h, feet - 0.8 * h],
                [cx + 0.12 * h, feet - 0.8 * h],
                [cx + 0.1 * h, feet],
                [cx - 0.1 * h, feet],
            ]
        )
        head = _regular(10, 0.1 * h) + [cx, feet - 0.9 * h]
        color = random_color(rng)
        regions += [Region(body, color, CS_PERSON), Region(head, (225, 190, 160), CS_PERSON)]
    hood = np.concatenate(
        [
            _arc(width / 2, height + 0.9 * width, 0.9 * width + 0.06 * height, np.pi * 1.2, np.pi * 1.8, 24),
            [[width, height], [0, height]],
        ]
    )
    regions.append(Region(hood, (30, 30, 35), CS_EGO_VEHICLE))
    return regions


def write_cityscapes(root: Path, seed: int, scale: Scale, progress: _Progress) -> None:
    width, height = scale.cityscapes_size
    for split, cities in (("train", scale.cityscapes_train), ("val", scale.cityscapes_val)):
        for city, count in cities:
            for i in range(count):
                rng = _image_rng(seed, "cityscapes", split, city, i)
                background = np.zeros(
                    (height, width, 3), dtype=np.uint8
                )  # fully covered by the sky..road layers
                scene = render_scene(background, cityscapes_regions(rng, width, height), rng)
                stem = f"{city}_{i:06d}_{19:06d}"  # real annotated frames are the 20th (000019) of a snippet
                save_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", scene.image)
                gt = root / "gtFine" / split / city
                save_png(gt / f"{stem}_gtFine_labelIds.png", scene.class_ids)
                save_png(gt / f"{stem}_gtFine_labelTrainIds.png", cityscapes_train_ids(scene.class_ids))
                progress.update()


# --------------------------------------------------------------------------- driver


WRITERS: dict[str, Callable[[Path, int, Scale, _Progress], None]] = {
    "imagefolder": write_imagefolder,
    "cifar10": write_cifar10,
    "cifar100": write_cifar100,
    "voc": write_voc,
    "coco": write_coco,
    "davis": write_davis,
    "cityscapes": write_cityscapes,
}


def _item_count(fmt: str, scale: Scale) -> int:
    s = scale
    return {
        "imagefolder": s.imagefolder_classes * (s.imagefolder_train_per_class + s.imagefolder_val_per_class),
        "cifar10": s.cifar10_train + s.cifar10_test,
        "cifar100": s.cifar100_train + s.cifar100_test,
        "voc": 3 * s.voc2007_per_split + 2 * s.voc2012_per_split,
        "coco": s.coco_train + s.coco_val,
        "davis": (s.davis_train + s.davis_val) * s.davis_frames,
        "cityscapes": sum(n for _, n in s.cityscapes_train + s.cityscapes_val),
    }[fmt]


def _code_version() -> str:
    """Hash of this module's source and of the PIL/numpy versions: outputs change only if these do."""
    source = Path(__file__).read_bytes() + Path(__file__).with_name("readers.py").read_bytes()
    versions = f"{np.__version__}/{Image.__version__}".encode()
    return hashlib.sha256(source + versions).hexdigest()[:16]


def _marker(
    fmt: str, seed: int, scale: str, coco_colors: str = "random", coco_layout: str = "mixed"
) -> dict[str, Any]:
    marker = {"generator": __name__, "format": fmt, "seed": seed, "scale": scale, "version": _code_version()}
    if fmt == "coco" and coco_colors != "random":
        marker["coco_colors"] = coco_colors
    if fmt == "coco" and coco_layout != "mixed":
        marker["coco_layout"] = coco_layout
    return marker


def _read_marker(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def _staging(root: Path) -> Iterator[Path]:
    """Write into a sibling temp folder, then swap it in place of ``root``."""
    staging = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def generate(
    out_dir: str | os.PathLike[str],
    formats: Sequence[str] | None = None,
    seed: int = 0,
    scale: str = "smoke",
    force: bool = False,
    progress: bool = True,
    coco_colors: str = "random",
    coco_layout: str = "mixed",
) -> dict[str, Path]:
    """Generate ``formats`` (default: all) under ``out_dir``; return format -> dataset root.

    ``coco_colors``: ``random`` (a random background and object colours per scene) or ``palette``
    (every COCO scene in the shape sets' one colour pair; see ``Scale.coco_palette``).
    ``coco_layout``: ``mixed`` (2-5 objects of random shapes per scene) or ``themed`` (5-10
    objects of one shape per scene; see ``Scale.coco_themed``).

    A format whose folder carries a matching ``.complete`` marker is skipped unless ``force``.
    A folder without any marker (not made here) is never overwritten: FileExistsError.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {sorted(SCALES)}")
    if coco_colors not in COCO_COLORS:
        raise ValueError(f"unknown coco_colors {coco_colors!r}; choose from {list(COCO_COLORS)}")
    if coco_layout not in COCO_LAYOUTS:
        raise ValueError(f"unknown coco_layout {coco_layout!r}; choose from {list(COCO_LAYOUTS)}")
    sizes = dataclasses.replace(SCALES[scale], coco_palette=coco_colors == "palette",
                                coco_themed=coco_layout == "themed")
    formats = list(FORMATS if formats is None else formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown formats {unknown}; choose from {list(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    roots = {}
    for fmt in formats:
        root = out / FORMAT_DIRS[fmt]
        roots[fmt] = root
        wanted = _marker(fmt, seed, scale, coco_colors, coco_layout)
        found = _read_marker(root)
        if found == wanted and not force:
            log.info("%-11s up to date: %s", fmt, root)
            continue
        if root.exists() and found is None and any(root.iterdir()):
            raise FileExistsError(
                f"{root} exists and was not made by {__name__}; remove it or pick another --out"
            )
        started = time.perf_counter()
        bar = _Progress(_item_count(fmt, sizes), fmt, progress)
        with _staging(root) as staging:
            WRITERS[fmt](staging, seed, sizes, bar)
            (staging / MARKER).write_text(json.dumps(wanted, sort_keys=True) + "\n")
        bar.close()
        log.info("%-11s %5d items in %5.1f s -> %s", fmt, bar.done, time.perf_counter() - started, root)
    return roots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pretrain.data.synthetic",
        description="Generate small deterministic shape datasets in the real on-disk layouts "
        "(ImageFolder, CIFAR-10/100 pickles, VOC2007/2012, COCO 2017, DAVIS 2017, Cityscapes).",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per format)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed (default 0); same seed -> same bytes"
    )
    parser.add_argument(
        "--formats", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}"
    )
    parser.add_argument(
        "--scale", default="smoke", choices=sorted(SCALES), help="dataset sizes (default smoke)"
    )
    parser.add_argument(
        "--coco-colors", default="random", choices=COCO_COLORS,
        help="COCO scenes: a random background and object colours per image (default), or all in one "
        "(background, object) colour pair, as the shape sets (palette: scenes whose objects, not "
        "their colours, tell images apart; Revisiting's smoke check on COCO-format scenes)",
    )
    parser.add_argument(
        "--coco-layout", default="mixed", choices=COCO_LAYOUTS,
        help="COCO scenes: 2-5 objects of random shapes (default), or 5-10 objects of one theme shape "
        "per scene (themed: every part of a scene shows what the whole does; Revisiting's multi-crop "
        "smoke check)",
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if an up-to-date copy exists")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="[synthetic] %(message)s"
    )
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    try:
        started = time.perf_counter()
        roots = generate(
            args.out, formats, seed=args.seed, scale=args.scale, force=args.force, progress=not args.quiet,
            coco_colors=args.coco_colors, coco_layout=args.coco_layout,
        )
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))
    log.info(
        "done in %.1f s: %s", time.perf_counter() - started, ", ".join(f"{k}={v}" for k, v in roots.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
