"""transfer.common.append_record: every harness record carries its checkpoint's `reproduces`,
the pretraining scale and the protocol label, so the collector can place it in its cell."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from evaluation import records
from evaluation.collector import collect
from pretrain.checkpoint import run_metadata, save_backbone
from pretrain.config import CONFIG_DIR, load_config
from pretrain.models.resnet import build_backbone
from transfer import common

TAU = "with predictor; tau_s=0.1,tau_t=0.04"  # ReSSL Table 1, CIFAR-10: 90.76


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(records, "device_description", lambda device=None: "cpu:test")


def _ressl_checkpoint(tmp_path: Path, scale: str = "full") -> tuple[Path, dict]:
    config = load_config(CONFIG_DIR / "ressl/cifar10_pred_taus0.1_taut0.04.yaml", [f"scale={scale}"])
    path = save_backbone(tmp_path / "backbone.pth", build_backbone("resnet18", stem="cifar"), method="ressl",
                         extra=run_metadata(config))
    return path, config


def test_synthetic_full_record_lands_in_its_ressl_table1_cell(tmp_path, quiet):
    path, config = _ressl_checkpoint(tmp_path)
    runs = tmp_path / "runs"
    record = common.append_record(method="ressl", task="linear_cls", dataset="CIFAR-10", metric="top1",
                                  value=91.0, scale="full", checkpoint=path, protocol={"epochs": 100},
                                  runs_dir=runs)
    assert record.protocol["reproduces"] == config["reproduces"] != []
    assert (record.protocol["pretrain_scale"], record.protocol["protocol_label"]) == ("full", "")
    with open(collect(runs, tmp_path / "out")["ressl"], newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["measured_run_id"]]
    cell = next(r for r in rows if r["table"] == "Table 1")
    assert (cell["variant"], cell["dataset"], cell["value"]) == (TAU, "CIFAR-10", "90.76")
    assert (cell["measured_value"], cell["measured_scale"], cell["delta"]) == ("91.0", "full", "0.24")
    assert cell["measured_checkpoint_sha256"] == record.checkpoint_sha256 != ""
    # the same run stands behind Tables 3-6 (one CIFAR-10 cell each), nothing else
    assert sorted(r["table"] for r in rows) == ["Table 1", "Table 3", "Table 4", "Table 5", "Table 6"]
    assert {r["dataset"] for r in rows} == {"CIFAR-10"}


def test_reduced_checkpoint_caps_the_scale_and_own_reproduces_wins(tmp_path, quiet):
    path, _ = _ressl_checkpoint(tmp_path, scale="reduced")
    own = {"paper": "ressl", "table": "Table 7", "method": "ReSSL", "variant": "1 crop; 1x backprop"}
    record = common.append_record(method="ressl", task="linear_cls", dataset="IN-1K", metric="top1", value=1.0,
                                  scale="full", checkpoint=path, protocol={"reproduces": own},
                                  runs_dir=tmp_path / "runs")
    assert record.protocol["reproduces"] == own and record.protocol["pretrain_scale"] == "reduced"
    random = common.append_record(method="random_init", task="knn_cls", dataset="CIFAR-10", metric="top1",
                                  value=1.0, scale="smoke", checkpoint=None, runs_dir=tmp_path / "runs")
    assert random.protocol == {"reproduces": [], "protocol_label": ""}


@pytest.mark.parametrize("task, protocol, label", [
    ("det_coco", {"config": "coco_C4_1x", "arch": "resnet50"}, "Mask R-CNN R50-C4; 1x schedule"),
    ("inst_seg_coco", {"config": "coco_FPN_2x", "arch": "resnet18"}, "Mask R-CNN R18-FPN; 2x schedule"),
    ("det_coco", {"config": "coco_C4_2x_ressl", "arch": "resnet50"}, "Mask R-CNN R50-C4; 2x schedule"),
    ("det_voc", {"config": "voc_C4_24k", "arch": "resnet50", "train": ["VOC2007/trainval", "VOC2012/trainval"]},
     "Faster R-CNN R50-C4; trainval07+12 24k iter"),
    ("det_voc", {"config": "voc07_C4_9k", "arch": "resnet18", "train": ["VOC2007/trainval"]},
     "Faster R-CNN R18-C4; trainval07 9k iter"),
    ("det_voc", {"config": "voc_DC5_24k", "arch": "resnet50", "train": ["VOC2007/trainval", "VOC2012/trainval"]},
     "Faster R-CNN R50-DC5; trainval07+12 24k iter"),
    ("sem_seg", {"protocol": "lewel", "output_stride": 8}, "FCN (lewel protocol); OS 8"),
    ("sem_seg", {"protocol": "pcd", "output_stride": 16}, "FCN (atrous head) (pcd protocol); OS 16"),
    ("low_shot", {"k": 16, "variant": "k=16"}, "k=16"),
    ("linear_cls", {"recipe": "ressl_small"}, ""),
])
def test_protocol_label_speaks_the_published_variants(task, protocol, label):
    assert common.protocol_label(task, protocol) == label


def test_detection_configs_give_labels(tmp_path):
    """Every detectron2 config of the harnesses yields a label naming detector, C4/FPN/DC5 and schedule."""
    from evaluation.collector import facets
    from transfer import coco_det, voc_det

    for name in coco_det.CONFIGS.values():
        found = facets("det_coco", common.protocol_label("det_coco", {"config": name, "arch": "resnet50"}))
        assert set(found) == {"detector", "neck", "schedule"}, name
    for name, train, _ in voc_det.CONFIGS.values():
        label = common.protocol_label("det_voc", {"config": name, "arch": "resnet50", "train": train.split(",")})
        assert set(facets("det_voc", label)) == {"detector", "neck", "schedule", "train"}, name


def _seg_protocol(command: str, dataset: str) -> dict:
    """What the mmseg harness records for ``--protocol P``: the suite and its output stride."""
    import re

    from transfer.mmseg_common import PROTOCOLS

    suite = re.search(r"--protocol (\S+)", command)[1]
    return {"protocol": suite, "output_stride": int(re.search(r"_os(\d+)", PROTOCOLS[dataset][suite])[1])}


def test_every_row_a_config_names_is_filled_by_the_record_of_its_planned_evaluation():
    """The chain config `reproduces` -> evaluation.plan's harness -> that harness's protocol label ->
    collector: a record shaped like the one each planned evaluation writes fills exactly the rows
    the config names, and no reference is left unresolved."""
    import re

    from evaluation.collector import annotated_published, collect_records, named_rows, primary_task
    from evaluation.plan import CONFIG_DIR as CONFIGS, _configs, evaluations
    from transfer import coco_det, voc_det

    published = annotated_published()
    known = published[published["metric_known"]]
    made, expected = [], set()
    for _, config in _configs(CONFIGS):
        for ref in config.get("reproduces") or []:
            rows = named_rows(known, ref)
            for index, row in rows.iterrows():
                planned = [e for e in evaluations(rows.loc[[index]], ref["paper"], config, "/d", 8)
                           if not isinstance(e, str)]
                if not planned:
                    continue  # the plan says why (no harness for it yet)
                command, arch = planned[0][2], config["model"]["arch"]
                name = (re.search(r"--config (\S+)", command) or [None, ""])[1]
                protocol = ({"config": coco_det.CONFIGS[name], "arch": arch} if "coco_det" in command else
                            {"config": voc_det.CONFIGS[name][0], "arch": arch,
                             "train": voc_det.CONFIGS[name][1].split(",")} if "voc_det" in command else
                            {"k": row["variant"].removeprefix("k=")} if "lowshot" in command else
                            _seg_protocol(command, row["dataset"]) if "_seg.py" in command else
                            {"classes": int(re.search(r"(\d+) classes", row["variant"])[1])}
                            if "segment_retrieval" in command else {})
                task = primary_task(row["task"], row["dataset"], row["metric"])
                made.append(records.ResultRecord(
                    method="m", task=task, dataset=row["dataset"], metric=row["metric"], value=1.0, scale="full",
                    protocol={"reproduces": config["reproduces"],
                              "protocol_label": common.protocol_label(task, protocol)},
                    run_id=f"r{len(made)}", time_utc="2025-01-01T00:00:00Z"))
                expected.add(int(index))
    collection = collect_records(made)
    assert len(expected) > 300
    assert set(collection.matches) == expected
    assert collection.unresolved == [] and collection.unmatched == []
