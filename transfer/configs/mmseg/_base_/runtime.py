# Runtime shared by the suite's mmseg protocols (mmengine Runner, iteration based). These are
# mmengine pure-Python-style configs (bases imported under read_base), so they also import as modules.
# The suite's harnesses (transfer/voc_seg.py, transfer/cityscapes_seg.py) fill in the data
# root, the backbone (converted checkpoint) and the per-process batch size.
default_scope = 'mmseg'
custom_imports = dict(imports=['transfer.mmseg_common'], allow_failed_imports=False)

# every backbone tensor is compared with the converted checkpoint before the first step;
# the last validation's metrics are kept for the result record
custom_hooks = [
    dict(type='BackboneLoadCheck', priority='VERY_LOW'),
    dict(type='KeepValMetrics'),
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=-1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ImageNet statistics (x255, RGB) as the torchvision-pretrained backbones expect
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
