"""Collector: joins records to published rows honestly and writes deterministic output."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import collector, records
from evaluation.collector import MEASURED_COLUMNS, PAPER_COLUMNS, collect, main
from evaluation.published import COLUMNS, PAPERS, PUBLISHED_DIR, load_published
from evaluation.records import append_record, read_records

REPO = Path(__file__).resolve().parents[2]
TAU = "with predictor; tau_s=0.1,tau_t=0.04"  # ReSSL Table 1, CIFAR-10: 90.76
ONE_CROP = "1 crop; 1x backprop"              # ReSSL Table 7, IN-1K linear: 72.0


@pytest.fixture
def clock(monkeypatch):
    """Fast provenance and strictly increasing record times."""
    ticks = iter(range(10, 60))
    monkeypatch.setattr(records, "device_description", lambda device=None: "cpu:test")
    monkeypatch.setattr(records, "utc_now", lambda: f"2025-01-02T03:04:{next(ticks):02d}Z")


def _ressl(table, variant, **extra):
    return {"reproduces": {"paper": "ressl", "table": table, "method": "ReSSL",
                           "variant": variant}, **extra}


def _add(runs, *, task="ablation", dataset="CIFAR-10", metric="top1", value, scale,
         protocol=None, run_id):
    return append_record(method="ressl", task=task, dataset=dataset, metric=metric,
                         value=value, scale=scale, protocol=protocol, run_id=run_id,
                         runs_dir=runs)


@pytest.fixture
def runs(tmp_path, clock):
    runs = tmp_path / "runs"
    # ReSSL Table 1 row: a full run, then a later smoke run (the full one must win)
    _add(runs, value=90.5, scale="full", protocol=_ressl("Table 1", TAU), run_id="full-1")
    _add(runs, value=40.0, scale="smoke", protocol=_ressl("Table 1", TAU), run_id="smoke-1")
    # ReSSL Table 7 row: smoke, then reduced (reduced wins), then an older-style smoke
    _add(runs, task="linear_cls", dataset="IN-1K", value=72.0, scale="smoke",
         protocol=_ressl("Table 7", ONE_CROP), run_id="smoke-2")
    _add(runs, task="linear_cls", dataset="IN-1K", value=55.5, scale="reduced",
         protocol=_ressl("Table 7", ONE_CROP, epochs=20), run_id="reduced-1")
    _add(runs, task="linear_cls", dataset="IN-1K", value=10.0, scale="smoke",
         protocol=_ressl("Table 7", ONE_CROP), run_id="smoke-3")
    # bookkeeping record without a published counterpart
    append_record(method="ressl", task="pretrain", dataset="CIFAR-10", metric="final_loss",
                  value=3.25, scale="smoke", protocol={"epochs": 1}, run_id="pre-1",
                  runs_dir=runs)
    # LEWEL Table 1 prints LEWEL_B at 100/200/400 epochs: ambiguous without epochs
    lewel = {"paper": "lewel", "table": "Table 1", "method": "LEWEL_B"}
    append_record(method="lewel_b", task="linear_cls", dataset="IN-1K", metric="top1",
                  value=70.0, scale="full", protocol={"reproduces": lewel}, run_id="amb-1",
                  runs_dir=runs)
    append_record(method="lewel_b", task="linear_cls", dataset="IN-1K", metric="top1",
                  value=72.3, scale="full", protocol={"reproduces": {**lewel, "epochs": 200}},
                  run_id="lewel-200", runs_dir=runs)
    # a typo in the reference
    append_record(method="pcd", task="linear_cls", dataset="IN-1K", metric="top1",
                  value=60.0, scale="full",
                  protocol={"reproduces": {"paper": "pcd", "table": "Table 1",
                                           "method": "PCD-typo"}},
                  run_id="typo-1", runs_dir=runs)
    return runs


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _row(rows, **criteria):
    found = [r for r in rows if all(r[k] == v for k, v in criteria.items())]
    assert len(found) == 1, criteria
    return found[0]


def test_full_record_gets_delta_and_beats_later_smoke(runs, tmp_path):
    written = collect(runs, tmp_path / "out")
    rows = _read_csv(written["ressl"])
    row = _row(rows, table="Table 1", variant=TAU, dataset="CIFAR-10", metric="top1")
    assert row["value"] == "90.76"
    assert (row["measured_value"], row["measured_scale"], row["measured_run_id"]) == \
        ("90.5", "full", "full-1")
    assert float(row["delta"]) == pytest.approx(90.5 - 90.76)
    assert row["delta"] == "-0.26"


def test_reduced_and_smoke_records_get_no_delta(runs, tmp_path):
    written = collect(runs, tmp_path / "out")
    row = _row(_read_csv(written["ressl"]), table="Table 7", variant=ONE_CROP)
    assert (row["measured_value"], row["measured_scale"], row["measured_run_id"]) == \
        ("55.5", "reduced", "reduced-1")
    assert row["delta"] == ""
    # no other ressl row was touched, and no smoke/reduced row has a delta anywhere
    for paper in PAPERS:
        for r in _read_csv(written[paper]):
            assert (r["delta"] != "") == (r["measured_scale"] == "full"), r
    measured = [r for r in _read_csv(written["ressl"]) if r["measured_scale"]]
    assert len(measured) == 2


def test_smoke_only_row_gets_value_but_no_delta(tmp_path, clock):
    runs = tmp_path / "runs"
    _add(runs, value=72.0, scale="smoke", task="linear_cls", dataset="IN-1K",
         protocol=_ressl("Table 7", ONE_CROP), run_id="s")
    row = _row(_read_csv(collect(runs, tmp_path / "out")["ressl"]), table="Table 7",
               variant=ONE_CROP)
    assert (row["measured_value"], row["measured_scale"], row["delta"]) == ("72.0", "smoke", "")
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "None yet: no `full` record reproduces a published row." in report


def test_latest_record_of_the_best_scale_is_chosen(tmp_path, clock):
    runs = tmp_path / "runs"
    for value, scale, run in [(1.0, "smoke", "a"), (80.0, "full", "b"), (2.0, "smoke", "c"),
                              (85.0, "full", "d"), (3.0, "reduced", "e")]:
        _add(runs, value=value, scale=scale, protocol=_ressl("Table 1", TAU, n=1), run_id=run)
    row = _row(_read_csv(collect(runs, tmp_path / "out")["ressl"]), table="Table 1",
               variant=TAU, dataset="CIFAR-10")
    assert (row["measured_run_id"], row["measured_value"]) == ("d", "85.0")


def test_paper_tables_keep_every_published_row_unchanged(runs, tmp_path):
    written = collect(runs, tmp_path / "out")
    for paper in PAPERS:
        out_rows = _read_csv(written[paper])
        with open(PUBLISHED_DIR / f"{paper}.csv", newline="") as f:
            published_rows = list(csv.DictReader(f))
        assert list(out_rows[0].keys()) == list(PAPER_COLUMNS)
        assert [{k: r[k] for k in COLUMNS} for r in out_rows] == published_rows


def test_ambiguous_and_unknown_references_are_reported_not_joined(runs, tmp_path):
    written = collect(runs, tmp_path / "out")
    lewel = _read_csv(written["lewel"])
    b200 = _row(lewel, table="Table 1", method="LEWEL_B", epochs="200", metric="top1")
    assert (b200["measured_run_id"], b200["delta"]) == ("lewel-200", "-0.5")
    others = [r for r in lewel if r["measured_run_id"] == "amb-1"]
    assert others == []
    report = written["report"].read_text()
    unresolved = report.split("## References that did not resolve")[1].split("## ")[0]
    assert "amb-1" in unresolved and "3 published rows match; add epochs" in unresolved
    assert "typo-1" in unresolved and "names no published row" in unresolved
    assert "lewel-200" not in unresolved and "pre-1" not in unresolved


def test_reference_for_another_metric_is_reported(tmp_path, clock):
    runs = tmp_path / "runs"
    _add(runs, value=1.0, scale="full", metric="top5", protocol=_ressl("Table 1", TAU),
         run_id="wrong-metric")
    collection = collector.collect_records(read_records(runs))
    assert collection.matches == {}
    assert [u.measured.record.run_id for u in collection.unresolved] == ["wrong-metric"]
    assert "ablation/CIFAR-10/top1" in collection.unresolved[0].reason


def test_list_of_references_joins_the_rows_of_its_own_metric(tmp_path, clock):
    runs = tmp_path / "runs"
    refs = [{"paper": "ressl", "table": "Table 12", "method": "ReSSL",
             "variant": "Mask R-CNN R50-C4; 2x schedule"},
            {"paper": "ressl", "table": "Table 7", "method": "ReSSL", "variant": ONE_CROP}]
    _add(runs, task="det_coco", dataset="COCO", metric="AP", value=40.0, scale="full",
         protocol={"reproduces": refs}, run_id="det")
    collection = collector.collect_records(read_records(runs))
    published = collection.published
    [(index, [m])] = collection.matches.items()
    assert published.loc[index, "table"] == "Table 12" and published.loc[index, "value"] == 40.4
    assert m.record.run_id == "det" and collection.unresolved == []


def test_measured_csv_lists_every_record(runs, tmp_path):
    written = collect(runs, tmp_path / "out")
    rows = _read_csv(written["measured"])
    originals = list(read_records(runs))
    assert len(rows) == len(originals) == 9
    assert list(rows[0].keys()) == list(MEASURED_COLUMNS)
    assert [r["time_utc"] for r in rows] == sorted(r["time_utc"] for r in rows)
    by_run = {r.run_id: r for r in originals}
    for row in rows:
        original = by_run[row["run_id"]]
        assert json.loads(row["protocol"]) == original.protocol
        assert "\n" not in row["protocol"] and ", " not in row["protocol"]
        assert float(row["value"]) == original.value and row["scale"] == original.scale
    assert _row(rows, run_id="pre-1")["task"] == "pretrain"


def test_report(runs, tmp_path):
    report = collect(runs, tmp_path / "out")["report"].read_text()
    head = report[:800]
    assert "NOT reproductions" in head and "smoke" in head and "reduced" in head
    coverage = report.split("## Coverage per paper")[1].split("## ")[0]
    assert "| ressl | 542 | 1 | 1 | 2 |" in coverage
    assert "| lewel | 324 | 1 | 0 | 0 |" in coverage
    assert "| pcd | 231 | 0 | 0 | 0 |" in coverage
    full = report.split("## Full-scale reproductions")[1].split("## ")[0]
    assert "| ressl | Table 1 | ReSSL |" in full and "| 90.76 | 90.5 | -0.26 | full-1 |" in full
    assert "72.3 | -0.5 | lewel-200" in full
    assert "reduced-1" not in full and "smoke" not in full.split("\n\n", 2)[2]
    everything = report.split("## All measured records")[1]
    for run in ("full-1", "smoke-1", "smoke-2", "reduced-1", "smoke-3", "pre-1", "amb-1",
                "lewel-200", "typo-1"):
        assert f"| {run} |" in everything
    assert "| ressl | pretrain | CIFAR-10 | final_loss | 3.25 | smoke | cpu:test | 2025-01-02 |" \
        in everything


def test_output_is_deterministic(runs, tmp_path):
    first = collect(runs, tmp_path / "a")
    second = collect(runs, tmp_path / "b")
    again = collect(runs, tmp_path / "a")
    assert set(first) == {"measured", "report", *PAPERS}
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes() == \
            again[name].read_bytes(), name
    # a copy of the runs folder (new mtimes, same content) gives the same bytes
    copy = tmp_path / "runs-copy"
    copy.mkdir()
    for path in runs.glob("*.jsonl"):
        (copy / path.name).write_bytes(path.read_bytes())
    third = collect(copy, tmp_path / "c")
    for name in first:
        assert first[name].read_bytes() == third[name].read_bytes(), name


def test_empty_runs_folder(tmp_path):
    written = collect(tmp_path / "none", tmp_path / "out")
    assert written["measured"].read_text() == ",".join(MEASURED_COLUMNS) + "\n"
    assert "No records yet." in written["report"].read_text()
    assert len(_read_csv(written["cgh"])) == len(load_published("cgh"))


def test_cli(runs, tmp_path, capsys):
    assert main(["--runs", str(runs), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "REPORT.md").is_file()
    assert str(tmp_path / "cli" / "measured.csv") in capsys.readouterr().out
    with open(runs / "linear_cls.jsonl", "a") as f:
        f.write("garbage\n")
    lines = len((runs / "linear_cls.jsonl").read_text().splitlines())
    assert main(["--runs", str(runs), "--out", str(tmp_path / "cli2")]) == 2
    assert f"linear_cls.jsonl:{lines}:" in capsys.readouterr().err
    assert not (tmp_path / "cli2").exists()


def test_module_help_and_import_rule():
    code = ("import sys, evaluation.collector, evaluation.published, evaluation.records;"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'pretrain', 'transfer'));"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run([sys.executable, "-m", "evaluation.collector", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--runs" in result.stdout and "--out" in result.stdout
