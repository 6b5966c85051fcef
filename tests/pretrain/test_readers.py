"""Dataset readers on generated data, on the real subsets in ../shared/data, and on broken input."""

from __future__ import annotations

import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pretrain.data import synthetic
from pretrain.data.readers import (
    CIFAR,
    DAVIS,
    VOC,
    VOC_CLASSES,
    VOC_PALETTE,
    Cityscapes,
    COCOInstances,
    COCOObjects,
    DatasetError,
    ImageFolder,
    TinyImageNet,
    cityscapes_train_ids,
    load_image,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# The repository is <base>/main and the shared real data sits beside it in <base>/shared/data.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SMOKE = synthetic.SCALES["smoke"]


def shared(name: str) -> Path:
    """A real dataset from SHARED_DATA; skipped when absent, except under CI where it must exist."""
    path = SHARED_DATA / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing and CI is set")
        pytest.skip(f"{path} is not present")
    return path


@pytest.fixture(scope="session")
def roots(generated: dict[str, Path]) -> dict[str, Path]:
    """All formats, seed 0, smoke scale: tests/conftest.py generates them once per session."""
    return generated


# --------------------------------------------------------------------------- generated data


def test_imagefolder_directory_and_zip_agree(roots: dict[str, Path], tmp_path: Path) -> None:
    folder = ImageFolder(roots["imagefolder"], "train")
    assert folder.classes == sorted(synthetic.SHAPES[: SMOKE.imagefolder_classes])
    assert folder.class_to_idx == {c: i for i, c in enumerate(folder.classes)}
    assert np.bincount(folder.targets).tolist() == [SMOKE.imagefolder_train_per_class] * len(folder.classes)
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # with one top-level folder, like many distributed zips
        for path in sorted(roots["imagefolder"].rglob("*.jpg")):
            zf.write(path, f"shapes/{path.relative_to(roots['imagefolder'])}")
    zipped = ImageFolder(archive, "train", max_per_class=3)
    assert zipped.classes == folder.classes
    assert [(name.removeprefix("shapes/"), label) for name, label in zipped.samples] == [
        s for c in range(len(folder.classes)) for s in [x for x in folder.samples if x[1] == c][:3]
    ]
    for index in (0, len(zipped) - 1):
        image, label = zipped[index]
        assert label == zipped.samples[index][1]
        expected, _ = folder[folder.samples.index((zipped.samples[index][0].removeprefix("shapes/"), label))]
        assert np.array_equal(np.asarray(image), np.asarray(expected))
    val = ImageFolder(roots["imagefolder"], "val", transform=lambda im: np.asarray(im).shape)
    assert len(val) == SMOKE.imagefolder_val_per_class * len(folder.classes)
    assert val[0][0] == (SMOKE.imagefolder_size, SMOKE.imagefolder_size, 3)


def test_cifar_reader_decodes_pickle_rows(roots: dict[str, Path]) -> None:
    train = CIFAR(roots["cifar10"].parent, "cifar10", train=True)
    test = CIFAR(roots["cifar10"], "cifar10", train=False)  # the batches folder itself works too
    assert train.classes == list(synthetic.SHAPES[: SMOKE.cifar10_classes])
    assert train.data.shape == (SMOKE.cifar10_train, 32, 32, 3) and train.data.dtype == np.uint8
    assert len(test) == SMOKE.cifar10_test and len(train.targets) == len(train)
    with open(roots["cifar10"] / "data_batch_1", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    row = batch[b"data"][7]
    assert np.array_equal(train.data[7][..., 0].ravel(), row[:1024])  # red plane first, row-major
    assert np.array_equal(train.data[7][..., 2].ravel(), row[2048:])
    image, label = train[7]
    assert image.size == (32, 32) and label == batch[b"labels"][7]
    c100 = CIFAR(roots["cifar100"].parent, "cifar100", train=True)
    assert len(c100.classes) == 100 and len(c100.coarse_classes or []) == 20
    assert len(c100) == SMOKE.cifar100_train and len(c100.coarse_targets or []) == len(c100)
    assert all(
        c100.classes[f].split("_")[0] == c100.coarse_classes[c].split("_")[0]
        for f, c in zip(c100.targets, c100.coarse_targets)
    )  # type: ignore[index,arg-type]


def test_voc_reader_detection_and_segmentation(roots: dict[str, Path]) -> None:
    detection = VOC(roots["voc"], "2007", "test", "detection")
    assert len(detection) == SMOKE.voc2007_per_split
    image, objects = detection[0]
    assert objects and all(VOC_CLASSES[o.label] == o.name for o in objects)
    x0, y0, x1, y1 = objects[0].box
    assert 1 <= x0 <= x1 <= image.width and 1 <= y0 <= y1 <= image.height
    segmentation = VOC(roots["voc"] / "VOC2012", "2012", "train", "segmentation")
    image, mask = segmentation[0]
    assert mask.dtype == np.uint8 and mask.shape == (image.height, image.width)
    assert set(np.unique(mask)) <= set(range(21)) | {255} and (mask > 0).any()
    labels_in_mask = set(np.unique(mask)) - {0, 255}
    assert labels_in_mask == {o.label + 1 for o in segmentation.objects(segmentation.ids[0])}


def test_coco_reader(roots: dict[str, Path]) -> None:
    dataset = COCOInstances(roots["coco"], "val2017")
    assert len(dataset) == SMOKE.coco_val and sorted(dataset.categories.values()) == sorted(synthetic.SHAPES)
    image, annotations = dataset[0]
    info = dataset.coco.imgs[dataset.ids[0]]
    assert image.size == (info["width"], info["height"]) and annotations
    for ann in annotations:
        mask = dataset.annotation_mask(ann)
        assert mask.shape == (image.height, image.width) and mask.sum() == ann["area"]


def test_davis_and_cityscapes_readers(roots: dict[str, Path]) -> None:
    davis = DAVIS(roots["davis"], "val")
    assert len(davis) == SMOKE.davis_val and davis.sequences == sorted(davis.sequences)
    sequence = davis[0]
    assert len(sequence.frames) == len(sequence.annotations) == SMOKE.davis_frames
    ids = davis.load_annotation(sequence.annotations[0])
    assert ids.dtype == np.uint8 and ids.shape == Image.open(sequence.frames[0]).size[::-1] and 1 in ids
    assert (
        DAVIS(roots["davis"].parent, "train").sequences
        == (roots["davis"] / "ImageSets/2017/train.txt").read_text().split()
    )
    city = Cityscapes(roots["cityscapes"], "train")
    assert len(city) == sum(n for _, n in SMOKE.cityscapes_train)
    image, train_ids = city[0]
    assert train_ids.shape == (image.height, image.width)
    label_ids = np.array(Image.open(str(city.pairs[0][1]).replace("labelTrainIds", "labelIds")))
    assert np.array_equal(train_ids, cityscapes_train_ids(label_ids))


def _to_tensor(image: Image.Image) -> torch.Tensor:  # noqa: F821  (module level: picklable)
    import torch

    return torch.from_numpy(np.asarray(image).copy())


def test_zip_reader_survives_pickling_and_dataloader_workers(tmp_path: Path, roots: dict[str, Path]) -> None:
    import torch
    from torch.utils.data import DataLoader

    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((roots["imagefolder"] / "val").rglob("*.jpg")):
            zf.write(path, f"val/{path.relative_to(roots['imagefolder'] / 'val')}")
    dataset = ImageFolder(archive, "val", transform=_to_tensor)
    first = dataset[0][0]  # opens the zip in this process before the workers start
    clone = pickle.loads(pickle.dumps(dataset))
    assert torch.equal(clone[0][0], first)
    loader = DataLoader(dataset, batch_size=25, num_workers=2)
    images = torch.cat([batch for batch, _ in loader])
    assert images.shape == (len(dataset), SMOKE.imagefolder_size, SMOKE.imagefolder_size, 3)
    assert torch.equal(images[0], first)


# --------------------------------------------------------------------------- real subsets


def test_real_cifar10_jpeg_zip() -> None:
    archive = shared("cifar10-jpeg.zip")
    for split, per_class in (("train", 5000), ("test", 1000)):
        dataset = ImageFolder(archive, split)
        assert len(dataset.classes) == 10 and "airplane" in dataset.classes
        assert np.bincount(dataset.targets).tolist() == [per_class] * 10
        for index in (0, len(dataset) // 2, len(dataset) - 1):
            image, label = dataset[index]
            assert image.size == (32, 32) and image.mode == "RGB" and label == dataset.samples[index][1]


def test_real_tiny_imagenet_zip() -> None:
    archive = shared("tiny-imagenet-10.zip")
    train, val = TinyImageNet(archive, "train"), TinyImageNet(archive, "val")
    assert len(train.classes) == 10 and train.classes == val.classes
    assert np.bincount(train.targets).tolist() == [500] * 10
    assert len(val) == 500 and len(set(val.targets)) == 10
    image, label = val[0]
    assert image.size == (64, 64) and 0 <= label < 10


def test_real_voc2012() -> None:
    root = shared("voc") / "VOC2012"
    detection = VOC(root, "2012", "trainval", "detection")
    segmentation = VOC(root.parent, "2012", "trainval", "segmentation")
    assert len(detection) == len(segmentation) == 60
    assert all(detection.objects(i) for i in detection.ids)
    for index in range(len(segmentation)):
        image, mask = segmentation[index]
        assert mask.shape == (image.height, image.width)
        values = set(np.unique(mask))
        assert values <= set(range(21)) | {255} and values - {0, 255}
        named = {o.label + 1 for o in detection.objects(segmentation.ids[index])}
        assert values - {0, 255} <= named
    with Image.open(segmentation.mask_path(segmentation.ids[0])) as m:
        assert np.array_equal(
            np.frombuffer(bytes(m.getpalette()), np.uint8).reshape(-1, 3)[:21], VOC_PALETTE[:21]
        )


def test_real_coco() -> None:
    root = shared("coco")
    for split, count in (("train2017", 80), ("val2017", 79)):
        dataset = COCOInstances(root, split)
        assert len(dataset) == count and len(dataset.categories) == 80
        image, annotations = dataset[0]
        assert annotations
        crowd = [a for a in dataset.coco.loadAnns(dataset.coco.getAnnIds()) if a["iscrowd"]]
        assert crowd and dataset.annotation_mask(crowd[0]).shape == (
            dataset.coco.imgs[crowd[0]["image_id"]]["height"],
            dataset.coco.imgs[crowd[0]["image_id"]]["width"],
        )
        assert dataset.annotation_mask(annotations[0]).sum() > 0


def _objects_by_hand(annotation_file: Path, min_size: float) -> list[tuple[int, int]]:
    """(annotation id, category id) of every non-crowd box of at least min_size^2 px, from the JSON."""
    import json

    document = json.loads(annotation_file.read_text())
    return sorted((a["id"], a["category_id"]) for a in document["annotations"]
                  if not a["iscrowd"] and a["bbox"][2] * a["bbox"][3] >= min_size ** 2)


@pytest.mark.parametrize("which", ["generated", "real"])
def test_coco_objects(which: str, roots: dict[str, Path]) -> None:
    root = roots["coco"] if which == "generated" else shared("coco")
    for split in ("train2017", "val2017"):
        objects = COCOObjects(root, split, min_size=24)
        instances = COCOInstances(root, split)
        expected = _objects_by_hand(root / "annotations" / f"instances_{split}.json", 24)
        assert len(objects) == len(expected) > 0
        names = [instances.categories[c] for _, c in expected]
        assert sorted(objects.classes[label] for label in objects.targets) == sorted(names)
        assert objects.classes == [instances.categories[c] for c in sorted(instances.categories)]
        for index in (0, len(objects) // 2, len(objects) - 1):
            crop, label = objects[index]
            image_id, (x, y, w, h), _ = objects.samples[index]
            assert label == objects.targets[index]
            assert crop.size == (round(max(w, h)),) * 2
    fewer = COCOObjects(root, "train2017", min_size=24, max_per_class=1)
    assert len(fewer) == len(set(fewer.targets)) == len(set(COCOObjects(root, "train2017", min_size=24).targets))


def test_coco_objects_crop_pixels(tmp_path: Path) -> None:
    """A 12x6 box at (40, 10) of a 64x48 gradient image: the crop is the 12x12 square centred on
    the box (rows 7..19), and a box at the border is moved inside the image."""
    import json

    image = (np.arange(64 * 48 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)
    (tmp_path / "train2017").mkdir()
    (tmp_path / "annotations").mkdir()
    Image.fromarray(image).save(tmp_path / "train2017" / "1.png")
    anns = [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [40, 10, 12, 6], "iscrowd": 0, "area": 72},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [60, 44, 4, 4], "iscrowd": 0, "area": 16},
            {"id": 3, "image_id": 1, "category_id": 3, "bbox": [0, 0, 30, 30], "iscrowd": 1, "area": 900}]
    (tmp_path / "annotations" / "instances_train2017.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 48}], "annotations": anns,
        "categories": [{"id": 3, "name": "three"}, {"id": 7, "name": "seven"}]}))
    objects = COCOObjects(tmp_path, "train2017", min_size=4)
    assert objects.classes == ["three", "seven"] and objects.targets == [1, 0]  # the crowd is left out
    crop, label = objects[0]
    assert label == 1 and np.array_equal(np.asarray(crop), image[7:19, 40:52])
    corner, _ = objects[1]
    assert np.array_equal(np.asarray(corner), image[44:48, 60:64])
    assert len(COCOObjects(tmp_path, "train2017", min_size=5)) == 1  # 4x4 < 5^2
    with pytest.raises(DatasetError, match="no object"):
        COCOObjects(tmp_path, "train2017", min_size=13)


def test_real_davis() -> None:
    davis = DAVIS(shared("davis"), "val")
    assert davis.sequences == ["blackswan", "car-shadow"]
    for sequence in davis:
        assert len(sequence.frames) == len(sequence.annotations) > 0
        for path in (sequence.annotations[0], sequence.annotations[-1]):
            ids = davis.load_annotation(path)
            assert set(np.unique(ids)) == {0, 1}
            assert ids.shape == load_image(sequence.frames[0]).size[::-1]


def test_real_imagenet_sample() -> None:
    dataset = ImageFolder(shared("imagenet-sample"), "train")
    assert len(dataset.classes) == 100 and len(dataset) == 100
    image, label = dataset[99]
    assert label == 99 and min(image.size) >= 224


# --------------------------------------------------------------------------- broken input


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for make in (
        lambda: ImageFolder(missing),
        lambda: CIFAR(missing),
        lambda: TinyImageNet(missing),
        lambda: VOC(missing),
        lambda: COCOInstances(missing),
        lambda: COCOObjects(missing),
        lambda: DAVIS(missing),
        lambda: Cityscapes(missing),
    ):
        with pytest.raises(DatasetError, match="nowhere"):
            make()


def test_corrupt_jpeg_names_the_file(tmp_path: Path) -> None:
    good = np.zeros((8, 8, 3), np.uint8)
    (tmp_path / "train" / "a").mkdir(parents=True)
    Image.fromarray(good).save(tmp_path / "train" / "a" / "ok.jpg")
    (tmp_path / "train" / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    dataset = ImageFolder(tmp_path, "train")
    assert dataset[dataset.samples.index(("train/a/ok.jpg", 0))][0].size == (8, 8)
    with pytest.raises(DatasetError, match=r"cannot decode image .*broken\.jpg"):
        dataset[dataset.samples.index(("train/a/broken.jpg", 0))]
    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train/a/broken.jpg", b"garbage")
    with pytest.raises(DatasetError, match=r"broken\.zip/train/a/broken\.jpg"):
        ImageFolder(archive, "train")[0]
    with pytest.raises(DatasetError, match="blob"):
        load_image(b"not an image", name="blob")


def test_missing_split_file_names_it(roots: dict[str, Path], tmp_path: Path) -> None:
    voc = tmp_path / "VOCdevkit"
    shutil.copytree(roots["voc"] / "VOC2012", voc / "VOC2012")
    (voc / "VOC2012" / "ImageSets" / "Segmentation" / "val.txt").unlink()
    with pytest.raises(DatasetError, match=r"ImageSets/Segmentation/val\.txt"):
        VOC(voc, "2012", "val", "segmentation")
    with pytest.raises(DatasetError, match=r"ImageSets/Main/test\.txt"):
        VOC(voc, "2012", "test", "detection")
    with pytest.raises(DatasetError, match=r"ImageSets/2017/test-dev\.txt"):
        DAVIS(roots["davis"], "test-dev")
    with pytest.raises(DatasetError, match=r"missing split folder .*imagefolder/test"):
        ImageFolder(roots["imagefolder"], "test")


def test_bad_masks_and_labels_name_the_file(roots: dict[str, Path], tmp_path: Path) -> None:
    voc = tmp_path / "VOC2012"
    shutil.copytree(roots["voc"] / "VOC2012", voc)
    dataset = VOC(voc, "2012", "train", "segmentation")
    mask_path = dataset.mask_path(dataset.ids[0])
    Image.fromarray(np.zeros((5, 7), np.uint8)).save(mask_path)
    with pytest.raises(DatasetError, match=rf"mask {mask_path} is 7x5 but image .*{dataset.ids[0]}\.jpg"):
        dataset[0]
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(mask_path)
    with pytest.raises(DatasetError, match="mode 'RGB'"):
        dataset[0]
    city = tmp_path / "cityscapes"
    shutil.copytree(roots["cityscapes"], city)
    victim = sorted((city / "gtFine" / "val").rglob("*_labelTrainIds.png"))[0]
    victim.unlink()
    with pytest.raises(DatasetError, match=rf"{victim.name}.*createTrainIdLabelImgs"):
        Cityscapes(city, "val")
    cifar = tmp_path / "cifar-10-batches-py"
    shutil.copytree(roots["cifar10"], cifar)
    (cifar / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3"):
        CIFAR(cifar)
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no images in class folder .*train/a"):
        ImageFolder(tmp_path / "empty", "train")
