"""transfer/lbfgs_transfer.py --smoke on generated miniatures writes transfer_linear records."""
from __future__ import annotations

import json

import pytest

from pretrain.data import synthetic_transfer
from transfer import lbfgs_transfer

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.mark.parametrize("kind,name,metrics", [
    ("dtd", "DTD", {"top1", "mean_per_class_acc"}),
    ("voc2007", "VOC07", {"mAP"}),
])
def test_smoke_run_writes_records(tmp_path, smoke_checkpoint, kind, name, metrics):
    root = synthetic_transfer.generate(tmp_path / "data", kinds=[kind])[kind]
    ckpt = smoke_checkpoint("resnet18", "cifar")
    results = tmp_path / "runs"
    value = lbfgs_transfer.main(["--smoke", "--ckpt", str(ckpt), "--dataset", kind, "--data", str(root),
                                 "--results", str(results), "--device", "cpu"])
    records = [json.loads(line) for line in (results / "transfer_linear.jsonl").read_text().splitlines()]
    assert {r["metric"] for r in records} == metrics
    for r in records:
        assert r["task"] == "transfer_linear" and r["dataset"] == name and r["scale"] == "smoke"
        assert r["checkpoint"] == str(ckpt) and r["method"] == "smoke_random"
        protocol = r["protocol"]
        assert protocol["image_size"] == 32 and protocol["grid"]["n"] == 5
        # the published protocol by default: sklearn lbfgs on raw float64 features, Ericsson's path
        assert protocol["solver"] == "sklearn" and protocol["dtype"] == "float64"
        assert protocol["standardize"] is False and protocol["warm_start_path"] == "ericsson"
        assert protocol["max_iter"] == 100 and protocol["deviations"] == []
        assert protocol["C"] in protocol_grid_values(5)
        assert len(protocol["val_scores"]) == 5 and protocol["features"] == 512
    assert value == next(r["value"] for r in records if r["metric"] == lbfgs_transfer.SPECS[kind].metric)


def protocol_grid_values(n):
    from evaluation.logreg import protocol_grid
    return [float(c) for c in protocol_grid(n)]


def test_reduced_needs_a_reduction(tmp_path):
    with pytest.raises(SystemExit):
        lbfgs_transfer.main(["--scale", "reduced", "--random-init", "--arch", "resnet18", "--dataset", "dtd",
                             "--data", str(tmp_path)])


def test_torch_solver_is_recorded_as_a_deviation(tmp_path, smoke_checkpoint):
    root = synthetic_transfer.generate(tmp_path / "data", kinds=["dtd"])["dtd"]
    results = tmp_path / "runs"
    lbfgs_transfer.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "cifar")), "--dataset", "dtd",
                         "--data", str(root), "--results", str(results), "--device", "cpu",
                         "--solver", "torch", "--dtype", "float32"])
    protocol = json.loads((results / "transfer_linear.jsonl").read_text().splitlines()[0])["protocol"]
    assert protocol["solver"] == "torch" and protocol["dtype"] == "float32"
    assert protocol["deviations"] == ["solver torch.optim.LBFGS (float32) instead of sklearn "
                                      "LogisticRegression(lbfgs)"]


@pytest.mark.parametrize("flags", [["--standardize"], ["--path", "ascending"]])
def test_full_scale_refuses_a_changed_protocol(tmp_path, flags, capsys):
    with pytest.raises(SystemExit):
        lbfgs_transfer.main(["--scale", "full", "--random-init", "--arch", "resnet50", "--dataset", "dtd",
                             "--data", str(tmp_path), *flags])
    assert "published protocol" in capsys.readouterr().err


def test_resize_square_keeps_the_whole_image():
    """Revisiting's transform squeezes the whole image (no crop): both ends of a wide image survive;
    the Ericsson transform's centre crop cuts them off."""
    from PIL import Image

    from transfer.common import ResizeCenterCrop, ResizeSquare

    wide = Image.new("RGB", (60, 20), (0, 0, 255))
    wide.paste((255, 0, 0), (0, 0, 10, 20))  # a red strip at the far left
    reader = [(wide, 3)]
    square, label = ResizeSquare(reader, 8)[0]
    assert square.shape == (3, 8, 8) and label == 3
    assert square[0, :, 0].float().mean() > 200 and square[2, :, -1].float().mean() > 200  # red left, blue right
    cropped, _ = ResizeCenterCrop(reader, 8, 8)[0]
    assert cropped[0].float().max() < 60  # the centre crop never sees the red strip


def test_revisiting_preset_is_recorded(tmp_path, smoke_checkpoint):
    root = synthetic_transfer.generate(tmp_path / "data", kinds=["dtd"])["dtd"]
    results = tmp_path / "runs"
    lbfgs_transfer.main(["--smoke", "--ckpt", str(smoke_checkpoint("resnet18", "cifar")), "--dataset", "dtd",
                         "--data", str(root), "--results", str(results), "--device", "cpu", "--preset", "revisiting"])
    protocol = json.loads((results / "transfer_linear.jsonl").read_text().splitlines()[0])["protocol"]
    from evaluation.logreg import protocol_grid
    assert protocol["preset"] == "revisiting" and protocol["wd_range"] == [1e-5, 1e5]
    assert protocol["resize"].startswith("whole image") and protocol["deviations"] == []
    assert protocol["C"] in [float(c) for c in protocol_grid(5, 1e-5, 1e5)]


def test_full_scale_refuses_a_preset_changed_by_its_flags(tmp_path, capsys):
    with pytest.raises(SystemExit):
        lbfgs_transfer.main(["--scale", "full", "--random-init", "--arch", "resnet50", "--dataset", "dtd",
                             "--data", str(tmp_path), "--preset", "revisiting", "--wd-range", "1e-6", "1e5"])
    assert "published protocol" in capsys.readouterr().err
