"""VOC detection harness: evaluator wiring (GT as predictions -> AP50 100) and a CPU smoke run."""
import json
import math
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.data.datasets import register_pascal_voc
from detectron2.data.datasets.pascal_voc import CLASS_NAMES
from detectron2.structures import Boxes, Instances

from transfer import voc_det
from transfer.detectron2_common import DatasetSpec, Trainer, build_cfg, voc_spec


def _gt_as_predictions(dicts):
    inputs, outputs = [], []
    for d in dicts:
        inst = Instances((d["height"], d["width"]))
        inst.pred_boxes = Boxes(torch.tensor([a["bbox"] for a in d["annotations"]], dtype=torch.float32).reshape(-1, 4))
        inst.pred_classes = torch.tensor([a["category_id"] for a in d["annotations"]], dtype=torch.int64)
        inst.scores = torch.ones(len(d["annotations"]))
        inputs.append({"image_id": d["image_id"]})
        outputs.append({"instances": inst})
    return inputs, outputs


def _classes_with_gt(folder: Path, split: str) -> set[str]:
    """Classes with at least one non-difficult object in the split, read from the XML directly."""
    names = set()
    for image_id in (folder / "ImageSets" / "Main" / f"{split}.txt").read_text().split():
        for obj in ET.parse(folder / "Annotations" / f"{image_id}.xml").findall("object"):
            if obj.find("difficult").text == "0":
                names.add(obj.find("name").text)
    return names


def _evaluate(spec, tmp_path):
    spec.register()
    cfg, _ = build_cfg("voc_C4_24k", "resnet18", train=[spec], test=spec, num_classes=20, device="cpu",
                       num_gpus=1, out_dir=tmp_path, smoke=True, max_iter=None, opts=[], seed=0)
    evaluator = Trainer.build_evaluator(cfg, spec.name)
    evaluator.reset()
    evaluator.process(*_gt_as_predictions(DatasetCatalog.get(spec.name)))
    return evaluator.evaluate()["bbox"]


def test_voc_evaluator_gives_100_for_ground_truth(generated, tmp_path):
    folder = Path(generated["voc"]) / "VOC2007"
    present = _classes_with_gt(folder, "test")
    # registered with only the classes the split holds: every class has GT -> AP 100 at every IoU
    spec = voc_spec(generated["voc"], "2007/test")
    subset = DatasetSpec("voc", "ssl_repro_voc_gt_subset", spec.root, "test", year=2007)
    if subset.name not in DatasetCatalog.list():
        register_pascal_voc(subset.name, subset.root, "test", 2007, class_names=tuple(sorted(present)))
    evaluator = Trainer.build_evaluator(
        build_cfg("voc_C4_24k", "resnet18", train=[subset], test=subset, num_classes=len(present), device="cpu",
                  num_gpus=1, out_dir=tmp_path, smoke=True, max_iter=None, opts=[], seed=0)[0], subset.name)
    evaluator.reset()
    evaluator.process(*_gt_as_predictions(DatasetCatalog.get(subset.name)))
    for metric, value in evaluator.evaluate()["bbox"].items():
        assert value == pytest.approx(100.0), metric
    # the harness's registration (all 20 classes, VOC2007 11-point AP): absent classes score 0
    result = _evaluate(spec, tmp_path)
    assert len(present) < len(CLASS_NAMES)  # the reference below is not trivially 100
    assert result["AP50"] == pytest.approx(100.0 * len(present) / len(CLASS_NAMES))
    assert result["AP"] == pytest.approx(result["AP50"]) and result["AP75"] == pytest.approx(result["AP50"])


def test_smoke_run_records_each_repeat_and_the_mean(generated, smoke_checkpoint, tmp_path):
    mean = voc_det.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "imagenet")), "--data",
                         str(generated["voc"]), "--repeats", "2", "--max-iter", "1", "--out", str(tmp_path / "out"),
                         "--results", str(tmp_path / "runs"), "--device", "cpu"])
    rows = [json.loads(line) for line in (tmp_path / "runs" / "det_voc.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and all(r["scale"] == "smoke" and r["dataset"] == "VOC07+12" for r in rows)
    single = [r for r in rows if r["protocol"]["aggregate"] == "single_run"]
    means = [r for r in rows if r["protocol"]["aggregate"] == "mean_of_2"]
    assert len(single) == 6 and len(means) == 3
    assert {r["protocol"]["seed"] for r in single} == {0, 1}
    for row in means:
        repeats = [r["value"] for r in single if r["metric"] == row["metric"]]
        assert math.isfinite(row["value"]) and row["value"] == pytest.approx(statistics.fmean(repeats))
        assert row["value"] == pytest.approx(mean[row["metric"]])
    assert single[0]["protocol"]["train"] == ["VOC2007/trainval", "VOC2012/trainval"]
    assert single[0]["protocol"]["verified_tensors"] == 120


@pytest.mark.slow
def test_smoke_on_shared_voc(shared_data, smoke_checkpoint, tmp_path):
    mean = voc_det.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "imagenet")), "--data",
                         str(shared_data / "voc"), "--train-sets", "2012/train", "--test-set", "2012/val",
                         "--out", str(tmp_path / "out"), "--results", str(tmp_path / "runs"), "--device", "cpu"])
    assert all(math.isfinite(v) for v in mean.values())
