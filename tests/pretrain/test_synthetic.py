"""The synthetic generator writes valid files in the real layouts, checked with third-party readers."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pretrain.data import synthetic
from pretrain.data.readers import VOC_CLASSES

# The official cityscapesscripts label id -> train id table, written out independently of the code under test.
OFFICIAL_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                      25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # fmt: skip
# First entries of the standard VOC colour map (background, aeroplane, bicycle, bird, ...; 255 = void).
VOC_COLOURS = {
    0: (0, 0, 0),
    1: (128, 0, 0),
    2: (0, 128, 0),
    3: (128, 128, 0),
    4: (0, 0, 128),
    15: (192, 128, 128),
    255: (224, 224, 192),
}
SMOKE = synthetic.SCALES["smoke"]
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="session")
def roots(generated: dict[str, Path]) -> dict[str, Path]:
    """All formats, seed 0, smoke scale: tests/conftest.py generates them once per session."""
    return generated


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _mode_and_array(path: Path) -> tuple[str, np.ndarray]:
    with Image.open(path) as image:
        return image.mode, np.array(image)


def _palette(image: Image.Image) -> np.ndarray:
    return np.frombuffer(bytes(image.getpalette() or []), dtype=np.uint8).reshape(-1, 3)


# --------------------------------------------------------------------------- determinism, reruns, CLI


def test_same_seed_gives_identical_bytes_and_other_seed_differs(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    again = synthetic.generate(tmp_path / "again", seed=0)
    for fmt, root in roots.items():
        first, second = _digests(root), _digests(again[fmt])
        assert len(first) > 3, fmt
        assert first == second, f"{fmt}: files differ between two runs with seed 0"
    other = synthetic.generate(tmp_path / "seed1", formats=["voc", "cifar100"], seed=1)
    for fmt in ("voc", "cifar100"):
        reference = _digests(roots[fmt])
        data_files = [k for k in reference if k.endswith((".jpg", ".png", "train", "test"))]
        changed = [k for k, v in _digests(other[fmt]).items() if k in data_files and reference[k] != v]
        assert len(data_files) >= 2 and changed == data_files, f"{fmt}: seed 1 reproduced files of seed 0"


def test_second_run_skips_completed_formats(roots: dict[str, Path]) -> None:
    probe = roots["voc"] / "VOC2007" / "JPEGImages" / "000001.jpg"
    before = probe.stat().st_mtime_ns
    started = time.perf_counter()
    again = synthetic.generate(roots["voc"].parent, seed=0)
    assert time.perf_counter() - started < 2.0
    assert again == roots
    assert probe.stat().st_mtime_ns == before


def test_other_seed_replaces_own_output_but_never_foreign_folders(tmp_path: Path) -> None:
    root = synthetic.generate(tmp_path, formats=["cityscapes"], seed=0)["cityscapes"]
    first = _digests(root)
    synthetic.generate(tmp_path, formats=["cityscapes"], seed=3)
    assert _digests(root) != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cityscapes"]  # no staging folders left behind
    foreign = tmp_path / "coco"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not generated")
    with pytest.raises(FileExistsError, match="coco"):
        synthetic.generate(tmp_path, formats=["coco"])
    assert (foreign / "keep.txt").read_text() == "not generated"


def test_cli_help_and_run(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "pretrain.data.synthetic", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0
    assert "--formats" in shown.stdout and "--seed" in shown.stdout
    assert synthetic.main(["--out", str(tmp_path), "--formats", "davis", "--quiet"]) == 0
    assert (tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt").is_file()
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path), "--formats", "imagenet"])


# --------------------------------------------------------------------------- rendering core


@pytest.mark.parametrize("shape", range(len(synthetic.SHAPES)))
def test_rasterized_outline_matches_pycocotools(shape: int) -> None:
    from pycocotools import mask as mask_utils

    polygon = synthetic.shape_polygon(shape, 40.3, 37.8, 50, angle=12, aspect=1.1)
    ours = synthetic.rasterize(polygon, 80, 90)
    theirs = mask_utils.decode(
        mask_utils.merge(mask_utils.frPyObjects([polygon.ravel().tolist()], 80, 90))
    ).astype(bool)
    assert ours.sum() > 300
    assert (ours & theirs).sum() / (ours | theirs).sum() > 0.97
    assert ours[38, 40] == theirs[38, 40]
    if synthetic.SHAPES[shape] in ("circle", "square", "ring"):  # the ring's hole is represented
        assert ours[38, 40] == (synthetic.SHAPES[shape] != "ring")


def test_render_scene_annotations_agree() -> None:
    rng = np.random.default_rng(5)
    background = synthetic.make_background(rng, 90, 120)
    objects = synthetic.place_objects(rng, background, [0, 3, 4, 8], (16, 40))
    scene = synthetic.render_scene(background, objects, rng)
    assert len(objects) >= 3 and len(scene.polygons) == len(objects)
    assert scene.image.shape == (90, 120, 3) and scene.image.dtype == np.uint8
    for k, obj in enumerate(objects, start=1):
        ys, xs = np.nonzero(scene.instance_ids == k)
        assert list(scene.boxes[k - 1]) == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert set(np.unique(scene.class_ids[scene.instance_ids == k])) == {obj.shape + 1}
        # the object is painted in its own colour, not the background's
        assert np.abs(scene.image[ys, xs].mean(0) - np.asarray(obj.color)).max() < 40
    assert set(np.unique(scene.class_ids[scene.instance_ids == 0])) == {0}


# --------------------------------------------------------------------------- classification formats


def test_imagefolder_opens_with_torchvision(roots: dict[str, Path]) -> None:
    from torchvision.datasets import ImageFolder

    for split, per_class in (
        ("train", SMOKE.imagefolder_train_per_class),
        ("val", SMOKE.imagefolder_val_per_class),
    ):
        dataset = ImageFolder(str(roots["imagefolder"] / split))
        assert dataset.classes == sorted(synthetic.SHAPES[: SMOKE.imagefolder_classes])
        assert np.bincount(dataset.targets).tolist() == [per_class] * SMOKE.imagefolder_classes
        image, _ = dataset[len(dataset) - 1]
        assert image.size == (SMOKE.imagefolder_size, SMOKE.imagefolder_size)
    assert re.fullmatch(r"\d{5}\.jpg", Path(dataset.samples[0][0]).name)


def _load(path: Path) -> dict[bytes, object]:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _neighbour_roughness(rows: np.ndarray, channel_major: bool) -> float:
    """Mean |difference| between horizontally adjacent pixels when rows are decoded in the given order."""
    images = (
        rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) if channel_major else rows.reshape(-1, 32, 32, 3)
    )
    return float(np.abs(np.diff(images.astype(int), axis=2)).mean())


def test_cifar10_pickles(roots: dict[str, Path]) -> None:
    root = roots["cifar10"]
    meta = _load(root / "batches.meta")
    assert {b"label_names", b"num_cases_per_batch", b"num_vis"} <= meta.keys()
    classes = SMOKE.cifar10_classes
    assert meta[b"label_names"] == [n.encode() for n in synthetic.SHAPES[:classes]] and meta[b"num_vis"] == 3072
    labels = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = _load(root / name)
        assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
        data = batch[b"data"]
        assert (
            isinstance(data, np.ndarray)
            and data.dtype == np.uint8
            and data.shape == (len(batch[b"labels"]), 3072)
        )
        assert len(batch[b"filenames"]) == len(data) and isinstance(batch[b"filenames"][0], bytes)
        assert isinstance(batch[b"batch_label"], bytes)
        # channel-major rows decode to smooth images; the wrong order would not
        assert _neighbour_roughness(data, channel_major=True) < 0.75 * _neighbour_roughness(
            data, channel_major=False
        )
        if name != "test_batch":
            labels += batch[b"labels"]
        else:
            assert len(data) == SMOKE.cifar10_test
    assert len(labels) == SMOKE.cifar10_train
    assert np.bincount(labels).tolist() == [SMOKE.cifar10_train // classes] * classes


def test_cifar100_pickles(roots: dict[str, Path]) -> None:
    root = roots["cifar100"]
    meta = _load(root / "meta")
    assert len(meta[b"fine_label_names"]) == 100 and len(meta[b"coarse_label_names"]) == 20
    for split, n in (("train", SMOKE.cifar100_train), ("test", SMOKE.cifar100_test)):
        batch = _load(root / split)
        assert set(batch) == {b"filenames", b"batch_label", b"fine_labels", b"coarse_labels", b"data"}
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (n, 3072)
        fine, coarse = np.array(batch[b"fine_labels"]), np.array(batch[b"coarse_labels"])
        assert fine.min() >= 0 and fine.max() < 100 and coarse.min() >= 0 and coarse.max() < 20
        # a proper hierarchy: every fine class sits in exactly one coarse class, 5 fine per coarse
        parents = {f: set(coarse[fine == f]) for f in np.unique(fine)}
        assert all(len(p) == 1 for p in parents.values())
        assert len(np.unique(fine)) == min(n, 100)


# --------------------------------------------------------------------------- VOC


def _split(path: Path) -> list[str]:
    return path.read_text().split()


@pytest.mark.parametrize("year", ["2007", "2012"])
def test_voc_layout_xml_and_masks(roots: dict[str, Path], year: str) -> None:
    base = roots["voc"] / f"VOC{year}"
    main, seg = base / "ImageSets" / "Main", base / "ImageSets" / "Segmentation"
    splits = ["train", "val", "test"] if year == "2007" else ["train", "val"]
    assert (main / "test.txt").is_file() == (year == "2007")
    ids = {s: _split(main / f"{s}.txt") for s in splits + ["trainval"]}
    assert ids["trainval"] == sorted(ids["train"] + ids["val"]) and not set(ids["train"]) & set(ids["val"])
    assert all(_split(seg / f"{s}.txt") == ids[s] for s in splits + ["trainval"])
    pattern = r"\d{6}" if year == "2007" else r"\d{4}_\d{6}"
    all_ids = sorted({i for s in splits for i in ids[s]})
    assert all(re.fullmatch(pattern, i) for i in all_ids)
    assert len(all_ids) == len(splits) * (
        SMOKE.voc2007_per_split if year == "2007" else SMOKE.voc2012_per_split
    )
    presence: dict[str, dict[str, int]] = {}
    saw_void = False
    for image_id in all_ids:
        root = ET.parse(base / "Annotations" / f"{image_id}.xml").getroot()
        assert root.findtext("folder") == f"VOC{year}" and root.findtext("filename") == f"{image_id}.jpg"
        width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
        assert root.findtext("size/depth") == "3" and root.findtext("segmented") == "1"
        with Image.open(base / "JPEGImages" / f"{image_id}.jpg") as image:
            assert image.size == (width, height) and image.format == "JPEG"
        with Image.open(base / "SegmentationClass" / f"{image_id}.png") as mask_image:
            assert mask_image.mode == "P" and mask_image.size == (width, height)
            palette = _palette(mask_image)
            mask = np.array(mask_image)
        assert all(tuple(palette[i]) == colour for i, colour in VOC_COLOURS.items())
        assert set(np.unique(mask)) <= set(range(21)) | {255}
        saw_void |= bool((mask == 255).any())
        objects = root.findall("object")
        assert objects, image_id
        flags = presence.setdefault(image_id, {})
        for obj in objects:
            name = obj.findtext("name")
            assert name in VOC_CLASSES and obj.findtext("pose") and obj.findtext("truncated") in ("0", "1")
            x0, y0, x1, y1 = (int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            assert 1 <= x0 <= x1 <= width and 1 <= y0 <= y1 <= height  # 1-based, inclusive
            index = VOC_CLASSES.index(name) + 1
            inside = mask[y0 - 1 : y1, x0 - 1 : x1]
            assert (inside == index).any() and (inside == 255).any()
            difficult = obj.findtext("difficult") == "1"
            flags[name] = max(flags.get(name, -1), 0 if difficult else 1)
        # class pixels lie only inside boxes of that class
        for value in set(np.unique(mask)) - {0, 255}:
            allowed = np.zeros_like(mask, dtype=bool)
            for obj in objects:
                if VOC_CLASSES.index(obj.findtext("name")) + 1 == value:
                    x0, y0, x1, y1 = (
                        int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")
                    )
                    allowed[y0 - 1 : y1, x0 - 1 : x1] = True
            assert allowed[mask == value].all(), (image_id, value)
    assert saw_void
    for name in VOC_CLASSES:
        for s in splits + ["trainval"]:
            lines = (main / f"{name}_{s}.txt").read_text().splitlines()
            assert [line.split()[0] for line in lines] == ids[s]
            for line in lines:
                image_id, flag = re.fullmatch(r"(\S+) ( 1|-1| 0)", line).groups()  # type: ignore[union-attr]
                assert int(flag) == presence[image_id].get(name, -1)


# --------------------------------------------------------------------------- COCO


@pytest.mark.parametrize("split", ["train2017", "val2017"])
def test_coco_with_pycocotools(roots: dict[str, Path], split: str) -> None:
    import json

    from pycocotools.coco import COCO

    path = roots["coco"] / "annotations" / f"instances_{split}.json"
    document = json.loads(path.read_text())
    assert set(document) == {"info", "licenses", "images", "annotations", "categories"}
    coco = COCO(str(path))
    assert len(coco.imgs) == (SMOKE.coco_train if split == "train2017" else SMOKE.coco_val)
    assert sorted(c["name"] for c in coco.cats.values()) == sorted(synthetic.SHAPES)
    files = sorted(p.name for p in (roots["coco"] / split).iterdir())
    assert files == sorted(info["file_name"] for info in coco.imgs.values())
    for info in coco.imgs.values():
        assert set(info) == {
            "id",
            "file_name",
            "width",
            "height",
            "license",
            "coco_url",
            "flickr_url",
            "date_captured",
        }
        assert info["file_name"] == f"{info['id']:012d}.jpg"
        with Image.open(roots["coco"] / split / info["file_name"]) as image:
            assert image.size == (info["width"], info["height"])
    crowd_kinds = set()
    ring = coco.getCatIds(catNms=["ring"])[0]
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert set(ann) == {"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"}
        assert ann["category_id"] in coco.cats
        mask = coco.annToMask(ann)
        assert mask.shape == (coco.imgs[ann["image_id"]]["height"], coco.imgs[ann["image_id"]]["width"])
        assert mask.sum() == ann["area"] > 0
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann["bbox"]
        # the box is the polygon's extent; sharp tips may poke up to ~2 px past the last pixel centre
        assert abs(xs.min() - x) <= 2 and abs(ys.min() - y) <= 2
        assert abs(xs.max() + 1 - (x + w)) <= 2 and abs(ys.max() + 1 - (y + h)) <= 2
        if ann["iscrowd"]:
            crowd_kinds.add(type(ann["segmentation"]["counts"]).__name__)
        else:
            assert isinstance(ann["segmentation"], list) and len(ann["segmentation"][0]) >= 6
            if ann["category_id"] == ring:  # the hole is represented
                assert mask[int(y + h / 2), int(x + w / 2)] == 0
    assert crowd_kinds == {"list", "str"}  # uncompressed and compressed RLE


# --------------------------------------------------------------------------- DAVIS


def test_davis_sequences_move_smoothly(roots: dict[str, Path]) -> None:
    root = roots["davis"]
    train, val = (_split(root / "ImageSets" / "2017" / f"{s}.txt") for s in ("train", "val"))
    assert len(train) == SMOKE.davis_train and len(val) == SMOKE.davis_val and not set(train) & set(val)
    for seq in train + val:
        frames = sorted((root / "JPEGImages" / "480p" / seq).iterdir())
        masks = sorted((root / "Annotations" / "480p" / seq).iterdir())
        assert [p.name for p in frames] == [f"{t:05d}.jpg" for t in range(SMOKE.davis_frames)]
        assert [p.stem for p in masks] == [p.stem for p in frames]
        n_objects = len(seq.split("-")) - 1  # "<shape>-<shape>-<index>"
        centroids = []
        for frame, mask_path in zip(frames, masks):
            with Image.open(mask_path) as m, Image.open(frame) as f:
                assert m.mode == "P" and m.size == f.size == SMOKE.davis_size
                assert tuple(_palette(m)[0]) == VOC_COLOURS[0] and tuple(_palette(m)[1]) == VOC_COLOURS[1]
                ids = np.array(m)
            assert set(np.unique(ids)) <= set(range(n_objects + 1))
            ys, xs = np.nonzero(ids == 1)
            centroids.append((xs.mean(), ys.mean()) if len(xs) else (np.nan, np.nan))
        steps = np.linalg.norm(np.diff(np.array(centroids), axis=0), axis=1)
        steps = steps[~np.isnan(steps)]
        assert steps.max() < 0.15 * SMOKE.davis_size[0]  # no jumps
        assert np.nansum(steps) > 5  # but it moves


# --------------------------------------------------------------------------- Cityscapes


def test_cityscapes_label_and_train_ids_agree(roots: dict[str, Path]) -> None:
    root = roots["cityscapes"]
    lut = np.full(256, 255, dtype=np.uint8)
    for label_id, train_id in OFFICIAL_TRAIN_IDS.items():
        lut[label_id] = train_id
    seen: set[int] = set()
    for split, cities in (("train", SMOKE.cityscapes_train), ("val", SMOKE.cityscapes_val)):
        images = sorted((root / "leftImg8bit" / split).glob("*/*.png"))
        assert len(images) == sum(n for _, n in cities)
        assert sorted({p.parent.name for p in images}) == sorted(city for city, _ in cities)
        for image_path in images:
            match = re.fullmatch(r"([a-z]+)_(\d{6})_(\d{6})_leftImg8bit\.png", image_path.name)
            assert match and match.group(1) == image_path.parent.name
            stem = image_path.name[: -len("_leftImg8bit.png")]
            gt = root / "gtFine" / split / image_path.parent.name
            image = _mode_and_array(image_path)
            label_ids = _mode_and_array(gt / f"{stem}_gtFine_labelIds.png")
            train_ids = _mode_and_array(gt / f"{stem}_gtFine_labelTrainIds.png")
            assert (image[0], label_ids[0], train_ids[0]) == ("RGB", "L", "L")
            label_ids, train_ids = label_ids[1], train_ids[1]
            assert image[1].shape[:2] == label_ids.shape == train_ids.shape == SMOKE.cityscapes_size[::-1]
            assert np.array_equal(train_ids, lut[label_ids])
            seen |= set(np.unique(label_ids).tolist())
    assert {7, 8, 11, 21, 23, 24, 26} <= seen  # road, sidewalk, building, vegetation, sky, person, car
    assert seen - set(OFFICIAL_TRAIN_IDS)  # some pixels map to 255 (ego vehicle)


def test_voc_boxes_are_one_based_and_inclusive() -> None:
    square = synthetic.SHAPES.index("square")  # unit outline +-0.8: size 12.5 spans x, y in [10, 20]
    obj = synthetic.ShapeObject(square, cx=15.0, cy=15.0, size=12.5, angle=0.0, aspect=1.0, color=(255, 0, 0))
    scene = synthetic.render_scene(np.zeros((30, 40, 3), np.uint8), [obj], np.random.default_rng(0))
    assert np.flatnonzero(scene.instance_ids.any(axis=0)).tolist() == list(
        range(10, 20)
    )  # 0-based columns 10..19
    (box,) = synthetic.voc_boxes(scene, [obj])
    assert box.name == VOC_CLASSES[square] and box.box == (11, 11, 20, 20)


def _coco_colour_means(root: Path, split: str = "train2017") -> tuple[np.ndarray, np.ndarray]:
    """Per image: mean RGB of the background pixels and of the object pixels (COCO masks)."""
    from pycocotools.coco import COCO

    coco = COCO(str(root / "annotations" / f"instances_{split}.json"))
    backgrounds, objects = [], []
    for image_id, info in coco.imgs.items():
        pixels = np.asarray(Image.open(root / split / info["file_name"]).convert("RGB"), dtype=float)
        inside = np.zeros(pixels.shape[:2], dtype=bool)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[image_id])):
            inside |= coco.annToMask(ann).astype(bool)
        backgrounds.append(pixels[~inside].mean(axis=0))
        objects.append(pixels[inside].mean(axis=0))
    return np.array(backgrounds), np.array(objects)


def test_coco_palette_scenes_use_the_shape_sets_colour_pair(roots: dict[str, Path], tmp_path: Path) -> None:
    (background, objects), = synthetic.CLASSIFICATION_PALETTE
    root = synthetic.generate(tmp_path, formats=["coco"], coco_colors="palette")["coco"]
    assert json.loads((root / synthetic.MARKER).read_text())["coco_colors"] == "palette"
    bg, obj = _coco_colour_means(root)
    assert len(bg) == SMOKE.coco_train
    # JPEG, shading and pixel noise move the means a little; edges blur object into background
    assert np.abs(bg - background).max() < 12, bg
    assert np.abs(obj - objects).max() < 45, obj
    random_bg, _ = _coco_colour_means(roots["coco"])
    assert random_bg.std(axis=0).min() > 20  # the default draws a colour per scene
    # the same layout of annotations as the default writer: pycocotools reads both alike
    assert sorted(p.name for p in (root / "annotations").iterdir()) == ["instances_train2017.json",
                                                                       "instances_val2017.json"]
    # switching back regenerates (the marker names the colours), an unknown value is refused
    synthetic.generate(tmp_path, formats=["coco"])
    assert "coco_colors" not in json.loads((root / synthetic.MARKER).read_text())
    with pytest.raises(ValueError, match="coco_colors"):
        synthetic.generate(tmp_path, formats=["coco"], coco_colors="pastel")
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path), "--formats", "coco", "--coco-colors", "pastel"])


def test_coco_themed_scenes_draw_one_shape_many_times(roots: dict[str, Path], tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    def per_image(root: Path) -> list[list[int]]:
        coco = COCO(str(root / "annotations" / "instances_train2017.json"))
        return [[a["category_id"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[i], iscrowd=False))]
                for i in sorted(coco.imgs)]

    root = synthetic.generate(tmp_path, formats=["coco"], coco_colors="palette", coco_layout="themed")["coco"]
    marker = json.loads((root / synthetic.MARKER).read_text())
    assert (marker["coco_colors"], marker["coco_layout"]) == ("palette", "themed")
    themed = per_image(root)
    assert len(themed) == SMOKE.coco_train
    low, high = synthetic.COCO_THEMED_COUNT
    assert all(len(set(c)) == 1 and len(c) <= high - 1 for c in themed), themed  # one shape per scene
    assert np.mean([len(c) for c in themed]) >= low  # placement may drop a few, not most
    assert len({c[0] for c in themed}) >= 5  # the theme varies from scene to scene
    mixed = per_image(roots["coco"])  # the default layout mixes shapes within a scene
    assert sum(len(set(c)) > 1 for c in mixed) > len(mixed) / 2
    # the colours stay the palette's: the layout is a separate choice
    bg, _ = _coco_colour_means(root)
    assert np.abs(bg - synthetic.CLASSIFICATION_PALETTE[0][0]).max() < 12
    # switching back regenerates, an unknown value is refused (API and command line)
    synthetic.generate(tmp_path, formats=["coco"], coco_colors="palette")
    assert "coco_layout" not in json.loads((root / synthetic.MARKER).read_text())
    with pytest.raises(ValueError, match="coco_layout"):
        synthetic.generate(tmp_path, formats=["coco"], coco_layout="sparse")
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(tmp_path), "--formats", "coco", "--coco-layout", "sparse"])
