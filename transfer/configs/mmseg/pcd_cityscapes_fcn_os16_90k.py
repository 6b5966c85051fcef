# PCD (seed 002, Sec. 4.1 "CityScapes semantic segmentation"; Tables 1-6 incl. ResNet-18/34/50
# students): FCN-like model; a newly initialised BN after the backbone's last stage (FeatureNorm
# neck), two atrous blocks (3x3 conv of 256, stride 1, dilation 6, padding 6, BN, ReLU), 1x1
# prediction conv (19 classes), logits bilinearly upsampled to the input; 90k iterations on
# train_fine, evaluated on val. NormRescale (backbone weights x0.25, "When fine-tuning C4 or FCN
# backbones pre-trained by PCD") follows the checkpoint, not this config: the harness applies it to
# checkpoints whose method is 'pcd' under every FCN protocol (transfer.convert_detectron2.decide_norm_rescale).
# PCD follows the MoCo fine-tuning settings (its refs [24, 58]) for what the seed does not print:
# output stride 16, batch 16, crop 769, random scale 0.5-2.0 + flip, SGD lr 0.01 momentum 0.9,
# weight decay 1e-4, lr x0.1 at 70% and 90% of training, inference at full size (protocols.md 2b).
# PCD ran this in Detectron2; here it is the same architecture in mmsegmentation.
from mmengine.config import read_base

with read_base():
    from ._base_.fcn_moco import *  # noqa: F401,F403
    from ._base_.cityscapes import *  # noqa: F401,F403

max_iters = 90000
suite = dict(
    paper='PCD', dataset='Cityscapes', output_stride=16, total_batch_size=16,
    train_images=2975,  # train_fine
    sources=['seed 002 Sec. 4.1', 'MoCo App. A via protocols.md 2b'])

crop_size = (769, 769)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,  # 2 per GPU x 8 GPUs = 16
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**cs_train, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=4, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(**cs_val, pipeline=test_pipeline))
test_dataloader = val_dataloader

model = {**model, 'data_preprocessor': {**model['data_preprocessor'], 'size': crop_size},
         'neck': dict(type='FeatureNorm', in_channels=2048, in_index=3, norm_cfg=norm_cfg),
         'decode_head': {**model['decode_head'], 'dilation': 6, 'num_classes': num_classes}}
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', gamma=0.1, by_epoch=False,
                        milestones=[7 * max_iters // 10, 9 * max_iters // 10])]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
