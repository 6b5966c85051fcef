"""evaluation.smoke_summary: PASS/FAIL of each smoke method against the random-init seeds."""
from __future__ import annotations

from evaluation import smoke_summary
from evaluation.records import append_record


def _step(steps, name, task=None, value=None, wall=3, finished=True):
    (steps / name).mkdir(parents=True)
    if task is not None:
        append_record(method=name, task=task, dataset="synthetic-shapes", metric="top1", value=value,
                      scale="smoke", runs_dir=steps / name / "runs")
    if finished:
        (steps / name / "wall_s").write_text(f"{wall}\n")


def test_pass_fail_margin_and_outputs(tmp_path, capsys):
    steps = tmp_path / "steps"
    for seed, value in zip((0, 1, 2), (48.4, 52.8, 50.0)):
        _step(steps, f"knn-random{seed}", "knn_cls", value)
    _step(steps, "pretrain-a", wall=400)
    _step(steps, "knn-a", "knn_cls", 72.2)
    _step(steps, "linear-a", "linear_cls", 80.0)
    _step(steps, "knn-b", "knn_cls", 57.0)             # +4.2 over the best seed: below the margin
    _step(steps, "knn-c", "knn_cls", 90.0, finished=False)  # interrupted: not this run's number
    (steps / "this_run.tsv").write_text("pretrain-a\tran\nknn-a\tskipped\nknn-b\tran\n")
    rows = {r["method"]: r for r in smoke_summary.summarise(steps, ["a", "b", "c"], [0, 1, 2], 5.0)}
    assert rows["a"]["verdict"] == "PASS" and round(rows["a"]["margin"], 6) == 19.4
    assert (rows["a"]["random_knn_min"], rows["a"]["random_knn_max"]) == (48.4, 52.8)
    assert rows["a"]["linear_top1"] == 80.0 and rows["a"]["pretrain_s"] == 400
    assert rows["b"]["verdict"].startswith("FAIL (margin") and round(rows["b"]["margin"], 6) == 4.2
    assert rows["c"]["verdict"] == "FAIL (no kNN result)"
    assert smoke_summary.summarise(steps, ["b"], [0, 1, 2], 4.0)[0]["verdict"] == "PASS"

    code = smoke_summary.main(["--steps", str(steps), "--methods", "a", "b", "--out", str(tmp_path / "out")])
    assert code == 1
    shown = capsys.readouterr().out
    assert "| a | 72.2 | 80.0 | 48.4-52.8 | +19.4 | PASS | 400 | 3 | 3 |" in shown
    assert "FAILED: b" in shown and "| knn-a | skipped | 3 |" in shown
    assert (tmp_path / "out/smoke_summary.md").read_text() in shown
    csv_rows = (tmp_path / "out/smoke_summary.csv").read_text().splitlines()
    assert csv_rows[0].startswith("method,knn_top1,linear_top1") and csv_rows[1].startswith("a,72.2,80.0,48.4,52.8,")
    assert smoke_summary.main(["--steps", str(steps), "--methods", "a"]) == 0


def test_missing_random_baselines_fail(tmp_path):
    steps = tmp_path / "steps"
    _step(steps, "knn-random0", "knn_cls", 50.0)
    _step(steps, "knn-a", "knn_cls", 90.0)
    row, = smoke_summary.summarise(steps, ["a"], [0, 1, 2], 5.0)
    assert row["verdict"] == "FAIL (random-init baselines: 1 of 3 seeds)"
