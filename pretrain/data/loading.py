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

DATASET_KINDS = ("imagefolder", "cifar10", "cifar100", "tinyimagenet", "stl10")
# the split a dataset is evaluated on when none is named: the release's labelled test split, or
# its val split where the test labels are not public (Tiny-ImageNet; ImageNet in ImageFolder layout)
TEST_SPLITS = {"cifar10": "test", "cifar100": "test", "stl10": "test", "tinyimagenet": "val"}


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
    (PIL image, label). Images already of that size are not resampled."""

    def __init__(self, reader, image_size: int):
        self.reader, self.image_size = reader, image_size

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.reader[index]
        if image.size != (self.image_size, self.image_size):
            image = _resize_center_crop(image, self.image_size)
        array = np.asarray(image.convert("RGB"), dtype=np.uint8)
        return torch.from_numpy(array.copy()).permute(2, 0, 1), int(label)


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
