# LEWEL (seed 001, Sec. 4.3 / Table 3): dilated FCN, output stride 8, VOC12 train+aug -> val,
# mmsegmentation, 20k iterations, batch 16, SyncBN, poly schedule; the fine-tuning lr was searched
# per model (the harness's --lr). Everything the paper leaves open is the mmseg/DenseCL
# fcn_r50-d8 512x512 20k VOC12aug protocol (../shared/protocols.md 2a).
from mmengine.config import read_base

with read_base():
    from ._base_.fcn_dilated_aux import *  # noqa: F401,F403
    from ._base_.voc12aug import *  # noqa: F401,F403

suite = dict(
    paper='LEWEL', dataset='VOC12', output_stride=8,  # "dilated FCN with output stride of 8"
    total_batch_size=16,                               # "20k iteration with a batch size of 16"
    train_images=10582,             # VOC12 train + SBD aug
    sources=['seed 001 Sec. 4.3', 'protocols.md 2a (DenseCL fork fcn_r50-d8_512x512_20k_voc12aug)'])

crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [  # single scale, whole image, no flip
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,  # 4 per GPU x 4 GPUs = 16
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ConcatDataset', datasets=[dict(**voc_train, pipeline=train_pipeline),
                                                 dict(**voc_aug, pipeline=train_pipeline)]))
val_dataloader = dict(batch_size=1, num_workers=4, persistent_workers=True,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(**voc_val, pipeline=test_pipeline))
test_dataloader = val_dataloader

model = {**model, 'data_preprocessor': {**model['data_preprocessor'], 'size': crop_size},
         'decode_head': {**model['decode_head'], 'num_classes': num_classes},
         'auxiliary_head': {**model['auxiliary_head'], 'num_classes': num_classes}}
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=1e-4, begin=0, end=20000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
