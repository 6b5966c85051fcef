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
        assert protocol["image_size"] == 32 and protocol["grid"]["n"] == 5 and protocol["solver"] == "torch"
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
