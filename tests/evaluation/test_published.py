"""The adopted published tables: all load, speak the record vocabulary, hold the
numbers checked by hand against the papers' text."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from evaluation import published
from evaluation.published import (COLUMNS, EXTRA_COLUMNS, FLAGGED_METRICS, PAPERS,
                                  PublishedError, load_published)
from evaluation.records import METRICS, TASKS

SHARED = Path("/work/shared/published")


def _csv_rows(paper):
    with open(published.PUBLISHED_DIR / f"{paper}.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("paper", PAPERS)
def test_each_paper_loads_all_its_rows(paper):
    frame = load_published(paper)
    assert list(frame.columns) == list(COLUMNS) + list(EXTRA_COLUMNS)
    assert len(frame) == len(_csv_rows(paper)) > 0
    assert set(frame["paper"]) == {paper}
    assert frame["value"].dtype == "float64"
    assert all(math.isfinite(v) for v in frame["value"])
    assert list(frame["value_text"]) == [r["value"] for r in _csv_rows(paper)]
    assert list(frame["source_line"]) == list(range(2, len(frame) + 2))


def test_all_papers_together():
    frame = load_published()
    assert len(frame) == sum(len(load_published(p)) for p in PAPERS)
    assert set(frame["paper"]) == set(PAPERS)
    assert list(frame.index) == list(range(len(frame)))


def test_vocabulary():
    frame = load_published()
    assert set(frame["task"]) <= TASKS
    assert set(frame["metric"]) <= METRICS | set(FLAGGED_METRICS)
    for column in ("paper", "table", "method", "task", "dataset", "metric", "value_text"):
        assert (frame[column].str.strip() != "").all(), column
    # epochs / batch sizes are integers as printed, or empty
    for column in ("epochs", "batch_size"):
        assert frame[column].map(lambda s: s == "" or s.isdigit()).all(), column


def test_only_the_difference_row_is_flagged():
    frame = load_published()
    flagged = frame[~frame["metric_known"]]
    assert len(flagged) == 1
    row = flagged.iloc[0]
    assert (row["paper"], row["table"], row["metric"]) == ("revisiting", "text",
                                                          "mIoU_diff_vs_IN-118K")
    assert row["value_text"] == "+0.00" and row["value"] == 0.0
    assert frame[frame["metric_known"]]["metric"].isin(METRICS).all()


def _one(frame, **criteria):
    for column, value in criteria.items():
        frame = frame[frame[column] == value]
    assert len(frame) == 1, criteria
    return frame.iloc[0]["value"]


# rows checked by hand against the seed text (see evaluation/published/README.md)
SPOT_CHECKS = [
    ("ressl", dict(table="Table 1", method="ReSSL", variant="with predictor; tau_s=0.1,tau_t=0.04",
                   task="ablation", dataset="CIFAR-10", metric="top1"), 90.76),
    ("ressl", dict(table="Table 1", method="ReSSL", variant="with predictor; tau_s=0.1,tau_t=0.03",
                   task="ablation", dataset="CIFAR-100", metric="top1"), 65.03),
    ("ressl", dict(table="Table 7", method="ReSSL", variant="1 crop; 1x backprop",
                   task="linear_cls", dataset="IN-1K", metric="top1"), 72.0),
    ("ressl", dict(table="Table 7", method="ReSSL", variant="2 crops; 2x backprop",
                   task="linear_cls", dataset="IN-1K", metric="top1"), 73.2),
    ("ressl", dict(table="Table 12", method="ReSSL", task="det_coco", metric="AP"), 40.4),
    ("ressl", dict(table="Table 12", method="ReSSL", task="inst_seg_coco", metric="AP_mask"), 35.2),
    ("cgh", dict(table="Table 1", method="CGH", task="linear_cls", metric="top1"), 70.5),
    ("cgh", dict(table="Table 1", method="CGH-pred", task="linear_cls", metric="top1"), 72.3),
    ("cgh", dict(table="Table 2", method="CGH-pred", epochs="400", task="linear_cls"), 76.0),
    ("cgh", dict(table="Table 4", method="CGH", variant="Faster R-CNN R50-C4", task="det_voc",
                 dataset="VOC07+12", metric="AP50"), 82.6),
    ("cgh", dict(table="Table 4", method="CGH", variant="Faster R-CNN R50-C4", task="det_voc",
                 metric="AP"), 56.8),
    ("lewel", dict(table="Table 1", method="LEWEL_B", epochs="200", metric="top1"), 72.8),
    ("lewel", dict(table="Table 1", method="LEWEL_B", epochs="400", metric="top1"), 73.8),
    ("lewel", dict(table="Table 3", method="LEWEL_B", epochs="200", task="det_voc",
                   metric="AP"), 56.5),
    ("lewel", dict(table="Table 3", method="LEWEL_B", epochs="200", task="sem_seg",
                   dataset="VOC12", metric="mIoU"), 67.8),
    ("pcd", dict(table="Table 1", method="Teacher", task="linear_cls"), 74.6),
    ("pcd", dict(table="Table 1", method="PCD", variant="", task="linear_cls"), 65.1),
    ("pcd", dict(table="Table 1", method="PCD", variant="Faster R-CNN C4; trainval07 9k iter",
                 task="det_voc", dataset="VOC07", metric="AP50"), 73.0),
    ("pcd", dict(table="Table 1", method="PCD", variant="Faster R-CNN C4; trainval07+12 24k iter",
                 task="det_voc", dataset="VOC07+12", metric="AP"), 52.1),
    ("revisiting", dict(table="Table 2", method="MoCo-v2", pretrain_data="IN-118K",
                        dataset="CIFAR-10"), 83.1),
    ("revisiting", dict(table="Table 5", method="MoCo + MC", metric="J_mean"), 64.3),
    ("revisiting", dict(table="Table 9", method="MoCo", task="depth", metric="rmse"), 0.606),
]


@pytest.mark.parametrize("paper, criteria, value", SPOT_CHECKS,
                         ids=[f"{p}-{c['table']}-{c['method']}-{v}" for p, c, v in SPOT_CHECKS])
def test_spot_checked_values(paper, criteria, value):
    assert _one(load_published(paper), **criteria) == pytest.approx(value, abs=1e-9)


def test_caller_cannot_corrupt_the_cache():
    frame = load_published("ressl")
    frame.loc[:, "value"] = -1.0
    assert (load_published("ressl")["value"] != -1.0).all()


def test_unknown_paper():
    with pytest.raises(PublishedError, match="unknown paper"):
        load_published("simclr")


def _write_tables(directory: Path, ressl_lines: list[str]):
    for paper in PAPERS:
        (directory / f"{paper}.csv").write_text(",".join(COLUMNS) + "\n")
    (directory / "ressl.csv").write_text("\n".join([",".join(COLUMNS), *ressl_lines]) + "\n")


GOOD = "ressl,Table 7,ReSSL,,ResNet-50,IN-1K,200,256,linear_cls,IN-1K,top1,72.0,"


@pytest.mark.parametrize("line, message", [
    (GOOD.replace(",top1,", ",accuracy,"), r"ressl.csv:3: unknown metric 'accuracy'"),
    (GOOD.replace(",linear_cls,", ",linear,"), r"ressl.csv:3: unknown task 'linear'"),
    (GOOD.replace(",72.0,", ",n/a,"), r"ressl.csv:3: value 'n/a' is not a number"),
    (GOOD.replace(",72.0,", ",nan,"), r"ressl.csv:3: value 'nan' is not finite"),
    (GOOD.replace(",72.0,", ",,"), r"ressl.csv:3: empty 'value'"),
    (GOOD.replace("ressl,", "cgh,", 1), r"ressl.csv:3: paper 'cgh'"),
])
def test_malformed_rows_are_refused(tmp_path, line, message):
    _write_tables(tmp_path, [GOOD, line])
    assert len(load_published("cgh", directory=tmp_path)) == 0
    with pytest.raises(PublishedError, match=message):
        load_published("ressl", directory=tmp_path)


def test_wrong_columns_and_missing_file(tmp_path):
    _write_tables(tmp_path, [GOOD])
    assert _one(load_published("ressl", directory=tmp_path), method="ReSSL") == 72.0
    (tmp_path / "pcd.csv").write_text("paper,table,value\n")
    with pytest.raises(PublishedError, match="columns"):
        load_published("pcd", directory=tmp_path)
    (tmp_path / "lewel.csv").unlink()
    with pytest.raises(PublishedError, match="not found"):
        load_published(directory=tmp_path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared extraction not present")
@pytest.mark.parametrize("paper", PAPERS)
def test_adopted_unchanged_from_shared_extraction(paper):
    assert (published.PUBLISHED_DIR / f"{paper}.csv").read_bytes() == \
        (SHARED / f"{paper}.csv").read_bytes()
