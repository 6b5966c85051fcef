"""The papers' 5 repeats: at --scale full VOC detection and both segmentation harnesses fine-tune
5 times by default and record each run and the mean (aggregate mean_of_N). The single
fine-tuning is mocked: what is tested is the repeat loop and its records."""
import argparse
import json
import statistics

import pytest

from transfer import cityscapes_seg, mmseg_common, voc_det, voc_seg
from transfer.common import PAPER_REPEATS, add_repeats_arg, resolve_repeats


def _rows(runs, task):
    return [json.loads(line) for line in (runs / f"{task}.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("scale,given,expected", [("full", None, 5), ("full", 6, 6), ("reduced", None, 1),
                                                  ("smoke", None, 1), ("smoke", 3, 3)])
def test_default_repeats_follow_the_scale(scale, given, expected):
    parser = argparse.ArgumentParser()
    add_repeats_arg(parser)
    args = parser.parse_args([] if given is None else ["--repeats", str(given)])
    args.scale = scale
    assert PAPER_REPEATS == 5 and resolve_repeats(args, parser) == expected == args.repeats


@pytest.mark.parametrize("main", [voc_det.main, voc_seg.main, cityscapes_seg.main])
def test_full_scale_refuses_fewer_than_five_repeats(main, smoke_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--ckpt", str(smoke_checkpoint("resnet18", "imagenet")), "--data", str(tmp_path), "--scale", "full",
              "--repeats", "2"])
    assert "mean of the papers' 5 runs" in capsys.readouterr().err


def test_voc_detection_full_runs_five_repeats_and_records_the_mean(generated, smoke_checkpoint, tmp_path,
                                                                   monkeypatch):
    seeds = []

    def fake_prepare(ckpt, cfg, out_dir, request):
        return out_dir / "w.pth", {"method": "smoke_random", "norm_rescale": None}

    def fake_train(cfg, specs, weights, num_gpus):  # one fine-tuning: a number per seed
        seeds.append(cfg.SEED)
        return {"results": {"bbox": {"AP": 50.0 + cfg.SEED, "AP50": 80.0 - cfg.SEED, "AP75": 55.0 + 2 * cfg.SEED}},
                "verified_tensors": 120, "train_s": 1.0}

    monkeypatch.setattr(voc_det, "prepare_weights", fake_prepare)
    monkeypatch.setattr(voc_det, "train_and_evaluate", fake_train)
    mean = voc_det.main(["--ckpt", str(smoke_checkpoint("resnet18", "imagenet")), "--data", str(generated["voc"]),
                         "--scale", "full", "--seed", "10", "--device", "cpu", "--out", str(tmp_path / "out"),
                         "--results", str(tmp_path / "runs")])
    assert seeds == [10, 11, 12, 13, 14]
    rows = _rows(tmp_path / "runs", "det_voc")
    assert all(r["scale"] == "full" for r in rows)
    single = [r for r in rows if r["protocol"]["aggregate"] == "single_run"]
    means = [r for r in rows if r["protocol"]["aggregate"] == "mean_of_5"]
    assert len(single) == 15 and len(means) == 3
    assert sorted({r["protocol"]["repeat"] for r in single}) == [0, 1, 2, 3, 4]
    expected = {"AP": statistics.fmean(50.0 + s for s in seeds), "AP50": statistics.fmean(80.0 - s for s in seeds),
                "AP75": statistics.fmean(55.0 + 2 * s for s in seeds)}
    for row in means:
        assert row["value"] == pytest.approx(expected[row["metric"]]) == mean[row["metric"]]
        assert row["protocol"]["values"][row["metric"]] == [r["value"] for r in single if r["metric"] == row["metric"]]
        assert row["protocol"]["repeats"] == 5


def test_segmentation_repeats_record_each_run_and_the_mean(generated, smoke_checkpoint, tmp_path, monkeypatch):
    runs = []

    def fake_fine_tune(cfg):
        runs.append((cfg.randomness["seed"], cfg.work_dir))
        return {"mIoU": 40.0 + 3 * cfg.randomness["seed"], "device": "cpu", "train_images": 5, "val_images": 3,
                "backbone_tensors_checked": 120, "val_history": []}

    monkeypatch.setattr(mmseg_common, "fine_tune_once", fake_fine_tune)
    miou = cityscapes_seg.main(["--ckpt", str(smoke_checkpoint("resnet18", "imagenet")), "--data",
                                str(generated["cityscapes"]), "--smoke", "--repeats", "3",
                                "--work-dir", str(tmp_path / "work")])
    assert [seed for seed, _ in runs] == [0, 1, 2] and len({wd for _, wd in runs}) == 3
    rows = _rows(tmp_path / "results" / "runs", "sem_seg")
    assert [r["protocol"]["aggregate"] for r in rows] == ["single_run"] * 3 + ["mean_of_3"]
    assert [r["value"] for r in rows[:3]] == [40.0, 43.0, 46.0]
    assert rows[3]["value"] == pytest.approx(43.0) == pytest.approx(miou)
    assert rows[3]["protocol"]["values"] == [40.0, 43.0, 46.0] and rows[3]["protocol"]["std"] == pytest.approx(3.0)
