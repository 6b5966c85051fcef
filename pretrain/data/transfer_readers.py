"""Readers for the linear-transfer datasets (Kornblith et al. 2019 / Ericsson et al. 2021) in
their original on-disk layouts, with their official split files.

Every reader yields (PIL image, label) like :class:`readers.ImageFolder` (same base class, so
``UInt8Images`` and ``extract_features`` take them), accepts a directory or a ``.zip`` (with
or without one top-level folder), ``split``, ``transform`` and ``max_per_class`` (first N of
each class in listing order), and raises :class:`readers.DatasetError` naming the missing
or broken path. VOC2007 is multi-label: its items are (image, row index) and the labels sit
in ``label_matrix`` (N x 20: 1 present, 0 only difficult objects, -1 absent, as the devkit's
``<class>_<split>.txt``).

==============  ====================================================================  ===================
kind            layout under root                                                      splits
==============  ====================================================================  ===================
food101         ``meta/classes.txt``, ``meta/{train,test}.json``, ``images/<c>/<id>.jpg``   train, test
birdsnap        ``test_images.txt`` (header line), ``download/images/<species>/*.jpg``     train, test
sun397          ``ClassName.txt``, ``Training_01.txt``/``Testing_01.txt``, ``<l>/<class>/*.jpg``  train, test
cars            ``devkit/cars_{train_annos,test_annos_withlabels,meta}.mat``, ``cars_{train,test}/``  train, test
aircraft        ``data/variants.txt``, ``data/images_variant_<split>.txt``, ``data/images/``  train, val, trainval, test
voc2007         ``VOC2007/ImageSets/Main/<split>.txt`` + ``<class>_<split>.txt``, ``JPEGImages/``  train, val, trainval, test
dtd             ``images/<class>/*.jpg``, ``labels/{train,val,test}1.txt``                 train, val, trainval, test
pets            ``annotations/{trainval,test}.txt``, ``images/<name>.jpg``                 trainval, test
caltech101      ``101_ObjectCategories/<class>/*.jpg`` (102 folders incl. BACKGROUND_Google)  train, test
flowers102      ``imagelabels.mat``, ``setid.mat``, ``jpg/image_NNNNN.jpg``                train, val, test
==============  ====================================================================  ===================

SUN397 and DTD use the first of their 10 partitions (``partition=1``). Caltech-101 has no
official split: 30 images per class are drawn for train (numpy ``default_rng(seed)``
permutation of each class's sorted files, classes in sorted order) and the rest is test,
as Kornblith et al. (Ericsson ship their own split file instead). The ``.mat`` files are read
with ``scipy.io.loadmat``. CIFAR-10/100 are :class:`readers.CIFAR`.

:func:`protocol_splits` gives the train / val / test sets of the protocol: the official val
split where there is one (Aircraft, DTD, Flowers, VOC2007 -- Ericsson's list), otherwise a
random 20% of train (``np.random.seed(0)`` shuffle of the indices, first 20% = val, as
Ericsson's ``linear.py``).
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pretrain.data.readers import (
    CIFAR,
    VOC,
    VOC_CLASSES,
    DatasetError,
    PathLike,
    Transform,
    _ClassificationDataset,
    _is_image_name,
    _read_lines,
    _Tree,
    load_image,
)

__all__ = [
    "Aircraft", "Birdsnap", "Caltech101", "Cars", "DTD", "Flowers102", "Food101", "KINDS", "Pets",
    "READERS", "SPECS", "SUN397", "Subset", "TransferSpec", "VOC2007Classification", "protocol_splits",
    "random_val_indices",
]


def _limit(samples: list[tuple[str, int]], max_per_class: int | None) -> list[tuple[str, int]]:
    """The first ``max_per_class`` samples of every class, in listing order."""
    if max_per_class is None:
        return samples
    seen: dict[int, int] = {}
    kept = []
    for name, label in samples:
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= max_per_class:
            kept.append((name, label))
    return kept


def _check_split(split: str, allowed: tuple[str, ...], what: str) -> None:
    if split not in allowed:
        raise ValueError(f"{what} split must be one of {allowed}, got {split!r}")


def _loadmat(tree: _Tree, name: str, what: str) -> dict[str, Any]:
    from scipy.io import loadmat  # scipy comes with scikit-learn

    if not tree.isfile(name):
        raise DatasetError(f"missing {what} {tree.describe(name)}")
    try:
        return loadmat(io.BytesIO(tree.read(name)))
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DatasetError(f"cannot read {what} {tree.describe(name)}: {exc}") from exc


class _TransferDataset(_ClassificationDataset):
    """Common set-up: the tree, the top folder holding ``marker``, and the sample list."""

    def _open(self, root: PathLike, marker: str, what: str, transform: Transform | None) -> str:
        self._tree = _Tree(root)
        self.root = self._tree.root
        self.transform = transform
        return self._tree.top_prefix(marker, what)

    def _finish(self, samples: list[tuple[str, int]], max_per_class: int | None, where: str,
                check_files: bool = True) -> None:
        if check_files:
            for name, _ in samples:
                if not self._tree.isfile(name):
                    raise DatasetError(f"missing image {self._tree.describe(name)} (listed in {where})")
        self.samples = _limit(samples, max_per_class)
        if not self.samples:
            raise DatasetError(f"no images for split {self.split!r} in {where}")
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class Food101(_TransferDataset):
    """Food-101: ``meta/classes.txt`` orders the 101 classes; ``meta/<split>.json`` maps each
    class to its image ids ``<class>/<n>``; images in ``images/<id>.jpg``."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None) -> None:
        _check_split(split, ("train", "test"), "Food-101")
        self.split = split
        top = self._open(root, "meta/classes.txt", "class list", transform)
        self.classes = self._tree.text_lines(f"{top}meta/classes.txt", "class list")
        table = f"{top}meta/{split}.json"
        if not self._tree.isfile(table):
            raise DatasetError(f"missing split file {self._tree.describe(table)}")
        try:
            listing = json.loads(self._tree.read(table))
        except ValueError as exc:
            raise DatasetError(f"cannot parse {self._tree.describe(table)}: {exc}") from exc
        missing = [c for c in self.classes if c not in listing]
        if missing:
            raise DatasetError(f"{self._tree.describe(table)} lacks classes {missing[:5]}")
        samples = [(f"{top}images/{image_id}.jpg", label)
                   for label, name in enumerate(self.classes) for image_id in listing[name]]
        self._finish(samples, max_per_class, self._tree.describe(table))


class Birdsnap(_TransferDataset):
    """Birdsnap as its downloader leaves it: ``download/images/<species>/<file>.jpg`` and
    ``test_images.txt`` (a header line, then ``<species>/<file>.jpg``). Classes are the species
    folders in sorted order; train is every image not listed as test. Images the downloader
    could not fetch are simply absent (real copies miss a few percent): listed test images
    that are missing are skipped and counted in ``missing_listed``."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None) -> None:
        _check_split(split, ("train", "test"), "Birdsnap")
        self.split = split
        top = self._open(root, "test_images.txt", "test list", transform)
        listed = self._tree.text_lines(f"{top}test_images.txt", "test list")[1:]  # first line: header
        test = set(listed)
        folder = f"{top}download/images"
        if not self._tree.isdir(folder):
            raise DatasetError(f"missing image folder {self._tree.describe(folder)}")
        self.classes = self._tree.subdirs(folder)
        if not self.classes:
            raise DatasetError(f"no species folders in {self._tree.describe(folder)}")
        samples, present = [], set()
        for label, species in enumerate(self.classes):
            for name in self._tree.files(f"{folder}/{species}"):
                if not _is_image_name(name):
                    continue
                key = name[len(folder) + 1:]
                present.add(key)
                if (key in test) == (split == "test"):
                    samples.append((name, label))
        self.missing_listed = len(test - present)
        self._finish(samples, max_per_class, self._tree.describe(folder), check_files=False)


class SUN397(_TransferDataset):
    """SUN397 with the official partition files (``ClassName.txt``, ``Training_NN.txt``,
    ``Testing_NN.txt``) beside the ``<letter>/<class>`` image folders. Lines are absolute
    in-dataset paths (``/a/abbey/sun_x.jpg``); the class is the folder (some are nested,
    ``/b/bakery/shop``)."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None, partition: int = 1) -> None:
        _check_split(split, ("train", "test"), "SUN397")
        self.split = split
        top = self._open(root, "ClassName.txt", "class list", transform)
        class_paths = self._tree.text_lines(f"{top}ClassName.txt", "class list")
        index = {path: i for i, path in enumerate(class_paths)}
        self.classes = [path[3:] for path in class_paths]  # "/a/abbey" -> "abbey"
        listing = f"{top}{'Training' if split == 'train' else 'Testing'}_{partition:02d}.txt"
        samples = []
        for line in self._tree.text_lines(listing, "split file"):
            folder = line.rsplit("/", 1)[0]
            if folder not in index:
                raise DatasetError(f"{self._tree.describe(listing)}: {line!r} is in no class of ClassName.txt")
            samples.append((f"{top}{line.lstrip('/')}", index[folder]))
        self._finish(samples, max_per_class, self._tree.describe(listing))


class Cars(_TransferDataset):
    """Stanford Cars: ``devkit/cars_train_annos.mat`` and ``devkit/cars_test_annos_withlabels.mat``
    (struct ``annotations`` with ``fname`` and ``class`` 1..196), class names in
    ``devkit/cars_meta.mat``; images in ``cars_train/`` and ``cars_test/``."""

    ANNOTATIONS = {"train": "cars_train_annos.mat", "test": "cars_test_annos_withlabels.mat"}

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None) -> None:
        _check_split(split, ("train", "test"), "Stanford Cars")
        self.split = split
        top = self._open(root, "devkit", "devkit folder", transform)
        meta = _loadmat(self._tree, f"{top}devkit/cars_meta.mat", "class list")
        if "class_names" not in meta:
            raise DatasetError(f"{self._tree.describe(f'{top}devkit/cars_meta.mat')} lacks 'class_names'")
        self.classes = [str(np.asarray(n).ravel()[0]) for n in meta["class_names"].ravel()]
        table = f"{top}devkit/{self.ANNOTATIONS[split]}"
        annotations = _loadmat(self._tree, table, "annotation file").get("annotations")
        if annotations is None or not {"fname", "class"} <= set(annotations.dtype.names or ()):
            raise DatasetError(f"{self._tree.describe(table)} lacks a struct 'annotations' with fname, class")
        samples = []
        for entry in annotations.ravel():
            label = int(np.asarray(entry["class"]).ravel()[0]) - 1
            if not 0 <= label < len(self.classes):
                raise DatasetError(f"{self._tree.describe(table)}: class {label + 1} outside 1..{len(self.classes)}")
            samples.append((f"{top}cars_{split}/{np.asarray(entry['fname']).ravel()[0]}", label))
        self._finish(samples, max_per_class, self._tree.describe(table))


class Aircraft(_TransferDataset):
    """FGVC-Aircraft 2013b, variant level (100 classes in ``data/variants.txt``):
    ``data/images_variant_<split>.txt`` lines ``<id> <variant name>``, images ``data/images/<id>.jpg``."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None) -> None:
        _check_split(split, ("train", "val", "trainval", "test"), "FGVC-Aircraft")
        self.split = split
        top = self._open(root, "data/variants.txt", "class list", transform)
        self.classes = self._tree.text_lines(f"{top}data/variants.txt", "class list")
        index = {name: i for i, name in enumerate(self.classes)}
        listing = f"{top}data/images_variant_{split}.txt"
        samples = []
        for line in self._tree.text_lines(listing, "split file"):
            image_id, _, variant = line.partition(" ")
            if variant not in index:
                raise DatasetError(f"{self._tree.describe(listing)}: unknown variant {variant!r}")
            samples.append((f"{top}data/images/{image_id}.jpg", index[variant]))
        self._finish(samples, max_per_class, self._tree.describe(listing))


class DTD(_TransferDataset):
    """Describable Textures: ``images/<class>/<file>.jpg``, ``labels/<split><partition>.txt``
    lines ``<class>/<file>.jpg``; 47 classes (sorted folders)."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None, partition: int = 1) -> None:
        _check_split(split, ("train", "val", "trainval", "test"), "DTD")
        self.split = split
        top = self._open(root, "images", "image folder", transform)
        self.classes = self._tree.subdirs(f"{top}images")
        index = {name: i for i, name in enumerate(self.classes)}
        samples = []
        for part in ("train", "val") if split == "trainval" else (split,):
            listing = f"{top}labels/{part}{partition}.txt"
            for line in self._tree.text_lines(listing, "split file"):
                if line.split("/")[0] not in index:
                    raise DatasetError(f"{self._tree.describe(listing)}: {line!r} is in no class folder")
                samples.append((f"{top}images/{line}", index[line.split('/')[0]]))
        self._finish(samples, max_per_class, self._tree.describe(f"{top}labels"))


class Pets(_TransferDataset):
    """Oxford-IIIT Pets: ``annotations/{trainval,test}.txt`` lines ``<image> <class id 1..37>
    <species> <breed id>`` ('#' lines are comments); images ``images/<image>.jpg``. Class names
    are the image names without their trailing number, in class-id order."""

    def __init__(self, root: PathLike, split: str = "trainval", transform: Transform | None = None,
                 max_per_class: int | None = None) -> None:
        _check_split(split, ("trainval", "test"), "Oxford-IIIT Pets")
        self.split = split
        top = self._open(root, "annotations", "annotation folder", transform)
        listing = f"{top}annotations/{split}.txt"
        samples, names = [], {}
        for line in self._tree.text_lines(listing, "split file"):
            if line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise DatasetError(f"bad line in {self._tree.describe(listing)}: {line!r}")
            label = int(fields[1]) - 1
            names.setdefault(label, fields[0].rsplit("_", 1)[0])
            samples.append((f"{top}images/{fields[0]}.jpg", label))
        self.classes = [names.get(i, str(i + 1)) for i in range(max(names) + 1)] if names else []
        self._finish(samples, max_per_class, self._tree.describe(listing))


class Caltech101(_TransferDataset):
    """Caltech-101 ``101_ObjectCategories/<class>/*.jpg`` (all 102 folders, BACKGROUND_Google
    included, as Kornblith et al.); ``train_per_class`` random images of each class (seeded)
    are train, the rest test. A class with no image left for test is an error."""

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None, train_per_class: int = 30, seed: int = 0) -> None:
        _check_split(split, ("train", "test"), "Caltech-101")
        self.split, self.train_per_class, self.seed = split, train_per_class, seed
        top = self._open(root, "101_ObjectCategories", "image folder", transform)
        folder = f"{top}101_ObjectCategories"
        self.classes = self._tree.subdirs(folder)
        if not self.classes:
            raise DatasetError(f"no class folders in {self._tree.describe(folder)}")
        rng = np.random.default_rng(seed)
        samples = []
        for label, name in enumerate(self.classes):
            images = [f for f in self._tree.files(f"{folder}/{name}") if _is_image_name(f)]
            if len(images) <= train_per_class:
                raise DatasetError(f"{self._tree.describe(f'{folder}/{name}')} has {len(images)} images; "
                                   f"needs more than {train_per_class} (train per class)")
            chosen = rng.permutation(len(images))
            picked = chosen[:train_per_class] if split == "train" else chosen[train_per_class:]
            samples += [(images[i], label) for i in sorted(picked)]
        self._finish(samples, max_per_class, self._tree.describe(folder), check_files=False)


class Flowers102(_TransferDataset):
    """Oxford Flowers-102: ``imagelabels.mat`` (``labels`` 1..102 per image), ``setid.mat``
    (``trnid``, ``valid``, ``tstid``: 1-based image numbers), images ``jpg/image_NNNNN.jpg``."""

    SETS = {"train": "trnid", "val": "valid", "test": "tstid"}

    def __init__(self, root: PathLike, split: str = "train", transform: Transform | None = None,
                 max_per_class: int | None = None) -> None:
        _check_split(split, tuple(self.SETS), "Flowers-102")
        self.split = split
        top = self._open(root, "setid.mat", "split file", transform)
        labels = _loadmat(self._tree, f"{top}imagelabels.mat", "label file").get("labels")
        ids = _loadmat(self._tree, f"{top}setid.mat", "split file").get(self.SETS[split])
        if labels is None or ids is None:
            raise DatasetError(f"{self._tree.describe(top or '.')}: imagelabels.mat needs 'labels' and "
                               f"setid.mat '{self.SETS[split]}'")
        labels = np.asarray(labels).ravel().astype(int)
        self.classes = [str(c) for c in range(1, int(labels.max()) + 1)]
        samples = []
        for number in np.asarray(ids).ravel().astype(int):
            if not 1 <= number <= len(labels):
                raise DatasetError(f"{self._tree.describe(f'{top}setid.mat')}: image {number} has no label")
            samples.append((f"{top}jpg/image_{number:05d}.jpg", int(labels[number - 1]) - 1))
        self._finish(samples, max_per_class, self._tree.describe(f"{top}setid.mat"))


class VOC2007Classification:
    """VOC2007 image classification (multi-label): the ids of ``ImageSets/Main/<split>.txt``
    and their labels from the devkit's ``<class>_<split>.txt`` files. Items are
    (PIL image, row index); ``label_matrix`` (N x 20, int8) holds 1 / 0 (difficult only) / -1,
    and ``multi_hot`` the protocol's targets (label == 1, as Ericsson's reader)."""

    def __init__(self, root: PathLike, split: str = "trainval", transform: Transform | None = None,
                 max_per_class: int | None = None) -> None:
        if max_per_class is not None:
            raise ValueError("max_per_class does not apply to multi-label VOC2007")
        _check_split(split, ("train", "val", "trainval", "test"), "VOC2007")
        self.voc = VOC(root, year="2007", split=split, task="detection")
        self.root, self.split, self.transform = self.voc.root, split, transform
        self.ids = self.voc.ids
        self.classes = list(VOC_CLASSES)
        row = {image_id: i for i, image_id in enumerate(self.ids)}
        self.label_matrix = np.full((len(self.ids), len(VOC_CLASSES)), -1, dtype=np.int8)
        for c, name in enumerate(VOC_CLASSES):
            listing = self.voc.root / "ImageSets" / "Main" / f"{name}_{split}.txt"
            seen = 0
            for line in _read_lines(listing, "class list"):
                fields = line.split()
                if len(fields) != 2 or fields[0] not in row or fields[1] not in ("1", "0", "-1"):
                    raise DatasetError(f"bad line in {listing}: {line!r}")
                self.label_matrix[row[fields[0]], c] = int(fields[1])
                seen += 1
            if seen != len(self.ids):
                raise DatasetError(f"{listing} lists {seen} images, {split}.txt {len(self.ids)}")
        self.multi_hot = (self.label_matrix == 1).astype(np.int64)
        self.targets = list(range(len(self.ids)))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = load_image(self.voc.image_path(self.ids[index]))
        return (self.transform(image) if self.transform else image), index


def _cifar(name: str) -> Callable[..., Any]:
    def make(root: PathLike, split: str = "train", transform: Transform | None = None) -> CIFAR:
        _check_split(split, ("train", "test"), name)
        return CIFAR(root, name=name, train=split == "train", transform=transform)
    return make


# --------------------------------------------------------------------------- the protocol's splits


@dataclass(frozen=True)
class TransferSpec:
    """How the protocol uses a dataset: reader, published name, metric, split names."""

    reader: Callable[..., Any]
    name: str  # spelling of evaluation/published/*.csv
    metric: str  # top1 | mean_per_class_acc | mAP (Kornblith et al. / Ericsson et al.)
    train: str
    test: str
    val: str | None = None  # official validation split, else a random 20% of train


SPECS: dict[str, TransferSpec] = {
    "food101": TransferSpec(Food101, "Food-101", "top1", "train", "test"),
    "cifar10": TransferSpec(_cifar("cifar10"), "CIFAR-10", "top1", "train", "test"),
    "cifar100": TransferSpec(_cifar("cifar100"), "CIFAR-100", "top1", "train", "test"),
    "birdsnap": TransferSpec(Birdsnap, "Birdsnap", "top1", "train", "test"),
    "sun397": TransferSpec(SUN397, "SUN397", "top1", "train", "test"),
    "cars": TransferSpec(Cars, "Cars", "top1", "train", "test"),
    "aircraft": TransferSpec(Aircraft, "Aircraft", "mean_per_class_acc", "train", "test", "val"),
    "voc2007": TransferSpec(VOC2007Classification, "VOC07", "mAP", "train", "test", "val"),
    "dtd": TransferSpec(DTD, "DTD", "top1", "train", "test", "val"),
    "pets": TransferSpec(Pets, "Pets", "mean_per_class_acc", "trainval", "test"),
    "caltech101": TransferSpec(Caltech101, "Caltech-101", "mean_per_class_acc", "train", "test"),
    "flowers102": TransferSpec(Flowers102, "Flowers", "mean_per_class_acc", "train", "test", "val"),
}
KINDS = tuple(SPECS)
READERS = {kind: spec.reader for kind, spec in SPECS.items() if kind not in ("cifar10", "cifar100")}


class Subset:
    """Rows ``indices`` of a reader, same item interface (``targets`` follow)."""

    def __init__(self, dataset, indices) -> None:
        self.dataset, self.indices = dataset, [int(i) for i in indices]
        self.classes = getattr(dataset, "classes", None)

    @property
    def targets(self) -> list[int]:
        targets = self.dataset.targets
        return [targets[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]


def random_val_indices(n: int, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, val indices): ``np.random.seed(seed)`` shuffle of range(n), the first
    floor(fraction * n) are val (Ericsson's ``get_train_valid_loader``)."""
    indices = list(range(n))
    np.random.RandomState(seed).shuffle(indices)
    cut = int(np.floor(fraction * n))
    return np.asarray(indices[cut:], dtype=int), np.asarray(indices[:cut], dtype=int)


def protocol_splits(kind: str, root: PathLike, val_fraction: float = 0.2, seed: int = 0,
                    **reader_args: Any) -> dict[str, Any]:
    """{"train", "val", "test": datasets, "val_source": how val was made} for ``kind``."""
    if kind not in SPECS:
        raise ValueError(f"unknown transfer dataset {kind!r}; expected one of {KINDS}")
    spec = SPECS[kind]
    if not Path(root).exists():
        raise DatasetError(f"dataset root not found: {root}")
    train = spec.reader(root, split=spec.train, **reader_args)
    test = spec.reader(root, split=spec.test, **reader_args)
    if spec.val is not None:
        val, source = spec.reader(root, split=spec.val, **reader_args), f"official '{spec.val}' split"
    else:
        train_idx, val_idx = random_val_indices(len(train), val_fraction, seed)
        train, val = Subset(train, train_idx), Subset(train, val_idx)
        source = f"random {val_fraction:.0%} of '{spec.train}' (numpy seed {seed})"
    return {"train": train, "val": val, "test": test, "val_source": source}
