# PASCAL VOC 2012 in its original devkit layout. Training = VOC12 seg train + SBD aug masks
# (SegmentationClassAug with the id list ImageSets/Segmentation/aug.txt; 10,582 images in all),
# evaluation = VOC12 seg val (1,449). The harness sets data_root; without the aug part it
# trains on VOC12 train only and says so in the record (reduced / smoke).
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
num_classes = 21
voc_train = dict(type=dataset_type, data_root=data_root, ann_file='ImageSets/Segmentation/train.txt',
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
voc_aug = dict(type=dataset_type, data_root=data_root, ann_file='ImageSets/Segmentation/aug.txt',
               data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'))
voc_val = dict(type=dataset_type, data_root=data_root, ann_file='ImageSets/Segmentation/val.txt',
               data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=255)
test_evaluator = val_evaluator
