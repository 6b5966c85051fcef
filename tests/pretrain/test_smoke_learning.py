"""Slow (about 15-30 min each on 2 CPU cores): each method's smoke config, run in full on the
generated shapes, must beat randomly initialised ResNet-18s on kNN. This is what the smoke
configs are tuned to show; three random-init seeds give the baseline's spread."""
import pytest
import torch

from pretrain.checkpoint import load_backbone
from pretrain.config import CONFIG_DIR, load_config
from pretrain.data.loading import UInt8Images, open_dataset
from pretrain.engine import train
from pretrain.features import knn_accuracy
from pretrain.models.resnet import build_backbone


@pytest.mark.slow
@pytest.mark.parametrize("method", [
    "mocov2", "ressl", "cgh", "byol",
])
def test_smoke_pretraining_beats_random_init_on_knn(generated, tmp_path, method):
    root = generated["imagefolder"]
    config = load_config(CONFIG_DIR / f"{method}_smoke.yaml",
                         [f"data.root={root}", f"train.out_dir={tmp_path / method}", "train.quiet=true"])
    backbone, _ = load_backbone(train(config))
    bank, queries = (UInt8Images(open_dataset("imagefolder", root, split), 64) for split in ("train", "val"))
    knn = lambda net: knn_accuracy(net, bank, queries, "cpu", 20, 0.07, progress=False)  # noqa: E731
    baselines = []
    for seed in range(3):
        torch.manual_seed(seed)
        baselines.append(knn(build_backbone("resnet18", stem="imagenet")))
    assert knn(backbone) > max(baselines), (method, baselines)
