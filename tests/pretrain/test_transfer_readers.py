"""Linear-transfer readers on their generated miniatures (pretrain.data.synthetic_transfer)."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pretrain.data import synthetic_transfer as mini
from pretrain.data import transfer_readers as tr
from pretrain.data.loading import UInt8Images, open_dataset
from pretrain.data.readers import VOC, DatasetError

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    return mini.generate(tmp_path_factory.mktemp("transfer"), seed=0)


def per_class(dataset) -> dict[int, int]:
    labels, counts = np.unique([dataset[i][1] for i in range(len(dataset))], return_counts=True)
    return dict(zip(labels.tolist(), counts.tolist()))


SINGLE_LABEL = ["food101", "birdsnap", "sun397", "cars", "aircraft", "dtd", "pets", "flowers102"]


@pytest.mark.parametrize("kind", SINGLE_LABEL)
def test_reader_counts_labels_and_splits(roots, kind):
    sizes = mini.SIZES[kind]
    splits = [s for s in sizes if s != "classes"]
    seen: dict[str, set] = {}
    for split in splits:
        dataset = open_dataset(kind, roots[kind], split)  # registered in the suite's registry
        assert len(dataset.classes) == sizes["classes"]
        assert per_class(dataset) == {c: sizes[split] for c in range(sizes["classes"])}
        # the label is the class the image was drawn as: the generator's seeded render of that class
        name, label = dataset.samples[0]
        assert label == dataset.targets[0]
        seen[split] = {name for name, _ in dataset.samples}
        image, _ = dataset[0]
        assert image.mode == "RGB" and image.size == (mini.IMAGE_SIZE, mini.IMAGE_SIZE)
    for a in splits:  # official splits are disjoint
        for b in splits:
            assert a == b or not seen[a] & seen[b]
    if "val" in splits:
        trainval = open_dataset(kind, roots[kind], "trainval") if kind in ("aircraft", "dtd") else None
        if trainval is not None:
            assert {n for n, _ in trainval.samples} == seen["train"] | seen["val"]


def test_class_names_from_the_official_files(roots):
    assert open_dataset("food101", roots["food101"]).classes == ["circle", "square", "triangle"]
    assert open_dataset("sun397", roots["sun397"]).classes == ["abbey", "bakery/shop", "canyon"]
    assert open_dataset("aircraft", roots["aircraft"]).classes == list(mini.AIRCRAFT_VARIANTS)
    assert open_dataset("pets", roots["pets"], "trainval").classes == [b for b, _ in mini.PETS_BREEDS]
    assert open_dataset("cars", roots["cars"]).classes[0] == "Circle Motors Model 2000"
    assert open_dataset("dtd", roots["dtd"]).classes == ["banded", "bubbly", "cracked"]
    # SUN397 partition 1 is read, not 2 (whose train list is partition 1's test list)
    sun_test = {n for n, _ in open_dataset("sun397", roots["sun397"], "test").samples}
    assert not sun_test & {n for n, _ in open_dataset("sun397", roots["sun397"], "train").samples}


def test_birdsnap_skips_listed_but_missing_images(roots):
    test = open_dataset("birdsnap", roots["birdsnap"], "test")
    assert test.missing_listed == mini.BIRDSNAP_MISSING
    assert len(test) == 3 * mini.SIZES["birdsnap"]["test"]


def test_caltech101_seeded_30_per_class_split(roots):
    train = open_dataset("caltech101", roots["caltech101"], "train")
    test = open_dataset("caltech101", roots["caltech101"], "test")
    total = mini.SIZES["caltech101"]["total"]
    assert train.classes[0] == "BACKGROUND_Google" and len(train.classes) == 3
    assert per_class(train) == {0: 30, 1: 30, 2: 30}
    assert per_class(test) == {c: total - 30 for c in range(3)}
    assert not {n for n, _ in train.samples} & {n for n, _ in test.samples}
    again = tr.Caltech101(roots["caltech101"], "train")
    other = tr.Caltech101(roots["caltech101"], "train", seed=1)
    assert again.samples == train.samples and other.samples != train.samples
    with pytest.raises(DatasetError, match="BACKGROUND_Google has 32 images"):
        tr.Caltech101(roots["caltech101"], "train", train_per_class=total)


def test_voc2007_multilabel_matches_the_xml(roots):
    for split in ("train", "val", "test"):
        dataset = open_dataset("voc2007", roots["voc2007"], split)
        voc = VOC(roots["voc2007"], "2007", split)
        assert dataset.ids == voc.ids and len(dataset) == mini.VOC2007_PER_SPLIT
        for i, image_id in enumerate(voc.ids):  # the class files agree with the XML objects
            expected = np.full(20, -1)
            for obj in voc.objects(image_id):
                expected[obj.label] = max(expected[obj.label], 0 if obj.difficult else 1)
            np.testing.assert_array_equal(dataset.label_matrix[i], expected)
        np.testing.assert_array_equal(dataset.multi_hot, dataset.label_matrix == 1)
        assert dataset[3][1] == 3


def test_cifar_and_protocol_splits(roots):
    splits = tr.protocol_splits("cifar10", roots["cifar10"])
    n = mini.CIFAR_SCALE.cifar10_train
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (n - n // 5, n // 5,
                                                                               mini.CIFAR_SCALE.cifar10_test)
    train_idx, val_idx = tr.random_val_indices(n)
    reference = list(range(n))
    np.random.seed(0)
    np.random.shuffle(reference)  # Ericsson's get_train_valid_loader
    assert val_idx.tolist() == reference[: n // 5] and train_idx.tolist() == reference[n // 5:]
    assert splits["train"].targets == [splits["train"].dataset.targets[i] for i in train_idx]
    for kind in ("aircraft", "dtd", "flowers102", "voc2007"):
        assert tr.protocol_splits(kind, roots[kind])["val_source"] == "official 'val' split"
    assert tr.protocol_splits("pets", roots["pets"])["val_source"].startswith("random 20% of 'trainval'")
    images = UInt8Images(splits["train"], 16)
    assert tuple(images[0][0].shape) == (3, 16, 16)


def test_zip_copy_reads_the_same(roots, tmp_path):
    archive = tmp_path / "dtd.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(roots["dtd"].rglob("*")):
            if path.is_file():
                z.write(path, f"dtd/{path.relative_to(roots['dtd'])}")
    zipped, plain = tr.DTD(archive, "test"), tr.DTD(roots["dtd"], "test")
    assert [label for _, label in zipped.samples] == [label for _, label in plain.samples]
    assert np.array_equal(np.asarray(zipped[0][0]), np.asarray(plain[0][0]))


@pytest.mark.parametrize("kind,missing", [
    ("food101", "meta/test.json"), ("sun397", "Testing_01.txt"), ("cars", "devkit/cars_test_annos_withlabels.mat"),
    ("aircraft", "data/images_variant_test.txt"), ("dtd", "labels/test1.txt"), ("pets", "annotations/test.txt"),
    ("flowers102", "setid.mat"), ("voc2007", "VOC2007/ImageSets/Main/dog_test.txt"),
])
def test_missing_split_file_names_it(roots, tmp_path, kind, missing):
    copy = tmp_path / kind
    shutil.copytree(roots[kind], copy)
    (copy / missing).unlink()
    with pytest.raises(DatasetError, match=Path(missing).name):
        open_dataset(kind, copy, "test")


def test_missing_root_missing_image_and_undecodable_image(roots, tmp_path):
    for kind in tr.READERS:
        with pytest.raises(DatasetError, match="nowhere"):
            open_dataset(kind, tmp_path / "nowhere", "test")
    copy = tmp_path / "food"
    shutil.copytree(roots["food101"], copy)
    victim = copy / "images" / open_dataset("food101", roots["food101"], "test").samples[0][0].split("images/")[1]
    victim.write_bytes(b"not a jpeg")
    dataset = open_dataset("food101", copy, "test")
    with pytest.raises(DatasetError, match=victim.name):
        dataset[0]
    victim.unlink()
    with pytest.raises(DatasetError, match=victim.name):
        open_dataset("food101", copy, "test")
    with pytest.raises(ValueError, match="split"):
        open_dataset("pets", roots["pets"], "val")
