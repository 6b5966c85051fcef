"""Dataset readers for the original on-disk layouts (see :mod:`pretrain.data.readers`).

The synthetic generator is :mod:`pretrain.data.synthetic` (``python -m pretrain.data.synthetic --help``);
it is not imported here so that ``python -m`` runs it without a double import.
"""

from pretrain.data.readers import (
    CIFAR,
    CITYSCAPES_ID_TO_TRAIN_ID,
    CITYSCAPES_TRAIN_CLASSES,
    DAVIS,
    IGNORE_INDEX,
    IMAGE_EXTENSIONS,
    VOC,
    VOC_CLASSES,
    VOC_PALETTE,
    Cityscapes,
    COCOInstances,
    DatasetError,
    DAVISSequence,
    ImageFolder,
    TinyImageNet,
    VOCObject,
    cityscapes_train_ids,
    load_image,
    load_index_mask,
    parse_voc_xml,
)

__all__ = [
    "CIFAR",
    "CITYSCAPES_ID_TO_TRAIN_ID",
    "CITYSCAPES_TRAIN_CLASSES",
    "COCOInstances",
    "Cityscapes",
    "DAVIS",
    "DAVISSequence",
    "DatasetError",
    "IGNORE_INDEX",
    "IMAGE_EXTENSIONS",
    "ImageFolder",
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
