"""STL-10 binary reader and ImageFolder class-list subsets (ImageNet-100 style)."""
import numpy as np
import pytest

from pretrain.data.loading import open_dataset
from pretrain.data.readers import DatasetError, ImageFolder


def _write_stl10(root, n_train=3, n_unlabeled=2):
    rng = np.random.default_rng(0)
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    images = {}
    for part, n in (("train", n_train), ("test", 2), ("unlabeled", n_unlabeled)):
        hwc = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
        images[part] = hwc
        hwc.transpose(0, 3, 2, 1).tofile(folder / f"{part}_X.bin")  # channel, then column-major
    (np.arange(n_train) % 10 + 1).astype(np.uint8).tofile(folder / "train_y.bin")
    np.array([10, 1], dtype=np.uint8).tofile(folder / "test_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    return images


def test_stl10_reads_the_binary_layout(tmp_path):
    images = _write_stl10(tmp_path)
    train = open_dataset("stl10", tmp_path, "train")
    assert len(train) == 3 and train.targets == [0, 1, 2] and train.classes[0] == "c0"
    image, label = train[1]
    assert image.size == (96, 96) and label == 1
    np.testing.assert_array_equal(np.asarray(image), images["train"][1])
    both = open_dataset("stl10", tmp_path / "stl10_binary", "train+unlabeled")
    assert len(both) == 5 and both.targets[3:] == [-1, -1]
    np.testing.assert_array_equal(np.asarray(both[4][0]), images["unlabeled"][1])
    assert open_dataset("stl10", tmp_path, "test").targets == [9, 0]


def test_stl10_errors_name_the_file(tmp_path):
    _write_stl10(tmp_path)
    (tmp_path / "stl10_binary" / "train_y.bin").unlink()
    with pytest.raises(DatasetError, match="train_y.bin"):
        open_dataset("stl10", tmp_path, "train")
    with open(tmp_path / "stl10_binary" / "test_X.bin", "ab") as f:
        f.write(b"x")
    with pytest.raises(DatasetError, match="test_X.bin"):
        open_dataset("stl10", tmp_path, "test")


def test_imagefolder_class_list_subset(generated, tmp_path):
    root = generated["imagefolder"]
    full = ImageFolder(root, "train")
    keep = full.classes[1:3]
    (tmp_path / "classes.txt").write_text("\n".join(reversed(keep)))
    subset = ImageFolder(root, "train", classes=tmp_path / "classes.txt")
    assert subset.classes == sorted(keep)
    assert len(subset) == sum(1 for _, y in full.samples if full.classes[y] in keep)
    assert set(subset.targets) == {0, 1}
    with pytest.raises(DatasetError, match="n99999999"):
        ImageFolder(root, "train", classes=[keep[0], "n99999999"])
