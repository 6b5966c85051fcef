"""COCO detection harness: evaluator wiring (GT as predictions -> AP 100) and a CPU smoke run."""
import json
import math

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.data.detection_utils import annotations_to_instances

from transfer import coco_det
from transfer.convert_detectron2 import ConversionError
from transfer.detectron2_common import Trainer, build_cfg, coco_spec


def _gt_as_predictions(dicts, drop_image=None):
    inputs, outputs = [], []
    for d in dicts:
        if d["image_id"] == drop_image:
            continue
        annos = [a for a in d["annotations"] if not a.get("iscrowd", 0)]
        gt = annotations_to_instances(annos, (d["height"], d["width"]), mask_format="bitmask")
        gt.pred_boxes, gt.pred_classes = gt.gt_boxes, gt.gt_classes
        gt.pred_masks, gt.scores = gt.gt_masks.tensor, torch.ones(len(gt))
        for field in ("gt_boxes", "gt_classes", "gt_masks"):
            gt.remove(field)
        inputs.append({"image_id": d["image_id"], "height": d["height"], "width": d["width"]})
        outputs.append({"instances": gt})
    return inputs, outputs


def _evaluator(root, tmp_path):
    spec = coco_spec(root, "val2017")
    spec.register()
    cfg, _ = build_cfg("coco_C4_1x", "resnet18", train=[spec], test=spec, num_classes=10, device="cpu",
                       num_gpus=1, out_dir=tmp_path, smoke=True, max_iter=None, opts=[], seed=0)
    return Trainer.build_evaluator(cfg, spec.name), DatasetCatalog.get(spec.name)


def test_coco_evaluator_gives_100_for_ground_truth(generated, tmp_path):
    evaluator, dicts = _evaluator(generated["coco"], tmp_path)
    assert any(a.get("iscrowd") for d in dicts for a in d["annotations"])  # crowd regions are exercised
    evaluator.reset()
    evaluator.process(*_gt_as_predictions(dicts))
    results = evaluator.evaluate()
    for task in ("bbox", "segm"):
        for metric in ("AP", "AP50", "AP75"):
            assert results[task][metric] == pytest.approx(100.0, abs=1e-6), (task, metric)
    # one image without predictions: recall drops, so AP must too
    evaluator.reset()
    evaluator.process(*_gt_as_predictions(dicts, drop_image=dicts[0]["image_id"]))
    assert evaluator.evaluate()["bbox"]["AP"] < 99.0


def test_smoke_run_writes_records(generated, smoke_checkpoint, tmp_path):
    ckpt = smoke_checkpoint("resnet18", "imagenet")
    metrics = coco_det.main(["--smoke", "--ckpt", str(ckpt), "--data", str(generated["coco"]),
                             "--out", str(tmp_path / "out"), "--results", str(tmp_path / "runs"), "--device", "cpu"])
    rows = {task: [json.loads(line) for line in (tmp_path / "runs" / f"{task}.jsonl").read_text().splitlines()]
            for task in ("det_coco", "inst_seg_coco")}
    assert sorted(r["metric"] for r in rows["det_coco"]) == ["AP", "AP50", "AP75"]
    assert sorted(r["metric"] for r in rows["inst_seg_coco"]) == ["AP50_mask", "AP75_mask", "AP_mask"]
    for row in rows["det_coco"] + rows["inst_seg_coco"]:
        assert row["scale"] == "smoke" and row["dataset"] == "COCO" and math.isfinite(row["value"])
        assert row["protocol"]["verified_tensors"] == 120  # every R18 tensor, counters included
        assert row["protocol"]["norm"] == "BN" and row["method"] == "smoke_random"
    box = {r["metric"]: r["value"] for r in rows["det_coco"]}
    assert box["AP"] == pytest.approx(metrics["bbox"]["AP"])


def test_cifar_stem_checkpoint_is_refused(generated, smoke_checkpoint, tmp_path):
    with pytest.raises(ConversionError, match="'cifar' stem"):
        coco_det.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "cifar")), "--data",
                       str(generated["coco"]), "--out", str(tmp_path / "out"), "--device", "cpu"])


@pytest.mark.slow
def test_smoke_on_shared_coco(shared_data, smoke_checkpoint, tmp_path):
    metrics = coco_det.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "imagenet")), "--data",
                             str(shared_data / "coco"), "--out", str(tmp_path / "out"),
                             "--results", str(tmp_path / "runs"), "--device", "cpu"])
    assert math.isfinite(metrics["bbox"]["AP"]) and math.isfinite(metrics["segm"]["AP"])
