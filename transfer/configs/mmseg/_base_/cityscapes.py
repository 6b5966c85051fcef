# Cityscapes in its original layout: leftImg8bit/{train,val}/<city>/*_leftImg8bit.png with
# gtFine/{train,val}/<city>/*_gtFine_labelTrainIds.png (19 train ids, 255 ignored; written by
# cityscapesscripts' createTrainIdLabelImgs). Training = train_fine (2,975), evaluation = val (500).
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
num_classes = 19
cs_train = dict(type=dataset_type, data_root=data_root,
                data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'))
cs_val = dict(type=dataset_type, data_root=data_root,
              data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=255)
test_evaluator = val_evaluator
