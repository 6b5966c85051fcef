"""Result records: append, read back, refuse ambiguous or dishonest ones, never tear."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evaluation import provenance, records
from evaluation.records import RecordError, ResultRecord, append_record, read_records


@pytest.fixture(autouse=True)
def fast_provenance(monkeypatch):
    # device_description imports torch (seconds); the records module only needs a string
    monkeypatch.setattr(records, "device_description", lambda device=None: f"test:{device}")


def _append(runs, **overrides):
    fields = dict(method="ressl", task="linear_cls", dataset="IN-1K", metric="top1",
                  value=12.5, scale="smoke", runs_dir=runs)
    fields.update(overrides)
    return append_record(**fields)


def test_append_two_records_and_read_back(tmp_path):
    first = _append(tmp_path, value=12.5, protocol={"epochs": 1})
    second = _append(tmp_path, method="mocov2", value=13.25, scale="reduced",
                     protocol={"epochs": 2, "reproduces": {"paper": "ressl"}}, device="cpu",
                     wall_time_s=1.23456, run_id="fixed-run")
    path = tmp_path / "linear_cls.jsonl"
    assert len(path.read_text().splitlines()) == 2
    back = list(read_records(tmp_path))
    assert back == [first, second]
    assert [r.value for r in back] == [12.5, 13.25]
    assert back[1].scale == "reduced" and back[1].protocol["epochs"] == 2
    assert back[1].run_id == "fixed-run" and back[1].wall_time_s == 1.235
    assert back[1].device == "test:cpu"
    assert first.run_id and first.run_id != second.run_id
    assert first.time_utc.endswith("Z") and first.git_commit
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_records_go_to_one_file_per_task(tmp_path):
    _append(tmp_path, task="linear_cls")
    _append(tmp_path, task="det_voc", dataset="VOC07+12", metric="AP50", value=80.0)
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["det_voc.jsonl",
                                                               "linear_cls.jsonl"]
    assert sorted(r.task for r in read_records(tmp_path)) == ["det_voc", "linear_cls"]


def test_checkpoint_hash_is_recorded(tmp_path):
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"weights")
    record = _append(tmp_path / "runs", checkpoint=ckpt)
    assert record.checkpoint == str(ckpt)
    assert record.checkpoint_sha256 == provenance.sha256_file(ckpt)
    assert len(record.checkpoint_sha256) == 64


@pytest.mark.parametrize("overrides, message", [
    ({"task": "linear"}, "unknown task"),
    ({"metric": "accuracy"}, "unknown metric"),
    ({"scale": "tiny"}, "scale must be"),
    ({"scale": "Full"}, "scale must be"),
    ({"value": math.nan}, "not a finite number"),
    ({"value": math.inf}, "not a finite number"),
    ({"scale": "reduced"}, "must say in `protocol`"),
    ({"scale": "reduced", "protocol": {}}, "must say in `protocol`"),
])
def test_invalid_records_are_refused_and_not_written(tmp_path, overrides, message):
    with pytest.raises(RecordError, match=message):
        _append(tmp_path, **overrides)
    assert not list(tmp_path.glob("*.jsonl"))


def test_reduced_record_with_protocol_is_accepted(tmp_path):
    record = _append(tmp_path, scale="reduced", protocol={"epochs": 10, "paper_epochs": 200})
    assert record.scale == "reduced"
    assert [r.protocol for r in read_records(tmp_path)] == [{"epochs": 10, "paper_epochs": 200}]


def test_non_json_protocol_is_refused(tmp_path):
    # validate() lets json.dumps' TypeError through rather than a RecordError
    with pytest.raises((TypeError, RecordError)):
        _append(tmp_path, protocol={"path": Path("/x")})
    assert not list(tmp_path.glob("*.jsonl"))


def test_malformed_line_names_file_and_line(tmp_path):
    _append(tmp_path)
    path = tmp_path / "linear_cls.jsonl"
    with open(path, "a") as f:
        f.write("\n{not json\n")  # line 2 is blank (skipped), line 3 is broken
    with pytest.raises(RecordError, match=rf"{path}:3: bad result record"):
        list(read_records(tmp_path))


def test_invalid_record_on_disk_names_file_and_line(tmp_path):
    _append(tmp_path)
    path = tmp_path / "linear_cls.jsonl"
    bad = json.loads(path.read_text())
    bad["metric"] = "accuracy"
    with open(path, "a") as f:
        f.write(json.dumps(bad) + "\n")
    with pytest.raises(RecordError, match=rf"{path}:2: .*unknown metric"):
        list(read_records(tmp_path))


def test_unknown_field_on_disk_is_an_error(tmp_path):
    path = tmp_path / "linear_cls.jsonl"
    good = ResultRecord(method="m", task="linear_cls", dataset="IN-1K", metric="top1",
                        value=1.0, scale="smoke")
    line = json.dumps({**good.__dict__, "surprise": 1})
    path.write_text(json.dumps(good.__dict__) + "\n" + line + "\n")
    with pytest.raises(RecordError, match=rf"{path}:2:"):
        list(read_records(tmp_path))


@pytest.mark.parametrize("target", ["replace", "fsync"])
def test_interrupted_write_keeps_previous_content(tmp_path, monkeypatch, target):
    _append(tmp_path, value=1.0)
    path = tmp_path / "linear_cls.jsonl"
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(provenance.os, target, boom)
    with pytest.raises(OSError, match="disk gone"):
        _append(tmp_path, value=2.0)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [r.value for r in read_records(tmp_path)] == [1.0]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_runs_dir_defaults_to_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_REPRO_RESULTS", str(tmp_path / "res"))
    assert records.runs_path() == tmp_path / "res" / "runs"
    monkeypatch.delenv("SSL_REPRO_RESULTS")
    # without the variable a run writes to results/local/runs, never to the reference records
    assert records.runs_path() == records.LOCAL_RUNS_DIR == records.REPO_ROOT / "results" / "local" / "runs"
    assert records.runs_path() != records.DEFAULT_RUNS_DIR
    assert records.runs_path(tmp_path) == tmp_path


def test_merge_appends_each_record_once(tmp_path):
    step, local = tmp_path / "step", tmp_path / "local"
    _append(local, value=1.0)
    _append(step, value=2.0)
    _append(step, task="knn_cls", value=3.0)
    assert records.merge_records(step, local) == 2
    assert records.merge_records(step, local) == 0  # merging again appends nothing
    assert sorted(r.value for r in read_records(local)) == [1.0, 2.0, 3.0]
    assert records.main(["--merge", str(step), "--into", str(local)]) == 0
    assert len(list(read_records(local))) == 3
