"""Slow (one to three minutes each on one CPU core): every smoke config, run in full on the
generated shapes, must beat the best of three randomly initialised backbones of its own arch on
kNN by ``evaluation.smoke_summary.MARGIN`` points -- the check docker/run_all.sh's summary makes.
PCD distils the MoCo v2 smoke run (made once per module, as run_all does)."""
import pytest
import torch

from evaluation.smoke_summary import MARGIN
from pretrain.checkpoint import load_backbone
from pretrain.config import CONFIG_DIR, load_config
from pretrain.data.loading import UInt8Images, open_dataset
from pretrain.engine import train
from pretrain.features import knn_accuracy
from pretrain.models.resnet import build_backbone

METHODS = sorted(p.name[: -len("_smoke.yaml")] for p in CONFIG_DIR.glob("*_smoke.yaml"))


def _config(method, root, out, *extra):
    return load_config(CONFIG_DIR / f"{method}_smoke.yaml",
                       [f"data.root={root}", f"train.out_dir={out}", "train.quiet=true", *extra])


@pytest.fixture(scope="module")
def moco_teacher(generated, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train(_config("mocov2", generated["imagefolder"], out))
    return out / "checkpoint.pth"


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_smoke_pretraining_beats_random_init_on_knn(generated, tmp_path, method, request):
    root = generated["imagefolder"]
    extra = [f"method.teacher.checkpoint={request.getfixturevalue('moco_teacher')}"] if method == "pcd" else []
    config = _config(method, root, tmp_path / method, *extra)
    backbone, _ = load_backbone(train(config))
    size, arch = config["data"]["image_size"], config["model"]["arch"]
    bank, queries = (UInt8Images(open_dataset("imagefolder", root, split), size) for split in ("train", "val"))
    knn = lambda net: knn_accuracy(net, bank, queries, "cpu", 20, 0.07, progress=False)  # noqa: E731
    baselines = []
    for seed in range(3):
        torch.manual_seed(seed)
        baselines.append(knn(build_backbone(arch, stem=config["model"]["stem"])))
    learned = knn(backbone)
    assert learned >= max(baselines) + MARGIN, (method, learned, baselines)
