# FCN of the MoCo paper's segmentation protocol (App. A; reused by Revisiting and, with an extra
# BN after the backbone, by PCD): torchvision-layout ResNet-50 whose last stage has stride 1 and
# dilation 2 -> output stride 16; then two 3x3 convs of 256 channels with BN + ReLU (dilation set
# per protocol) and a 1x1 classifier; logits bilinearly upsampled to the input size. No auxiliary
# head, no dropout. The harness replaces the backbone for the checkpoint's arch and sets in_channels.
from mmengine.config import read_base

with read_base():
    from .runtime import *  # noqa: F401,F403
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), contract_dilation=True,
                  style='pytorch', deep_stem=False, avg_down=False, norm_eval=False,
                  norm_cfg=norm_cfg),
    decode_head=dict(type='FCNHead', in_channels=2048, in_index=3, channels=256, num_convs=2,
                     kernel_size=3, dilation=6, concat_input=False, dropout_ratio=0.0, num_classes=21,
                     norm_cfg=norm_cfg, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
