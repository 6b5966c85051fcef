"""PASCAL VOC 2012 semantic segmentation: fine-tune an FCN with mmsegmentation, report mIoU.

    python transfer/voc_seg.py --ckpt runs/x/backbone.pth --data data/VOCdevkit --scale full [--num-gpus 4]
    python transfer/voc_seg.py --ckpt X --protocol revisiting --data data/VOCdevkit --scale full
    python transfer/voc_seg.py --ckpt X --data GENERATED/VOCdevkit --smoke

Protocols (mmengine configs in transfer/configs/mmseg, written from the papers' facts):

- ``lewel`` (default): dilated FCN, output stride 8, FCNHead + auxiliary head, VOC12 train+aug
  (10,582) -> val (1,449), 20k iterations, batch 16, crop 512, SGD lr 0.01 (LEWEL searched it:
  ``--lr``), poly; SyncBN.
- ``revisiting``: MoCo-protocol FCN, output stride 16, two 3x3 convs of 256 (dilation 6) + 1x1,
  crop 513, random scale 0.5-2 + flip, 45 epochs at batch 16 (45 x 661 = 29,745 iterations), SGD lr 0.003,
  x0.1 after epochs 30 and 40, weight decay 1e-4.

NormRescale (PCD: backbone weights x0.25) is applied to checkpoints whose ``method`` is ``pcd``,
never to other checkpoints.

Data: the devkit's own layout, read by mmseg's ``PascalVOCDataset``: ``VOC2012/JPEGImages``,
``SegmentationClass`` + ``ImageSets/Segmentation/{train,val}.txt``, and the SBD aug masks as
``SegmentationClassAug`` + ``ImageSets/Segmentation/aug.txt``. Without the aug part a run
trains on VOC12 train only and can only be ``--scale reduced`` or ``--smoke``. The backbone is
converted by transfer/convert_mmseg.py and every tensor is compared after mmengine loaded it.
mmseg's ``IoUMetric`` mIoU of the last evaluation is recorded as task ``sem_seg``, dataset
``VOC12``. One process uses BN instead of SyncBN (recorded in the protocol).
The papers report the mean of 5 runs: at ``--scale full`` the model is fine-tuned 5 times by
default (``--repeats N``, seeds seed..seed+N-1; fewer cannot be ``full``); every run is recorded
(``protocol.aggregate = "single_run"``) and, with more than one, their mean (``"mean_of_N"``).
``--smoke``: 2 iterations at crop 64 and batch 2, evaluation on the whole val split.
"""
from __future__ import annotations

from transfer.mmseg_common import run


def main(argv: list[str] | None = None) -> float:
    return run("VOC12", __doc__, argv)


if __name__ == "__main__":
    main()
