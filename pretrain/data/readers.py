"""Readers for the original on-disk layouts of the datasets the suite uses.

The same code reads the real datasets and the generated ones
(:mod:`pretrain.data.synthetic`). Every problem with the data raises
:class:`DatasetError`, whose message names the file or folder at fault.

Layouts:

* ``ImageFolder``: ``root/<split>/<class>/<image>`` in a directory or a ``.zip``.
* ``ImageList``: unlabelled images (pretraining): every image under ``root/<split>`` (e.g.
  COCO ``train2017/``, BDD100K ``images/100k/train/``) or the files named by a list file
  (subsets such as IN-118K, IN-118K-LT, OI-118K).
* ``CIFAR``: the python-pickle batches (``cifar-10-batches-py``, ``cifar-100-python``).
* ``TinyImageNet``: ``wnids.txt``, ``train/<wnid>/images``, ``val/images`` + ``val_annotations.txt``.
* ``VOC``: ``VOCdevkit/VOC<year>`` with ``Annotations``, ``JPEGImages``, ``SegmentationClass``, ``ImageSets``.
* ``COCOInstances``: ``annotations/instances_<split>.json`` and ``<split>/<12-digit id>.jpg``.
* ``DAVIS``: ``JPEGImages/<res>/<seq>``, ``Annotations/<res>/<seq>``, ``ImageSets/<year>/<split>.txt``.
* ``Cityscapes``: ``leftImg8bit/<split>/<city>`` and ``gtFine/<split>/<city>`` (``labelTrainIds``).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from PIL import Image

__all__ = [
    "CIFAR",
    "CITYSCAPES_ID_TO_TRAIN_ID",
    "CITYSCAPES_TRAIN_CLASSES",
    "COCOInstances",
    "Cityscapes",
    "DAVIS",
    "DAVISSequence",
    "DatasetError",
    "IMAGE_EXTENSIONS",
    "IGNORE_INDEX",
    "ImageFolder",
    "ImageList",
    "TinyImageNet",
    "VOC",
    "VOCObject",
    "VOC_CLASSES",
    "VOC_PALETTE",
    "cityscapes_train_ids",
    "load_image",
    "load_index_mask",
    "parse_voc_xml",
]

PathLike = str | os.PathLike[str]
Transform = Callable[[Image.Image], Any]
JointTransform = Callable[[Image.Image, np.ndarray], Any]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # compared case-insensitively
IGNORE_INDEX = 255  # "void" in VOC masks, "ignore" in Cityscapes train ids

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip


def _voc_palette() -> np.ndarray:
    """The standard PASCAL VOC colour map (also DAVIS'): bit j of channel c is bit 3j+c of the index."""
    index = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.int64)
    for j in range(8):
        for c in range(3):
            palette[:, c] |= ((index >> (3 * j + c)) & 1) << (7 - j)
    return palette.astype(np.uint8)


VOC_PALETTE = _voc_palette()

# Official cityscapesscripts table: label id -> train id for the 19 evaluated classes.
_CITYSCAPES_TRAIN_LABELS = (
    (7, "road"), (8, "sidewalk"), (11, "building"), (12, "wall"), (13, "fence"), (17, "pole"),
    (19, "traffic light"), (20, "traffic sign"), (21, "vegetation"), (22, "terrain"), (23, "sky"),
    (24, "person"), (25, "rider"), (26, "car"), (27, "truck"), (28, "bus"), (31, "train"),
    (32, "motorcycle"), (33, "bicycle"),
)  # fmt: skip
CITYSCAPES_TRAIN_CLASSES = tuple(name for _, name in _CITYSCAPES_TRAIN_LABELS)
CITYSCAPES_ID_TO_TRAIN_ID = np.full(256, IGNORE_INDEX, dtype=np.uint8)
CITYSCAPES_ID_TO_TRAIN_ID[[label_id for label_id, _ in _CITYSCAPES_TRAIN_LABELS]] = np.arange(
    len(_CITYSCAPES_TRAIN_LABELS)
)


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map Cityscapes label ids (uint8 array) to train ids 0..18, 255 for the rest."""
    return CITYSCAPES_ID_TO_TRAIN_ID[np.asarray(label_ids, dtype=np.uint8)]


class DatasetError(Exception):
    """A dataset is missing, incomplete or corrupt; the message names the path at fault."""


# --------------------------------------------------------------------------- files


def load_image(source: PathLike | bytes, name: str | None = None) -> Image.Image:
    """Decode an image file (or its bytes, e.g. read from a zip) to an RGB PIL image.

    ``name`` is used in error messages; it defaults to the path.
    """
    label = name if name is not None else str(source if not isinstance(source, bytes) else "<bytes>")
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise DatasetError(f"missing image {label}")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            return image.convert("RGB")  # convert() forces the full decode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot decode image {label}: {exc}") from exc


def load_index_mask(path: PathLike) -> np.ndarray:
    """Read a palette ("P") or greyscale ("L") PNG as a uint8 array of indices (never RGB colours)."""
    if not Path(path).is_file():
        raise DatasetError(f"missing mask {path}")
    try:
        with Image.open(path) as mask:
            if mask.mode not in ("P", "L"):
                raise DatasetError(
                    f"mask {path} has mode {mask.mode!r}; expected a palette (P) or grey (L) PNG"
                )
            return np.array(mask, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot decode mask {path}: {exc}") from exc


def _check_same_size(image: Image.Image, mask: np.ndarray, image_path: object, mask_path: object) -> None:
    if mask.shape[:2] != (image.height, image.width):
        raise DatasetError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is "
            f"{image.width}x{image.height}"
        )


def _read_lines(path: Path, what: str) -> list[str]:
    """Non-empty, stripped lines of a text file; a missing file is a DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(f"missing {what} {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"missing {what} {path}")
    return path


def _is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


class _Tree:
    """Read-only view of a directory or a zip archive, with POSIX-style relative names.

    The zip is opened lazily and reopened in each process, so datasets built on it can be used
    by DataLoader workers (fork or spawn) and pickled.
    """

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise DatasetError(f"dataset root not found: {self.root}")
        self.is_zip = self.root.is_file()
        # zip only: folder ("" = top) -> sorted files in it / names of its sub-folders
        self._files: dict[str, list[str]] = {}
        self._dirs: dict[str, set[str]] = {}
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.root) as archive:
                    names = sorted(n for n in archive.namelist() if not n.endswith("/"))
            except (zipfile.BadZipFile, OSError) as exc:
                raise DatasetError(
                    f"dataset root {self.root} is neither a directory nor a readable zip: {exc}"
                ) from exc
            for name in names:
                parts = name.split("/")
                for depth in range(len(parts) - 1):
                    self._dirs.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
                self._files.setdefault("/".join(parts[:-1]), []).append(name)
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = state["_zip_pid"] = None
        return state

    def describe(self, name: str) -> str:
        """Path for messages: ``root/name`` (for a zip, the member inside the archive)."""
        return f"{self.root}/{name}" if name else str(self.root)

    def isdir(self, name: str) -> bool:
        name = name.strip("/")
        return (self.root / name).is_dir() if not self.is_zip else name in self._dirs or name in self._files

    def isfile(self, name: str) -> bool:
        if not self.is_zip:
            return (self.root / name).is_file()
        return name in self._files.get(name.rsplit("/", 1)[0] if "/" in name else "", ())

    def subdirs(self, name: str) -> list[str]:
        """Sorted names of the immediate sub-folders of ``name`` (hidden ones and __MACOSX skipped)."""
        name = name.strip("/")
        if self.is_zip:
            children: Iterable[str] = self._dirs.get(name, ())
        else:
            children = (p.name for p in (self.root / name).iterdir() if p.is_dir())
        return sorted(c for c in children if not c.startswith(".") and c != "__MACOSX")

    def files(self, name: str) -> list[str]:
        """Sorted names (relative to the root) of the files directly inside folder ``name``."""
        name = name.strip("/")
        if self.is_zip:
            return list(self._files.get(name, []))
        return sorted(
            f"{name}/{p.name}" if name else p.name for p in (self.root / name).iterdir() if p.is_file()
        )

    def top_prefix(self, marker: str, what: str) -> str:
        """Prefix of ``marker`` (file or folder): "" at the root, "<top>/" in a single top-level folder."""
        if self.isfile(marker) or self.isdir(marker):
            return ""
        tops = self.subdirs("")
        if len(tops) == 1 and (self.isfile(f"{tops[0]}/{marker}") or self.isdir(f"{tops[0]}/{marker}")):
            return f"{tops[0]}/"
        raise DatasetError(
            f"missing {what} {self.describe(marker)} (looked at the top and in a single top-level folder)"
        )

    def read(self, name: str) -> bytes:
        if not self.is_zip:
            path = self.root / name
            if not path.is_file():
                raise DatasetError(f"missing file {path}")
            return path.read_bytes()
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.root)
            self._zip_pid = os.getpid()
        try:
            return self._zip.read(name)
        except KeyError as exc:
            raise DatasetError(f"missing file {self.describe(name)}") from exc
        except (zipfile.BadZipFile, OSError, zlib.error) as exc:
            raise DatasetError(f"cannot read {self.describe(name)}: {exc}") from exc

    def image(self, name: str) -> Image.Image:
        if not self.is_zip:
            return load_image(self.root / name)
        return load_image(self.read(name), name=self.describe(name))

    def text_lines(self, name: str, what: str) -> list[str]:
        if not self.isfile(name):
            raise DatasetError(f"missing {what} {self.describe(name)}")
        return [line.strip() for line in self.read(name).decode().splitlines() if line.strip()]


class _ClassificationDataset:
    """Shared ``__len__``/``__getitem__`` for (image, label) datasets over a :class:`_Tree`."""

    _tree: _Tree
    samples: list[tuple[str, int]]
    transform: Transform | None

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        name, label = self.samples[index]
        image = self._tree.image(name)
        return (self.transform(image) if self.transform else image), label


# --------------------------------------------------------------------------- classification


class ImageFolder(_ClassificationDataset):
    """``root/<split>/<class>/<image>``; ``root`` is a directory or a zip (maybe with one top-level folder).

    ``split=None`` means the class folders sit directly in ``root``. ``max_per_class`` keeps the
    first N images of each class in sorted order. ``classes`` restricts the dataset to a class
    list (e.g. ImageNet-100): a list of folder names or the path of a file with one per line;
    labels follow the list's sorted order. ``samples`` holds (name relative to root, label).
    """

    def __init__(
        self,
        root: PathLike,
        split: str | None = "train",
        transform: Transform | None = None,
        max_per_class: int | None = None,
        classes: Sequence[str] | PathLike | None = None,
    ) -> None:
        self._tree = _Tree(root)
        self.root = self._tree.root
        self.split = split
        self.transform = transform
        base = self._tree.top_prefix(split, "split folder") + split if split else ""
        self.classes = self._tree.subdirs(base)
        if not self.classes:
            raise DatasetError(f"no class folders in {self._tree.describe(base)}")
        if classes is not None:
            wanted = _read_lines(Path(classes), "class list") if isinstance(classes, (str, Path)) else list(classes)
            missing = sorted(set(wanted) - set(self.classes))
            if missing:
                raise DatasetError(f"class list names {len(missing)} folders absent from "
                                   f"{self._tree.describe(base)}: {', '.join(missing[:10])}")
            self.classes = sorted(set(wanted))
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.samples = []
        for name in self.classes:
            folder = f"{base}/{name}" if base else name
            images = [f for f in self._tree.files(folder) if _is_image_name(f)]
            if not images:
                raise DatasetError(f"no images in class folder {self._tree.describe(folder)}")
            self.samples += [(f, self.class_to_idx[name]) for f in images[:max_per_class]]


class ImageList(_ClassificationDataset):
    """Unlabelled images for pretraining (label 0): every image file under ``root/<split>``
    (searched recursively, sorted; ``split=None``: under ``root``), or, with ``list``, the
    files named one per line in that text file, relative to ``root`` (a subset list; order
    kept, a missing file is an error naming it). ``root`` is a directory or a zip."""

    def __init__(
        self,
        root: PathLike,
        split: str | None = "train",
        transform: Transform | None = None,
        list: PathLike | None = None,  # noqa: A002  (the config key)
    ) -> None:
        self._tree = _Tree(root)
        self.root, self.split, self.transform = self._tree.root, split, transform
        if list is not None:
            names = _read_lines(Path(list), "image list")
            missing = [n for n in names if not self._tree.isfile(n)]
            if missing:
                raise DatasetError(f"image list {list} names {len(missing)} files absent from "
                                   f"{self._tree.describe('')}: {', '.join(missing[:5])}")
        else:
            base = self._tree.top_prefix(split, "image folder") + split if split else ""
            names, folders = [], [base]
            while folders:
                folder = folders.pop()
                names += [f for f in self._tree.files(folder) if _is_image_name(f)]
                folders += [f"{folder}/{d}" if folder else d for d in self._tree.subdirs(folder)]
            names.sort()
            if not names:
                raise DatasetError(f"no images under {self._tree.describe(base)}")
        self.samples = [(name, 0) for name in names]


class TinyImageNet(_ClassificationDataset):
    """Tiny-ImageNet layout in a directory or zip; classes in ``wnids.txt`` order."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self._tree = _Tree(root)
        self.root = self._tree.root
        self.split = split
        self.transform = transform
        top = self._tree.top_prefix("wnids.txt", "class list")
        self.classes = self._tree.text_lines(f"{top}wnids.txt", "class list")
        self.class_to_idx = {wnid: i for i, wnid in enumerate(self.classes)}
        self.samples = []
        if split == "train":
            for wnid in self.classes:
                folder = f"{top}train/{wnid}/images"
                images = (
                    [f for f in self._tree.files(folder) if _is_image_name(f)]
                    if self._tree.isdir(folder)
                    else []
                )
                if not images:
                    raise DatasetError(f"no images in {self._tree.describe(folder)}")
                self.samples += [(f, self.class_to_idx[wnid]) for f in images]
        else:
            table = f"{top}val/val_annotations.txt"
            for line in self._tree.text_lines(table, "annotation file"):
                fields = line.split("\t")
                if len(fields) < 2 or fields[1] not in self.class_to_idx:
                    raise DatasetError(f"bad line in {self._tree.describe(table)}: {line!r}")
                name = f"{top}val/images/{fields[0]}"
                if not self._tree.isfile(name):
                    raise DatasetError(f"missing image {self._tree.describe(name)} (listed in {table})")
                self.samples.append((name, self.class_to_idx[fields[1]]))
            self.samples.sort()
        if not self.samples:
            raise DatasetError(f"empty dataset: {self._tree.describe(top + split)}")


@dataclass(frozen=True)
class _CIFARLayout:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str


_CIFAR_LAYOUTS = {
    "cifar10": _CIFARLayout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
    ),
    "cifar100": _CIFARLayout(
        "cifar-100-python", ("train",), ("test",), "meta", "fine_labels", "fine_label_names"
    ),
}


def _load_pickle(path: Path) -> dict[str, Any]:
    """Load a CIFAR pickle (python-2 style, bytes keys) into a dict with str keys."""
    if not path.is_file():
        raise DatasetError(f"missing CIFAR file {path}")
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise DatasetError(f"cannot unpickle {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"{path} does not hold a dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _decode_names(names: Sequence[Any]) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


class CIFAR:
    """CIFAR-10/100 from the python-pickle batches (no checksum test, unlike torchvision).

    ``root`` is the batches folder or its parent. ``data`` is uint8 N x 32 x 32 x 3 (HWC);
    for CIFAR-100 ``targets`` are the fine labels and ``coarse_targets`` the coarse ones.
    """

    def __init__(
        self, root: PathLike, name: str = "cifar10", train: bool = True, transform: Transform | None = None
    ) -> None:
        if name not in _CIFAR_LAYOUTS:
            raise ValueError(f"name must be one of {sorted(_CIFAR_LAYOUTS)}, got {name!r}")
        layout = _CIFAR_LAYOUTS[name]
        label_key = layout.label_key
        root = Path(root)
        if not root.exists():
            raise DatasetError(f"dataset root not found: {root}")
        self.root = root / layout.folder if (root / layout.folder).is_dir() else root
        self.name = name
        self.train = train
        self.transform = transform
        arrays, targets, coarse = [], [], []
        for file in layout.train_files if train else layout.test_files:
            path = self.root / file
            batch = _load_pickle(path)
            if "data" not in batch or label_key not in batch:
                raise DatasetError(f"{path} lacks the keys 'data' and {label_key!r}")
            data = np.asarray(batch["data"])
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise DatasetError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 N x 3072")
            if len(batch[label_key]) != len(data):
                raise DatasetError(f"{path}: {len(batch[label_key])} labels for {len(data)} images")
            arrays.append(data)
            targets += [int(t) for t in batch[label_key]]
            coarse += [int(t) for t in batch.get("coarse_labels", [])]
        # Rows are channel-major (1024 R, 1024 G, 1024 B), each channel row-major.
        self.data = np.concatenate(arrays).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        self.targets: list[int] = targets
        self.coarse_targets: list[int] | None = coarse or None
        meta = _load_pickle(self.root / layout.meta_file)
        if layout.names_key not in meta:
            raise DatasetError(f"{self.root / layout.meta_file} lacks the key {layout.names_key!r}")
        self.classes = _decode_names(meta[layout.names_key])
        self.coarse_classes = (
            _decode_names(meta["coarse_label_names"]) if "coarse_label_names" in meta else None
        )
        if not len(self.data):
            raise DatasetError(f"empty dataset: {self.root}")
        if max(self.targets) >= len(self.classes) or min(self.targets) < 0:
            raise DatasetError(f"{self.root}: labels outside 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.data[index])
        return (self.transform(image) if self.transform else image), self.targets[index]


STL10_SIDE = 96


class STL10:
    """STL-10 from its binary release ``stl10_binary/`` (``{train,test,unlabeled}_X.bin``,
    ``{train,test}_y.bin``, ``class_names.txt``): each image is 3 x 96 x 96 uint8 stored
    column-major; labels are 1..10 on disk, 0..9 here, and -1 for the unlabeled split.
    ``split`` is ``train``, ``test``, ``unlabeled`` or ``train+unlabeled`` (SSL pretraining).
    The image files are memory-mapped, so the 2.7 GB unlabeled set is not read into memory.
    """

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None) -> None:
        root = Path(root)
        if not root.exists():
            raise DatasetError(f"dataset root not found: {root}")
        self.root = root / "stl10_binary" if (root / "stl10_binary").is_dir() else root
        parts = split.split("+")
        if not parts or any(p not in ("train", "test", "unlabeled") for p in parts):
            raise ValueError(f"STL-10 split must be train, test, unlabeled or train+unlabeled, got {split!r}")
        self.transform = transform
        self._images, self.targets = [], []
        for part in parts:
            path = self.root / f"{part}_X.bin"
            if not path.is_file():
                raise DatasetError(f"STL-10 file missing: {path}")
            size = path.stat().st_size
            if size % (3 * STL10_SIDE * STL10_SIDE):
                raise DatasetError(f"{path}: {size} bytes is not a whole number of 3x96x96 images")
            images = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, STL10_SIDE, STL10_SIDE)
            if part == "unlabeled":
                labels = [-1] * len(images)
            else:
                label_path = self.root / f"{part}_y.bin"
                if not label_path.is_file():
                    raise DatasetError(f"STL-10 file missing: {label_path}")
                labels = [int(v) - 1 for v in np.fromfile(label_path, dtype=np.uint8)]
                if len(labels) != len(images) or min(labels) < 0 or max(labels) > 9:
                    raise DatasetError(f"{label_path}: {len(labels)} labels in 1..10 expected for "
                                       f"{len(images)} images")
            self._images.append(images)
            self.targets += labels
        names = self.root / "class_names.txt"
        self.classes = _read_lines(names, "STL-10 class names") if names.is_file() else [str(i) for i in range(10)]
        self._offsets = np.cumsum([0] + [len(a) for a in self._images])
        if not len(self.targets):
            raise DatasetError(f"empty dataset: {self.root} ({split})")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        part = int(np.searchsorted(self._offsets, index, side="right")) - 1
        chw = self._images[part][index - self._offsets[part]]
        image = Image.fromarray(np.ascontiguousarray(chw.transpose(2, 1, 0)))  # column-major -> HWC
        return (self.transform(image) if self.transform else image), self.targets[index]


# --------------------------------------------------------------------------- PASCAL VOC


@dataclass(frozen=True)
class VOCObject:
    """A VOC XML ``<object>``; ``box`` is (xmin, ymin, xmax, ymax) as written: 1-based, inclusive."""

    name: str
    label: int  # index into VOC_CLASSES
    box: tuple[float, float, float, float]
    difficult: bool
    truncated: bool


class VOC:
    """PASCAL VOC ``VOC<year>`` folder (``root`` is it or the VOCdevkit above it).

    ``task="detection"`` lists ``ImageSets/Main/<split>.txt`` and yields (image, [VOCObject]);
    ``task="segmentation"`` lists ``ImageSets/Segmentation/<split>.txt`` and yields
    (image, uint8 class-index mask with 255 = void), or ``transforms(image, mask)``.
    """

    def __init__(
        self,
        root: PathLike,
        year: str = "2007",
        split: str = "trainval",
        task: str = "detection",
        transforms: JointTransform | None = None,
    ) -> None:
        if task not in ("detection", "segmentation"):
            raise ValueError(f"task must be 'detection' or 'segmentation', got {task!r}")
        root = Path(root)
        if not root.exists():
            raise DatasetError(f"dataset root not found: {root}")
        self.root = root / f"VOC{year}" if (root / f"VOC{year}").is_dir() else root
        if not (self.root / "JPEGImages").is_dir():
            raise DatasetError(f"no VOC{year} folder (with JPEGImages/) at {root}")
        self.year, self.split, self.task, self.transforms = year, split, task, transforms
        sets = "Main" if task == "detection" else "Segmentation"
        split_file = self.root / "ImageSets" / sets / f"{split}.txt"
        self.ids = [line.split()[0] for line in _read_lines(split_file, "split file")]
        if not self.ids:
            raise DatasetError(f"empty split file {split_file}")

    def image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def annotation_path(self, image_id: str) -> Path:
        return self.root / "Annotations" / f"{image_id}.xml"

    def mask_path(self, image_id: str) -> Path:
        return self.root / "SegmentationClass" / f"{image_id}.png"

    def objects(self, image_id: str) -> list[VOCObject]:
        """Parse the objects of one image's XML annotation."""
        return parse_voc_xml(self.annotation_path(image_id))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Any:
        image_id = self.ids[index]
        image = load_image(self.image_path(image_id))
        if self.task == "detection":
            return image, self.objects(image_id)
        mask = load_index_mask(self.mask_path(image_id))
        _check_same_size(image, mask, self.image_path(image_id), self.mask_path(image_id))
        return self.transforms(image, mask) if self.transforms else (image, mask)


def parse_voc_xml(path: PathLike) -> list[VOCObject]:
    """Objects of a VOC XML annotation file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing annotation {path}")
    try:
        root = ElementTree.parse(path).getroot()
        objects = []
        for obj in root.iter("object"):
            name = obj.findtext("name", "").strip()
            if name not in VOC_CLASSES:
                raise DatasetError(f"unknown class {name!r} in {path}")
            bndbox = obj.find("bndbox")
            if bndbox is None:
                raise DatasetError(f"object without <bndbox> in {path}")
            box = tuple(float(bndbox.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax"))
            if any(np.isnan(box)):
                raise DatasetError(f"incomplete <bndbox> in {path}")
            objects.append(
                VOCObject(
                    name=name,
                    label=VOC_CLASSES.index(name),
                    box=box,  # type: ignore[arg-type]
                    difficult=obj.findtext("difficult", "0").strip() == "1",
                    truncated=obj.findtext("truncated", "0").strip() == "1",
                )
            )
        return objects
    except (ElementTree.ParseError, ValueError) as exc:
        raise DatasetError(f"cannot parse annotation {path}: {exc}") from exc


# --------------------------------------------------------------------------- COCO


class COCOInstances:
    """COCO instances: ``root/annotations/instances_<split>.json`` + ``root/<split>/`` images.

    ``__getitem__`` gives (RGB image, list of annotation dicts) for ``ids[index]`` (sorted image ids).
    """

    def __init__(self, root: PathLike, split: str = "train2017", transform: Transform | None = None) -> None:
        root = Path(root)
        if not root.exists():
            raise DatasetError(f"dataset root not found: {root}")
        self.root, self.split, self.transform = root, split, transform
        self.annotation_file = root / "annotations" / f"instances_{split}.json"
        if not self.annotation_file.is_file():
            raise DatasetError(f"missing annotation file {self.annotation_file}")
        self.image_dir = _require_dir(root / split, "image folder")
        from pycocotools.coco import COCO  # imported here: only this reader needs it

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
                self.coco = COCO(str(self.annotation_file))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"cannot load COCO annotations {self.annotation_file}: {exc!r}") from exc
        self.ids: list[int] = sorted(self.coco.imgs)
        if not self.ids:
            raise DatasetError(f"no images in {self.annotation_file}")
        self.categories: dict[int, str] = {
            c["id"]: c["name"] for c in self.coco.loadCats(self.coco.getCatIds())
        }

    def image_path(self, image_id: int) -> Path:
        return self.image_dir / self.coco.imgs[image_id]["file_name"]

    def annotations(self, image_id: int) -> list[dict[str, Any]]:
        return self.coco.loadAnns(self.coco.getAnnIds(imgIds=[image_id]))

    def annotation_mask(self, ann: dict[str, Any]) -> np.ndarray:
        """Binary uint8 mask (H x W) of a polygon or RLE annotation."""
        return self.coco.annToMask(ann)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, list[dict[str, Any]]]:
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        image = load_image(self.image_path(image_id))
        if image.size != (info["width"], info["height"]):
            raise DatasetError(
                f"image {self.image_path(image_id)} is {image.width}x{image.height} but "
                f"{self.annotation_file} says {info['width']}x{info['height']}"
            )
        return (self.transform(image) if self.transform else image), self.annotations(image_id)


class COCOObjects:
    """The objects of COCO instances as a labelled classification set: a kNN / linear probe on
    the data of scene-centric pretraining (Revisiting), where the images have no single label.

    Every non-crowd annotation whose box covers at least ``min_size``² pixels (default 32²:
    COCO's boundary between small and medium objects) is one sample: a square of side
    max(box width, box height) centred on the box, moved inside the image where the image is
    large enough (else the part outside is black), labelled by its category (index in sorted
    category ids; ``classes`` holds the names). ``max_per_class`` keeps the first N objects of
    each category in annotation order. Items are (RGB crop, label) as the other readers'.
    """

    def __init__(self, root: PathLike, split: str = "train2017", transform: Transform | None = None,
                 min_size: float = 32, max_per_class: int | None = None) -> None:
        self.instances = COCOInstances(root, split)
        self.root, self.split, self.transform = self.instances.root, split, transform
        category_ids = sorted(self.instances.categories)
        self.classes = [self.instances.categories[c] for c in category_ids]
        index = {c: i for i, c in enumerate(category_ids)}
        coco = self.instances.coco
        self.samples: list[tuple[int, tuple[float, float, float, float], int]] = []
        kept = [0] * len(category_ids)
        for ann in sorted(coco.anns.values(), key=lambda a: a["id"]):
            w, h = ann["bbox"][2], ann["bbox"][3]
            if ann.get("iscrowd", 0) or w * h < min_size * min_size:
                continue
            if ann["category_id"] not in index:
                raise DatasetError(f"{self.instances.annotation_file}: annotation {ann['id']} has "
                                   f"category {ann['category_id']}, not in its categories")
            label = index[ann["category_id"]]
            if max_per_class is not None and kept[label] >= max_per_class:
                continue
            kept[label] += 1
            self.samples.append((ann["image_id"], tuple(ann["bbox"]), label))
        if not self.samples:
            raise DatasetError(f"no object of at least {min_size}x{min_size} px in {self.instances.annotation_file}")

    @property
    def targets(self) -> list[int]:
        return [label for _, _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image_id, (x, y, w, h), label = self.samples[index]
        image = load_image(self.instances.image_path(image_id))
        side = max(1, round(max(w, h)))
        left = min(max(round(x + w / 2 - side / 2), 0), max(image.width - side, 0))
        top = min(max(round(y + h / 2 - side / 2), 0), max(image.height - side, 0))
        crop = image.crop((left, top, left + side, top + side))
        return (self.transform(crop) if self.transform else crop), label


# --------------------------------------------------------------------------- DAVIS


@dataclass(frozen=True)
class DAVISSequence:
    name: str
    frames: list[Path]
    annotations: list[Path]


class DAVIS:
    """DAVIS video object segmentation layout; masks are palette PNGs of object ids (0 = background)."""

    def __init__(
        self, root: PathLike, split: str = "val", resolution: str = "480p", year: str = "2017"
    ) -> None:
        root = Path(root)
        if not root.exists():
            raise DatasetError(f"dataset root not found: {root}")
        self.root = root / "DAVIS" if (root / "DAVIS" / "JPEGImages").is_dir() else root
        self.split, self.resolution, self.year = split, resolution, year
        split_file = self.root / "ImageSets" / year / f"{split}.txt"
        self.sequences = _read_lines(split_file, "split file")
        if not self.sequences:
            raise DatasetError(f"empty split file {split_file}")

    def _listing(self, kind: str, seq: str, suffix: str) -> list[Path]:
        folder = _require_dir(self.root / kind / self.resolution / seq, f"sequence folder for {seq!r}:")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == suffix)
        if not files:
            raise DatasetError(f"no {suffix} files in {folder}")
        return files

    def frames(self, seq: str) -> list[Path]:
        return self._listing("JPEGImages", seq, ".jpg")

    def annotations(self, seq: str) -> list[Path]:
        return self._listing("Annotations", seq, ".png")

    @staticmethod
    def load_annotation(path: PathLike) -> np.ndarray:
        """uint8 array of object ids (palette indices)."""
        return load_index_mask(path)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> DAVISSequence:
        seq = self.sequences[index]
        return DAVISSequence(seq, self.frames(seq), self.annotations(seq))


# --------------------------------------------------------------------------- Cityscapes


class Cityscapes:
    """Cityscapes fine annotations: (``leftImg8bit`` PNG, ``gtFine`` ``labelTrainIds`` PNG) pairs.

    ``__getitem__`` gives (RGB image, uint8 train ids with 255 = ignore), or ``transforms(image, ids)``.
    """

    IMAGE_SUFFIX = "_leftImg8bit.png"
    LABEL_SUFFIX = "_gtFine_labelTrainIds.png"

    def __init__(
        self, root: PathLike, split: str = "train", transforms: JointTransform | None = None
    ) -> None:
        root = Path(root)
        if not root.exists():
            raise DatasetError(f"dataset root not found: {root}")
        self.root, self.split, self.transforms = root, split, transforms
        image_root = _require_dir(root / "leftImg8bit" / split, "image folder")
        label_root = _require_dir(root / "gtFine" / split, "annotation folder")
        self.pairs: list[tuple[Path, Path]] = []
        for image in sorted(image_root.glob(f"*/*{self.IMAGE_SUFFIX}")):
            stem = image.name[: -len(self.IMAGE_SUFFIX)]
            label = label_root / image.parent.name / f"{stem}{self.LABEL_SUFFIX}"
            if not label.is_file():
                raise DatasetError(
                    f"missing {label}; the *_labelTrainIds.png files are made from *_labelIds.png by "
                    "cityscapesscripts (python -m cityscapesscripts.preparation.createTrainIdLabelImgs)"
                )
            self.pairs.append((image, label))
        if not self.pairs:
            raise DatasetError(f"no *{self.IMAGE_SUFFIX} images in {image_root}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Any:
        image_path, label_path = self.pairs[index]
        image = load_image(image_path)
        label = load_index_mask(label_path)
        _check_same_size(image, label, image_path, label_path)
        return self.transforms(image, label) if self.transforms else (image, label)
