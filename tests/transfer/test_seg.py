"""mmseg segmentation harnesses: IoUMetric against an independent confusion matrix, the suite's
registered parts, data checks, and --smoke of voc_seg.py / cityscapes_seg.py on CPU."""
import json

import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric

from evaluation.published import load_published
from pretrain.data.readers import DatasetError
from transfer import cityscapes_seg, voc_seg
from transfer.mmseg_common import FeatureNorm, RandomRescale

IGNORE = 255


def mmseg_miou(predictions, labels, num_classes):
    metric = IoUMetric(iou_metrics=["mIoU"], ignore_index=IGNORE)
    metric.dataset_meta = {"classes": tuple(f"c{i}" for i in range(num_classes))}
    samples = [{"pred_sem_seg": {"data": torch.as_tensor(p)[None]}, "gt_sem_seg": {"data": torch.as_tensor(g)[None]}}
               for p, g in zip(predictions, labels)]
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)["mIoU"]


def confusion_miou(predictions, labels, num_classes):
    """Independent reference: one confusion matrix over all images (ignored pixels dropped);
    IoU_c = TP / (TP + FP + FN), averaged over classes that occur in ground truth or prediction."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, g in zip(predictions, labels):
        keep = g != IGNORE
        confusion += np.bincount(num_classes * g[keep].astype(np.int64) + p[keep],
                                 minlength=num_classes ** 2).reshape(num_classes, num_classes)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    return 100 * float(np.mean(tp[present] / union[present]))


def _labels(rng, n, num_classes, shape=(17, 23)):
    labels = [rng.integers(0, num_classes, shape) for _ in range(n)]
    for g in labels:
        g[rng.random(shape) < 0.1] = IGNORE
    return labels


def test_iou_metric_ground_truth_as_prediction_is_100():
    rng = np.random.default_rng(0)
    labels = _labels(rng, 3, 6)
    predictions = [np.where(g == IGNORE, 0, g) for g in labels]
    assert mmseg_miou(predictions, labels, num_classes=8) == 100.0  # classes 6, 7 absent: not averaged


def test_iou_metric_equals_confusion_matrix_miou():
    rng = np.random.default_rng(1)
    labels = _labels(rng, 4, 5)
    predictions = [np.where(rng.random(g.shape) < 0.6, np.where(g == IGNORE, 1, g), rng.integers(0, 5, g.shape))
                   for g in labels]
    ours = confusion_miou(predictions, labels, 5)
    assert 30 < ours < 90  # a partly right prediction
    assert mmseg_miou(predictions, labels, 5) == pytest.approx(ours, abs=0.006)  # mmseg rounds to 0.01


def test_feature_norm_normalises_only_the_chosen_output():
    neck = FeatureNorm(in_channels=4, in_index=-1)
    neck.train()
    c4, c5 = torch.randn(2, 3, 5, 5), 3 + 2 * torch.randn(2, 4, 5, 5)
    out = neck((c4, c5))
    assert out[0] is c4
    torch.testing.assert_close(out[1].mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1].var((0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3, rtol=0)


def test_random_rescale_is_relative_and_keeps_labels():
    np.random.seed(0)
    label = np.random.randint(0, 5, (40, 60)).astype(np.uint8)
    sizes = []
    for _ in range(20):
        out = RandomRescale((0.5, 2.0))({"img": np.zeros((40, 60, 3), np.uint8), "gt_seg_map": label.copy(),
                                         "img_shape": (40, 60), "seg_fields": ["gt_seg_map"]})
        h, w = out["img"].shape[:2]
        assert out["gt_seg_map"].shape == (h, w)
        assert set(np.unique(out["gt_seg_map"])) <= set(range(5))  # nearest: no new label values
        assert 20 <= h <= 80 and abs(w / h - 1.5) < 0.1
        sizes.append(h)
    assert len(set(sizes)) > 5


def test_published_dataset_names():
    names = set(load_published()[lambda d: d.task == "sem_seg"].dataset)
    assert {"VOC12", "Cityscapes"} <= names


def test_full_scale_without_aug_set_is_refused(generated, smoke_checkpoint, tmp_path):
    with pytest.raises(DatasetError, match="SegmentationClassAug"):
        voc_seg.main(["--ckpt", str(smoke_checkpoint("resnet18", "imagenet")), "--data", str(generated["voc"]),
                      "--scale", "full", "--work-dir", str(tmp_path)])


def test_full_scale_with_too_few_images_is_refused(generated, smoke_checkpoint, tmp_path):
    with pytest.raises(DatasetError, match="2975 images, found 5"):
        cityscapes_seg.main(["--ckpt", str(smoke_checkpoint("resnet18", "imagenet")),
                             "--data", str(generated["cityscapes"]), "--scale", "full", "--work-dir", str(tmp_path)])


def _record(tmp_path):
    lines = (tmp_path / "results" / "runs" / "sem_seg.jsonl").read_text().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


@pytest.mark.parametrize("harness, data, dataset, protocol, auxiliary, method, rescale", [
    # NormRescale follows the checkpoint's method, not the protocol: a PCD checkpoint is rescaled
    # under LEWEL's protocol, a baseline is not under PCD's
    (voc_seg, "voc", "VOC12", "lewel", True, "pcd", 0.25),
    (cityscapes_seg, "cityscapes", "Cityscapes", "pcd", False, "smoke_random", None),
])
def test_smoke_trains_evaluates_and_records(generated, smoke_checkpoint, tmp_path, one_thread,
                                            harness, data, dataset, protocol, auxiliary, method, rescale):
    from pretrain.checkpoint import read_backbone, save

    ckpt = smoke_checkpoint("resnet18", "imagenet")
    if method != "smoke_random":
        ckpt = save({**read_backbone(ckpt), "method": method}, tmp_path / f"{method}.pth")
    miou = harness.main(["--ckpt", str(ckpt), "--data", str(generated[data]), "--smoke",
                         "--work-dir", str(tmp_path / "work")])
    record = _record(tmp_path)
    assert (record["task"], record["dataset"], record["metric"], record["scale"]) == ("sem_seg", dataset, "mIoU", "smoke")
    assert record["value"] == miou and 0 <= miou <= 100
    p = record["protocol"]
    assert p["protocol"] == protocol and p["arch"] == "resnet18" and p["mmseg_backbone"] == "ResNet"
    assert p["backbone_tensors_checked"] == 120  # every R18 tensor compared after mmengine's load
    assert p["norm"].startswith("BN (one process") and p["iterations"] == 2 and p["crop"] == [64, 64]
    assert p["val_images"] > 0 and p["train_images"] > 0 and "reduced" in p
    assert p["norm_rescale"] == rescale and record["method"] == method
    assert p["auxiliary_head"] is auxiliary
