# Dilated FCN as in mmseg's fcn_r50-d8 family (the DenseCL fork's VOC12aug/Cityscapes configs used
# by LEWEL): torchvision-layout ResNet-50 (mmseg `ResNet`, 7x7 stem, stride in the 3x3 conv) with
# strides (1,2,1,1) and dilations (1,1,2,4) -> output stride 8; FCNHead on C5 (2 convs of 512,
# input concatenated, dropout 0.1) plus an auxiliary FCNHead on C4 (1 conv of 256, loss weight 0.4).
# The harness replaces the backbone by transfer.convert_mmseg.backbone_cfg(arch, output_stride)
# and sets the heads' in_channels for the checkpoint's arch (ResNet-18/34: 512 and 256).
from mmengine.config import read_base

with read_base():
    from .runtime import *  # noqa: F401,F403
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True,
                  style='pytorch', deep_stem=False, avg_down=False, norm_eval=False,
                  norm_cfg=norm_cfg),
    decode_head=dict(type='FCNHead', in_channels=2048, in_index=3, channels=512, num_convs=2,
                     concat_input=True, dropout_ratio=0.1, num_classes=21, norm_cfg=norm_cfg,
                     align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(type='FCNHead', in_channels=1024, in_index=2, channels=256, num_convs=1,
                        concat_input=False, dropout_ratio=0.1, num_classes=21, norm_cfg=norm_cfg,
                        align_corners=False,
                        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
