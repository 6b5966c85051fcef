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
         protocol={"reproduces": refs, "protocol_label": "Mask R-CNN R50-C4; 2x schedule"},
         run_id="det")
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
    assert set(first) == {"measured", "report", "scatter", *PAPERS}
    assert first["scatter"].read_bytes().startswith(b"\x89PNG")
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


# ------------------------------------------------------------------ the join, cell by cell

def _record(runs, *, task, dataset, metric, value, scale="full", run_id, reproduces,
            label="", **protocol):
    return append_record(method="m", task=task, dataset=dataset, metric=metric, value=value,
                         scale=scale, run_id=run_id, runs_dir=runs, checkpoint=None,
                         protocol={"reproduces": reproduces, "protocol_label": label, **protocol})


def _chosen_runs(collection, **criteria):
    """{published value: chosen run id} of the rows matching ``criteria``."""
    published = collection.published
    rows = published[[all(published.loc[i, k] == v for k, v in criteria.items())
                      for i in published.index]]
    out = {}
    for index in rows.index:
        chosen = collection.chosen(int(index))
        out[rows.loc[index, "value_text"]] = chosen.record.run_id if chosen else None
    return out


def test_linear_record_fills_the_ablation_rows_its_config_names(tmp_path, clock):
    """The ReSSL config of Table 1's best CIFAR-10 row names rows of Tables 1, 3, 4, 5 and 6
    (all task `ablation`): a linear_cls record fills each of them; a kNN record fills none."""
    from evaluation.published import load_published  # noqa: F401 (vocabulary check below)
    config = (REPO / "pretrain/configs/ressl/cifar10_pred_taus0.1_taut0.04.yaml").read_text()
    import yaml
    refs = yaml.safe_load(config)["reproduces"]
    runs = tmp_path / "runs"
    _record(runs, task="linear_cls", dataset="CIFAR-10", metric="top1", value=91.0,
            run_id="lin", reproduces=refs)
    _record(runs, task="knn_cls", dataset="CIFAR-10", metric="top1", value=80.0,
            run_id="knn", reproduces=refs)
    collection = collector.collect_records(read_records(runs))
    joined = {(collection.published.loc[i, "table"], collection.published.loc[i, "variant"])
              for i in collection.matches}
    assert joined == {("Table 1", TAU), ("Table 3", "without InfoNCE warm-up"),
                      ("Table 4", "teacher aug=random resized crop + random flip"),
                      ("Table 5", "teacher aug=weak"), ("Table 6", "K=4096")}
    assert all(m.record.run_id == "lin" and collection.published.loc[i, "dataset"] == "CIFAR-10"
               for i, ms in collection.matches.items() for m in ms)
    assert [u.measured.record.run_id for u in collection.unmatched] == ["knn"]
    assert "knn_cls/CIFAR-10/top1" in collection.unmatched[0].reason


def test_c4_record_never_fills_an_fpn_cell(tmp_path, clock):
    runs = tmp_path / "runs"
    ref = {"paper": "pcd", "table": "Table 1", "method": "PCD", "variant": "asymmetric loss"}
    _record(runs, task="det_coco", dataset="COCO", metric="AP", value=30.0, run_id="c4",
            reproduces=ref, label="Mask R-CNN R18-C4; 1x schedule")
    _record(runs, task="det_coco", dataset="COCO", metric="AP", value=36.0, run_id="fpn",
            reproduces=ref, label="Mask R-CNN R18-FPN; 1x schedule")
    _record(runs, task="det_coco", dataset="COCO", metric="AP", value=1.0, run_id="nolabel",
            reproduces=ref)
    _record(runs, task="det_coco", dataset="COCO", metric="AP", value=2.0, run_id="2x",
            reproduces=ref, label="Mask R-CNN R18-FPN; 2x schedule")
    collection = collector.collect_records(read_records(runs))
    cells = _chosen_runs(collection, paper="pcd", table="Table 1", method="PCD", task="det_coco")
    assert cells["31.9"] == "c4"      # asymmetric loss; Mask R-CNN C4; 1x schedule
    assert cells["37.0"] == "fpn"     # asymmetric loss; Mask R-CNN FPN; 1x schedule
    assert [m.record.run_id for ms in collection.matches.values() for m in ms] in \
        (["c4", "fpn"], ["fpn", "c4"])
    unmatched = {u.measured.record.run_id: u.reason for u in collection.unmatched}
    assert set(unmatched) == {"nolabel", "2x"}
    assert "does not fit" in unmatched["nolabel"] and "(no protocol_label)" in unmatched["nolabel"]
    assert "Mask R-CNN R18-FPN; 2x schedule" in unmatched["2x"]


def test_mean_of_repeats_is_preferred_over_single_runs(tmp_path, clock):
    runs = tmp_path / "runs"
    ref = {"paper": "cgh", "table": "Table 4", "method": "CGH", "variant": "Faster R-CNN R50-C4"}
    label = "Faster R-CNN R50-C4; trainval07+12 24k iter"
    _record(runs, task="det_voc", dataset="VOC07+12", metric="AP", value=56.0, run_id="mean",
            reproduces=ref, label=label, aggregate="mean_of_5")
    _record(runs, task="det_voc", dataset="VOC07+12", metric="AP", value=57.5, run_id="single",
            reproduces=ref, label=label, aggregate="single_run")  # later, but one repeat
    _record(runs, task="det_voc", dataset="VOC07+12", metric="AP", value=55.0, run_id="mean2",
            reproduces=ref, label=label, aggregate="mean_of_2")   # later, fewer repeats
    collection = collector.collect_records(read_records(runs))
    [(index, candidates)] = collection.matches.items()
    assert len(candidates) == 3 and collection.chosen(index).record.run_id == "mean"
    assert collection.published.loc[index, "value_text"] == "56.8"


def test_full_evaluation_of_a_smoke_checkpoint_is_smoke(tmp_path, clock):
    runs = tmp_path / "runs"
    _record(runs, task="ablation", dataset="CIFAR-10", metric="top1", value=91.0, run_id="r",
            reproduces=_ressl("Table 1", TAU)["reproduces"], pretrain_scale="smoke")
    written = collect(runs, tmp_path / "out")
    row = _row(_read_csv(written["ressl"]), table="Table 1", variant=TAU, dataset="CIFAR-10")
    assert (row["measured_scale"], row["delta"]) == ("smoke", "")


def test_records_without_a_published_row_are_listed(runs, tmp_path, clock):
    append_record(method="mocov2", task="knn_cls", dataset="synthetic-shapes", metric="top1",
                  value=70.0, scale="smoke", protocol={"k": 20}, run_id="lonely", runs_dir=runs)
    report = collect(runs, tmp_path / "out")["report"].read_text()
    section = report.split("## Records matching no published row")[1].split("\n## ")[0]
    assert "| lonely | mocov2 | knn_cls | synthetic-shapes | top1 | 70 | smoke |" in section
    assert "no `reproduces`" in section
    for run in ("amb-1", "typo-1"):  # unresolved references are unmatched records too
        assert f"| {run} |" in section
    for run in ("full-1", "lewel-200", "pre-1"):  # joined, or bookkeeping
        assert f"| {run} |" not in section


def test_report_pivots_every_published_table(runs, tmp_path):
    report = collect(runs, tmp_path / "out")["report"].read_text()
    published = load_published()
    for (paper, table), rows in published.groupby(["paper", "table"]):
        assert f"### {paper} {table}\n" in report
        assert f"{len(rows)} published cells" in report.split(f"### {paper} {table}\n")[1][:200]
    table1 = report.split("### ressl Table 1\n")[1].split("\n### ")[0]
    header = next(line for line in table1.splitlines() if line.startswith("| method"))
    assert header.startswith("| method | setting | CIFAR-10 | reproduced | CIFAR-100 | reproduced |")
    line = next(line for line in table1.splitlines() if f"| {TAU} |" in line)
    assert line.startswith(f"| ReSSL | {TAU} | 90.76 | 90.5 (-0.26) | 64.60 | not run |")
    assert "All rows: backbone ResNet-18; epochs 200; task ablation; metric top1." in table1
    table7 = report.split("### ressl Table 7\n")[1].split("\n### ")[0]
    assert "| reduced: 55.5 |" in table7  # reduced: marked, no delta
    assert "**Not run: NYUD depth has no harness (its cells stay not run).**" in \
        report.split("### revisiting Table S1\n")[1][:300]


def test_variant_split_and_facets():
    assert collector.split_variant("det_coco", "multi-crop; Mask R-CNN R50-C4; 1x schedule") == \
        ("multi-crop", "Mask R-CNN R50-C4; 1x schedule")
    assert collector.split_variant("low_shot", "k=16") == ("", "k=16")
    assert collector.split_variant("ablation", "k=1,lambda=0.4") == ("k=1,lambda=0.4", "")
    assert collector.facets("det_voc", "Faster R-CNN C4; trainval07+12 24k iter") == \
        {"detector": "Faster", "neck": "C4", "schedule": "24k", "train": "07+12"}
    assert collector.facets("det_coco", "Mask R-CNN R50-DC5; 2x schedule") == \
        {"detector": "Mask", "neck": "DC5", "schedule": "2x"}
    assert collector.facets("sem_seg", "dilated FCN (OS 8)") == {"output_stride": "8"}
    assert collector.measuring_tasks("ablation", "CIFAR-10", "top1") == {"ablation", "linear_cls"}
    assert collector.measuring_tasks("ablation", "COCO", "AP_mask") == {"ablation", "inst_seg_coco"}
    assert collector.measuring_tasks("det_voc", "VOC07", "AP") == {"det_voc"}


def test_config_naming_c4_and_fpn_rows_places_each_record_once(tmp_path, clock):
    """A config naming both protocols' rows (full variants): the C4 record joins the C4 cell
    and is not reported as a mismatch of the FPN reference."""
    runs = tmp_path / "runs"
    refs = [{"paper": "lewel", "table": "Table 4", "method": "LEWEL_B", "epochs": 200,
             "variant": f"Mask R-CNN R50-{neck}; 1x schedule"} for neck in ("C4", "FPN")]
    _record(runs, task="det_coco", dataset="COCO", metric="AP", value=38.0, run_id="c4",
            reproduces=refs, label="Mask R-CNN R50-C4; 1x schedule")
    collection = collector.collect_records(read_records(runs))
    assert _chosen_runs(collection, paper="lewel", table="Table 4", method="LEWEL_B", metric="AP",
                        epochs="200") == {"38.5": "c4", "41.3": None}
    assert collection.unresolved == [] and collection.unmatched == []


def test_reads_the_reference_and_the_new_records_and_says_which(runs, tmp_path, monkeypatch):
    """Default sources: results/runs (the project's reference records) and $SSL_REPRO_RESULTS/runs
    (a user's new ones); an identical record in both is counted once; REPORT.md names the source."""
    local = tmp_path / "local"
    _add(local / "runs", value=91.0, scale="full", protocol=_ressl("Table 1", TAU), run_id="mine-1")
    monkeypatch.setattr(collector, "DEFAULT_RUNS_DIR", runs)
    monkeypatch.setenv("SSL_REPRO_RESULTS", str(local))
    assert collector.default_runs() == [runs, local / "runs"]
    report = collect(None, tmp_path / "out")["report"].read_text()
    reference_count = len(list(read_records(runs)))
    assert f"- reference: {reference_count} record(s), the project's own measurements" in report
    assert "- new: 1 record(s), new runs" in report
    everything = report.split("## All measured records")[1]
    assert f"| mine-1 | ressl / Table 1 / ReSSL / {TAU} | new |" in everything
    assert "| full-1 |" in everything and "| reference |" in everything
    both = collect([runs, runs, local / "runs"], tmp_path / "out2")["report"].read_text()
    assert f"{reference_count + 1} result record(s)" in both
    monkeypatch.setenv("SSL_REPRO_RESULTS", str(runs.parent))  # the reference folder itself
    assert collector.default_runs() == [runs]
    monkeypatch.delenv("SSL_REPRO_RESULTS")  # unset: the new records are results/local/runs
    assert collector.default_runs() == [runs, collector.runs_path()]
    assert collector.runs_path().parts[-3:] == ("results", "local", "runs")
