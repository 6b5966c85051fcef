"""Tiny generated miniatures of the linear-transfer datasets, each in its original layout.

    python -m pretrain.data.synthetic_transfer --out DIR [--seed 0] [--kinds food101,dtd]

One folder per dataset under DIR (names below), read by ``pretrain.data.transfer_readers``.
Images are the shapes of :mod:`pretrain.data.synthetic` (class ``c`` is shape ``c``,
``render_classification``); VOC2007 is the generator's VOC scene writer, CIFAR its pickle
writers at a tiny size. Seeded and deterministic (one numpy generator per image); all
eleven take a few seconds. ``SIZES`` gives the images per class and split (the tests check
the readers against it). The miniatures keep the real file names, split files and
annotation formats, not the real sizes or class counts.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pretrain.data import synthetic
from pretrain.data.synthetic import SHAPES, _image_rng, render_classification, save_jpeg, write_lines

FOLDERS = {
    "food101": "food-101", "cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
    "birdsnap": "birdsnap", "sun397": "SUN397", "cars": "stanford_cars", "aircraft": "fgvc-aircraft-2013b",
    "voc2007": "VOCdevkit", "dtd": "dtd", "pets": "oxford-iiit-pet", "caltech101": "caltech101",
    "flowers102": "flowers-102",
}
KINDS = tuple(FOLDERS)
IMAGE_SIZE = 40  # px; the readers do not care, UInt8Images resizes
# images per class for each split of the miniature (classes = number of entries per split)
SIZES: dict[str, dict[str, int]] = {
    "food101": {"classes": 3, "train": 5, "test": 2},
    "birdsnap": {"classes": 3, "train": 5, "test": 2},
    "sun397": {"classes": 3, "train": 5, "test": 2},
    "cars": {"classes": 3, "train": 5, "test": 2},
    "aircraft": {"classes": 3, "train": 3, "val": 2, "test": 2},
    "dtd": {"classes": 3, "train": 3, "val": 2, "test": 2},
    "pets": {"classes": 3, "trainval": 5, "test": 2},
    "caltech101": {"classes": 3, "total": 32},  # needs > 30 per class: 30 train, 2 test
    "flowers102": {"classes": 3, "train": 3, "val": 2, "test": 2},
}
CIFAR_SCALE = dataclasses.replace(synthetic.SCALES["smoke"], cifar10_classes=3, cifar10_train=30,
                                  cifar10_test=15, cifar100_train=200, cifar100_test=100)
VOC2007_PER_SPLIT = 8
SUN397_CLASSES = ("/a/abbey", "/b/bakery/shop", "/c/canyon")  # one nested class, as the real list has
AIRCRAFT_VARIANTS = ("707-320", "A300B4", "Cessna 172")  # one name with a space
PETS_BREEDS = (("Abyssinian", 1), ("american_bulldog", 2), ("Bengal", 1))  # (name, species 1 cat 2 dog)
BIRDSNAP_MISSING = 1  # listed test images the "downloader" failed to fetch


def _image(path: Path, seed: int, kind: str, label: int, *key: int | str) -> None:
    save_jpeg(path, render_classification(_image_rng(seed, kind, label, *key), label % len(SHAPES), IMAGE_SIZE))


def _split_images(kind: str):
    """(split, class, index within class) in writing order for the per-class sizes of ``kind``."""
    sizes = SIZES[kind]
    return [(split, c, i) for split in sizes if split != "classes" for c in range(sizes["classes"])
            for i in range(sizes[split])]


def write_food101(root: Path, seed: int) -> None:
    classes = list(SHAPES[:SIZES["food101"]["classes"]])
    listing: dict[str, dict[str, list[str]]] = {"train": {c: [] for c in classes}, "test": {c: [] for c in classes}}
    for n, (split, c, _) in enumerate(_split_images("food101")):
        image_id = f"{classes[c]}/{100000 + n}"
        _image(root / "images" / f"{image_id}.jpg", seed, "food101", c, split, n)
        listing[split][classes[c]].append(image_id)
    write_lines(root / "meta" / "classes.txt", classes)
    write_lines(root / "meta" / "labels.txt", [c.capitalize() for c in classes])
    for split, table in listing.items():
        (root / "meta" / f"{split}.json").write_text(json.dumps(table))
        write_lines(root / "meta" / f"{split}.txt", [i for c in classes for i in table[c]])


def write_birdsnap(root: Path, seed: int) -> None:
    species = [f"{s.capitalize()}_Bird" for s in SHAPES[:SIZES["birdsnap"]["classes"]]]
    test = []
    for n, (split, c, i) in enumerate(_split_images("birdsnap")):
        name = f"{species[c]}/{n:06d}.jpg"
        _image(root / "download" / "images" / name, seed, "birdsnap", c, split, n)
        if split == "test":
            test.append(name)
    test.append(f"{species[0]}/999999.jpg")  # listed, never downloaded
    write_lines(root / "test_images.txt", ["path", *test])
    rows = [f"{i + 1}\t{s.replace('_', ' ')}\tAvis {i}\t{s}" for i, s in enumerate(species)]
    write_lines(root / "species.txt", ["id\tcommon\tscientific\tdir", *rows])


def write_sun397(root: Path, seed: int) -> None:
    lists: dict[str, list[str]] = {"train": [], "test": []}
    for n, (split, c, _) in enumerate(_split_images("sun397")):
        line = f"{SUN397_CLASSES[c]}/sun_{n:08d}.jpg"
        _image(root / line.lstrip("/"), seed, "sun397", c, split, n)
        lists[split].append(line)
    write_lines(root / "ClassName.txt", SUN397_CLASSES)
    write_lines(root / "Training_01.txt", lists["train"])
    write_lines(root / "Testing_01.txt", lists["test"])
    write_lines(root / "Training_02.txt", lists["test"])  # other partitions exist and must not be read
    write_lines(root / "Testing_02.txt", lists["train"])


def write_cars(root: Path, seed: int) -> None:
    from scipy.io import savemat

    names = [f"{s.capitalize()} Motors Model {2000 + i}" for i, s in enumerate(SHAPES[:SIZES["cars"]["classes"]])]
    fields = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")
    rows: dict[str, list[tuple]] = {"train": [], "test": []}
    for split, c, _ in _split_images("cars"):
        fname = f"{len(rows[split]) + 1:05d}.jpg"
        _image(root / f"cars_{split}" / fname, seed, "cars", c, split, fname)
        rows[split].append((np.array([[1]], np.uint8), np.array([[1]], np.uint8),
                            np.array([[IMAGE_SIZE]], np.uint8), np.array([[IMAGE_SIZE]], np.uint8),
                            np.array([[c + 1]], np.uint8), np.array([fname])))
    for split, mat in (("train", "cars_train_annos.mat"), ("test", "cars_test_annos_withlabels.mat")):
        table = np.empty((1, len(rows[split])), dtype=[(f, object) for f in fields])
        for i, row in enumerate(rows[split]):
            table[0, i] = row
        (root / "devkit").mkdir(parents=True, exist_ok=True)
        savemat(root / "devkit" / mat, {"annotations": table})
    class_names = np.empty((1, len(names)), dtype=object)
    class_names[0, :] = names
    savemat(root / "devkit" / "cars_meta.mat", {"class_names": class_names})


def write_aircraft(root: Path, seed: int) -> None:
    data = root / "data"
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for n, (split, c, _) in enumerate(_split_images("aircraft")):
        image_id = f"{1000000 + n:07d}"
        _image(data / "images" / f"{image_id}.jpg", seed, "aircraft", c, split, n)
        lists[split].append(f"{image_id} {AIRCRAFT_VARIANTS[c]}")
    lists["trainval"] = lists["train"] + lists["val"]
    write_lines(data / "variants.txt", AIRCRAFT_VARIANTS)
    for split, lines in lists.items():
        write_lines(data / f"images_variant_{split}.txt", sorted(lines))


def write_dtd(root: Path, seed: int) -> None:
    classes = ["banded", "bubbly", "cracked"][:SIZES["dtd"]["classes"]]
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for n, (split, c, _) in enumerate(_split_images("dtd")):
        name = f"{classes[c]}/{classes[c]}_{n:04d}.jpg"
        _image(root / "images" / name, seed, "dtd", c, split, n)
        lists[split].append(name)
    for split, lines in lists.items():
        write_lines(root / "labels" / f"{split}1.txt", lines)
        write_lines(root / "labels" / f"{split}2.txt", lines[::-1])  # partition 2: not the one read


def write_pets(root: Path, seed: int) -> None:
    lists: dict[str, list[str]] = {"trainval": [], "test": []}
    for n, (split, c, _) in enumerate(_split_images("pets")):
        breed, species = PETS_BREEDS[c]
        name = f"{breed}_{n + 1}"
        _image(root / "images" / f"{name}.jpg", seed, "pets", c, split, n)
        lists[split].append(f"{name} {c + 1} {species} {c + 1}")
    write_lines(root / "annotations" / "trainval.txt", lists["trainval"])
    write_lines(root / "annotations" / "test.txt", lists["test"])
    write_lines(root / "annotations" / "list.txt", ["#Image CLASS-ID SPECIES BREED ID",
                                                     "#ID: 1:37 Class ids", *lists["trainval"], *lists["test"]])


def write_caltech101(root: Path, seed: int) -> None:
    classes = ["BACKGROUND_Google", "Faces", "accordion"][:SIZES["caltech101"]["classes"]]
    for c, name in enumerate(classes):
        for i in range(SIZES["caltech101"]["total"]):
            _image(root / "101_ObjectCategories" / name / f"image_{i + 1:04d}.jpg", seed, "caltech101", c, i)


def write_flowers102(root: Path, seed: int) -> None:
    from scipy.io import savemat

    sets: dict[str, list[int]] = {"trnid": [], "valid": [], "tstid": []}
    labels = []
    key = {"train": "trnid", "val": "valid", "test": "tstid"}
    for n, (split, c, _) in enumerate(_split_images("flowers102")):
        _image(root / "jpg" / f"image_{n + 1:05d}.jpg", seed, "flowers102", c, split, n)
        labels.append(c + 1)
        sets[key[split]].append(n + 1)
    savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(root / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in sets.items()})


def write_voc2007(root: Path, seed: int) -> None:
    progress = synthetic._Progress(0, "voc2007", False)
    n = VOC2007_PER_SPLIT
    synthetic._voc_year(root, seed, "2007", {"train": n, "val": n, "test": n}, progress)


def write_cifar10(root: Path, seed: int) -> None:
    synthetic.write_cifar10(root, seed, CIFAR_SCALE, synthetic._Progress(0, "cifar10", False))


def write_cifar100(root: Path, seed: int) -> None:
    synthetic.write_cifar100(root, seed, CIFAR_SCALE, synthetic._Progress(0, "cifar100", False))


WRITERS: dict[str, Callable[[Path, int], None]] = {
    "food101": write_food101, "cifar10": write_cifar10, "cifar100": write_cifar100, "birdsnap": write_birdsnap,
    "sun397": write_sun397, "cars": write_cars, "aircraft": write_aircraft, "voc2007": write_voc2007,
    "dtd": write_dtd, "pets": write_pets, "caltech101": write_caltech101, "flowers102": write_flowers102,
}


def generate(out_dir: str | Path, seed: int = 0, kinds=None) -> dict[str, Path]:
    """Write the miniatures of ``kinds`` (default all) under ``out_dir``; kind -> dataset root
    (the folder a reader takes). An existing folder is replaced."""
    import shutil

    kinds = list(KINDS if kinds is None else kinds)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; choose from {list(KINDS)}")
    roots = {}
    for kind in kinds:
        root = Path(out_dir) / FOLDERS[kind]
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        WRITERS[kind](root, seed)
        roots[kind] = root
    return roots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pretrain.data.synthetic_transfer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per dataset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    args = parser.parse_args(argv)
    try:
        roots = generate(args.out, args.seed, [k.strip() for k in args.kinds.split(",") if k.strip()])
    except ValueError as exc:
        parser.error(str(exc))
    for kind, root in roots.items():
        print(f"{kind:11s} {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
