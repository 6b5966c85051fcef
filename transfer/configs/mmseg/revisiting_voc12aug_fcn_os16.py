# Revisiting (seed 004, App. A.3 "PASCAL VOC"), the MoCo protocol: FCN with conv5 stride 1 /
# dilation 2 (output stride 16), two 3x3 convs of 256 (BN, ReLU, dilation 6) + 1x1 classifier;
# train_aug2012 (10,582) -> val2012; random scaling 0.5-2.0, horizontal flip, random 513x513 crops;
# 45 epochs at batch 16; SGD momentum 0.9, lr 0.003, x0.1 after epochs 30 and 40, weight decay 1e-4.
# Epochs are converted to iterations over the 10,582 training images. Inference at the original
# image size (MoCo App. A), whole image.
# Seed over repo (protocols.md 2b): the repo's FixedResize 512 + ScaleNRotate(0.75-1.25) training
# and 512x512 resized evaluation are NOT used; the paper's random scale + 513 crop are.
from mmengine.config import read_base

with read_base():
    from ._base_.fcn_moco import *  # noqa: F401,F403
    from ._base_.voc12aug import *  # noqa: F401,F403

train_images, epochs, batch = 10582, 45, 16
suite = dict(
    paper='Revisiting', dataset='VOC12', output_stride=16, total_batch_size=batch,
    epochs=epochs, train_images=train_images,
    sources=['seed 004 App. A.3', 'MoCo App. A via protocols.md 2b'])

crop_size = (513, 513)
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
    batch_size=batch, num_workers=4, persistent_workers=True,  # the paper trains on one GPU
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ConcatDataset', datasets=[dict(**voc_train, pipeline=train_pipeline),
                                                 dict(**voc_aug, pipeline=train_pipeline)]))
val_dataloader = dict(batch_size=1, num_workers=4, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(**voc_val, pipeline=test_pipeline))
test_dataloader = val_dataloader

model = {**model, 'data_preprocessor': {**model['data_preprocessor'], 'size': crop_size},
         'decode_head': {**model['decode_head'], 'dilation': 6, 'num_classes': num_classes}}
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.003, momentum=0.9, weight_decay=1e-4))
iters_per_epoch = train_images // batch
param_scheduler = [dict(type='MultiStepLR', gamma=0.1, by_epoch=False,
                        milestones=[30 * iters_per_epoch, 40 * iters_per_epoch])]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=epochs * iters_per_epoch,
                 val_interval=epochs * iters_per_epoch)
