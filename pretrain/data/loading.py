"""From a dataset reader to uint8 tensor batches for the device.

Augmentation happens on the device (``pretrain.data.augment``), so the loader only
decodes and, when the images differ in size, resizes them to one fixed side
(``image_size``) so that they stack. Sampling is a function of (seed, epoch): a run
resumed at step s sees exactly the batches an uninterrupted run sees.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

DATASET_KINDS = ("imagefolder", "imagelist", "coco", "coco-objects", "cifar10", "cifar100", "tinyimagenet",
                 "stl10")
# the dataset's name in a result record when none is given (default: the kind)
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tinyimagenet": "Tiny-ImageNet",
                 "coco-objects": "COCO objects"}
# the split a dataset is evaluated on when none is named: the release's labelled test split, or
# its val split where the test labels are not public (Tiny-ImageNet; ImageNet in ImageFolder layout)
TEST_SPLITS = {"cifar10": "test", "cifar100": "test", "stl10": "test", "tinyimagenet": "val",
               "coco-objects": "val2017"}


def default_test_split(kind: str, root: str | Path) -> str:
    """The evaluation split of a dataset kind (``TEST_SPLITS``). An ImageFolder has whichever of
    ``val`` / ``test`` exists (ImageNet: val; the CIFAR-10 JPEG release: test); both or neither
    is an error asking for the split by name. The transfer datasets' readers take ``test``."""
    if kind in TEST_SPLITS:
        return TEST_SPLITS[kind]
    if kind != "imagefolder":
        return "test"
    from pretrain.data.readers import DatasetError, _Tree

    tree = _Tree(root)
    tops = tree.subdirs("")
    present = [s for s in ("val", "test") if tree.isdir(s) or (len(tops) == 1 and tree.isdir(f"{tops[0]}/{s}"))]
    if len(present) != 1:
        found = "both val/ and test/" if present else "neither val/ nor test/"
        raise DatasetError(f"{root}: ImageFolder with {found}; name the evaluation split (--test-split)")
    return present[0]


def open_dataset(kind: str, root: str | Path, split: str = "train", **kwargs: Any):
    """The suite's reader for a classification dataset in its original layout (also the
    linear-transfer datasets of ``pretrain.data.transfer_readers.READERS``)."""
    from pretrain.data import readers, transfer_readers

    if kind == "imagefolder":
        return readers.ImageFolder(root, split=split, **kwargs)
    if kind == "imagelist":
        return readers.ImageList(root, split=split, **kwargs)
    if kind == "coco":  # COCO images without labels (pretraining): root/<split>/*.jpg, e.g. train2017
        return readers.ImageList(root, split=split if split != "train" else "train2017", **kwargs)
    if kind == "coco-objects":  # COCO object crops labelled by category (a probe of scene-centric pretraining)
        split = {"train": "train2017", "test": "val2017", "val": "val2017"}.get(split, split)
        return readers.COCOObjects(root, split=split, **kwargs)
    if kind in ("cifar10", "cifar100"):
        if split not in ("train", "test", "val"):
            raise ValueError(f"CIFAR split must be train or test, got {split!r}")
        return readers.CIFAR(root, name=kind, train=split == "train", **kwargs)
    if kind == "tinyimagenet":
        return readers.TinyImageNet(root, split=split, **kwargs)
    if kind == "stl10":
        return readers.STL10(root, split=split, **kwargs)
    if kind in transfer_readers.READERS:
        return transfer_readers.READERS[kind](root, split=split, **kwargs)
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of "
                     f"{DATASET_KINDS + tuple(transfer_readers.READERS)}")


class UInt8Images(Dataset):
    """(uint8 CHW tensor of side ``image_size``, label) from any reader whose items are
    (PIL image, label). Images already of that size are not resampled.

    By default an image is resized (shorter side = ``image_size``, bicubic) and its centre
    square cut out. ``keep_aspect=True`` keeps the whole image and its aspect ratio for the
    random resized crop (scene-centric pretraining, Revisiting: COCO, OpenImages, ...): the
    image is resized so that its LONGER side is ``image_size``, placed in the top-left corner
    of an ``image_size`` square and the rest filled by repeating its last row and column; the
    item is then (tensor, label, (height, width) of the image inside). ``make_view_set`` draws
    each sample's crop inside its own (height, width), exactly as torchvision's
    RandomResizedCrop on the resized image; the edge fill makes bilinear sampling at the
    image border read what torchvision's clamped border reads. One fixed-shape batch, one
    ``roi_align`` call: no per-image work on the device."""

    def __init__(self, reader, image_size: int, keep_aspect: bool = False):
        self.reader, self.image_size, self.keep_aspect = reader, image_size, keep_aspect

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int):
        image, label = self.reader[index]
        if self.keep_aspect:
            array, size = _resize_pad(image.convert("RGB"), self.image_size)
            return torch.from_numpy(array).permute(2, 0, 1), int(label), torch.tensor(size)
        if image.size != (self.image_size, self.image_size):
            image = _resize_center_crop(image, self.image_size)
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1), int(label)


#: data.cache refuses a dataset whose decoded images would take more memory than this
CACHE_LIMIT_BYTES = 8 * 1024 ** 3


class InMemoryImages(Dataset):
    """Every item of a ``UInt8Images`` decoded once and held in memory: one uint8 tensor of all
    the images (and the labels, and the keep_aspect sizes), indexed per item. For small data read
    for many epochs (config ``data.cache: true``; the smoke tier's 2,000 images at 32 px are 6 MB),
    where decoding every image at every step took a quarter of a smoke step on one CPU thread.
    A dataset larger than ``limit_bytes`` decoded is refused, naming ``what``."""

    def __init__(self, dataset: "UInt8Images", what: str = "data.cache", progress: bool = True,
                 limit_bytes: int = CACHE_LIMIT_BYTES):
        from tqdm import tqdm

        need = len(dataset) * 3 * dataset.image_size ** 2
        if need > limit_bytes:
            raise ValueError(f"{what}: {len(dataset)} images of {dataset.image_size} px take "
                             f"{need / 1024 ** 3:.1f} GiB decoded, over the {limit_bytes / 1024 ** 3:.1f} GiB "
                             f"limit of an in-memory cache; set {what}: false")
        items = [dataset[i] for i in tqdm(range(len(dataset)), desc="decoding images into memory",
                                          unit="image", disable=not progress)]
        self.images = torch.stack([item[0] for item in items])
        self.labels = [int(item[1]) for item in items]
        self.sizes = torch.stack([item[2] for item in items]) if dataset.keep_aspect else None
        self.image_size = dataset.image_size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        if self.sizes is None:
            return self.images[index], self.labels[index]
        return self.images[index], self.labels[index], self.sizes[index]


def _resize_pad(image: Image.Image, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(size, size, 3) uint8 array holding ``image`` resized to longer side ``size`` in its
    top-left corner, edge-replicated to the square; and the (height, width) inside."""
    w, h = image.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.BICUBIC)
    array = np.asarray(image, dtype=np.uint8)
    return np.pad(array, ((0, size - nh), (0, size - nw), (0, 0)), mode="edge"), (nh, nw)


def _resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, drop_last: bool = True) -> list[list[int]]:
    """The shuffled index batches of one epoch, a pure function of (n, seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    stop = n - n % batch_size if drop_last else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def batch_loader(dataset: Dataset, batches: list[list[int]], workers: int) -> DataLoader:
    return DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)


def eval_loader(dataset: Dataset, batch_size: int, workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      pin_memory=torch.cuda.is_available())
