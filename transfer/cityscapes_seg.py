"""Cityscapes semantic segmentation: fine-tune an FCN with mmsegmentation, report mIoU.

    python transfer/cityscapes_seg.py --ckpt runs/x/backbone.pth --data data/cityscapes --scale full --num-gpus 8
    python transfer/cityscapes_seg.py --ckpt X --protocol revisiting --data data/cityscapes --scale full
    python transfer/cityscapes_seg.py --ckpt X --data GENERATED/cityscapes --smoke

Protocols (mmengine configs in transfer/configs/mmseg, written from the papers' facts):

- ``pcd`` (default): PCD's FCN-like model (ResNet-18/34/50 students): new BN after the backbone,
  two 3x3 convs of 256 with dilation 6, 1x1 classifier, output stride 16; 90k iterations on
  train_fine, batch 16, crop 769, SGD lr 0.01, x0.1 at 70%/90%.
- ``revisiting``: the same head with dilation 1 (no extra BN), crop 768, 150 epochs at batch 16
  (150 x 185 = 27,750 iterations), Adam lr 1e-4, poly, weight decay 1e-4.

NormRescale (PCD: backbone weights x0.25 "when fine-tuning C4 or FCN backbones pre-trained by
PCD") follows the checkpoint: applied to checkpoints whose ``method`` is ``pcd``, under any
protocol, never to other checkpoints (``--norm-rescale 0`` turns it off at scale reduced/smoke).

Data: Cityscapes' own layout, read by mmseg's ``CityscapesDataset``:
``leftImg8bit/{train,val}/<city>/*_leftImg8bit.png`` and ``gtFine/.../*_gtFine_labelTrainIds.png``
(cityscapesscripts' createTrainIdLabelImgs writes them). Evaluation at full resolution on val;
mmseg's ``IoUMetric`` mIoU of the last evaluation is recorded as task ``sem_seg``, dataset
``Cityscapes``. The backbone is converted by transfer/convert_mmseg.py and every tensor is
compared after mmengine loaded it. One process uses BN instead of SyncBN (recorded).
The papers report the mean of 5 runs: at ``--scale full`` the model is fine-tuned 5 times by
default (``--repeats N``, seeds seed..seed+N-1; fewer cannot be ``full``); every run is recorded
(``protocol.aggregate = "single_run"``) and, with more than one, their mean (``"mean_of_N"``).
``--smoke``: 2 iterations at crop 64 and batch 2, evaluation on the whole val split.
"""
from __future__ import annotations

from transfer.mmseg_common import run


def main(argv: list[str] | None = None) -> float:
    return run("Cityscapes", __doc__, argv)


if __name__ == "__main__":
    main()
