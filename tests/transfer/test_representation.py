"""The harnesses' ``--representation hypercolumn`` (CGH Table 8 "CGH (hyper)"): kNN and linear
evaluation run on the hypercolumn head exported with a CGH backbone and record it."""
import pytest
import torch

from evaluation.records import read_records
from pretrain import checkpoint as ckpt
from pretrain.methods.cgh import CGH


@pytest.fixture(scope="module")
def cgh_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = CGH(arch="resnet18", stem="cifar", layers=(3, 4), dim=8, hidden_dim=16, memory=8)
    return ckpt.save_backbone(tmp_path_factory.mktemp("cgh") / "backbone.pth", model.backbone, method="cgh",
                              extra=model.export_extra())


def test_knn_on_the_hypercolumn(generated, cgh_checkpoint, tmp_path):
    from transfer import knn

    args = ["--smoke", "--ckpt", str(cgh_checkpoint), "--dataset", "cifar10", "--data", str(generated["cifar10"]),
            "--image-size", "32", "-k", "20", "-t", "0.07", "--results", str(tmp_path)]
    hyper = knn.main(args + ["--representation", "hypercolumn"])
    plain = knn.main(args)
    records = list(read_records(tmp_path))
    assert [r.protocol["representation"] for r in records] == ["hypercolumn", "global"]
    assert [r.value for r in records] == [hyper, plain] and records[0].method == "cgh"


def test_linear_on_the_hypercolumn_refuses_a_checkpoint_without_it(generated, cgh_checkpoint, smoke_checkpoint,
                                                                   tmp_path):
    from transfer import linear

    args = ["--smoke", "--dataset", "imagefolder", "--data", str(generated["imagefolder"]), "--test-split", "val",
            "--max-per-class", "4", "--crop", "16", "--resize", "16", "--batch-size", "10", "--precompute",
            "--results", str(tmp_path), "--representation", "hypercolumn"]
    linear.main(args + ["--ckpt", str(cgh_checkpoint)])
    (record,) = read_records(tmp_path)
    assert record.protocol["representation"] == "hypercolumn" and record.task == "linear_cls"
    with pytest.raises(ckpt.CheckpointError, match="hypercolumn"):
        linear.main(args + ["--ckpt", str(smoke_checkpoint("resnet18", "cifar"))])
