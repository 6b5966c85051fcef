"""The benchmark's ceiling counts the backbone passes a method's step really makes."""
import pytest
import torch

from pretrain.bench import backbone_passes, main
from pretrain.data.augment import make_views
from pretrain.engine import build_method


def _passes(method_name: str, **method_args):
    size = 32
    config = {"method": {"name": method_name, "dim": 16, "hidden_dim": 32, **method_args},
              "model": {"arch": "resnet18", "stem": "cifar"},
              "views": {name: {"size": size} for name in ("default", "teacher", "student")}}
    method = build_method(config)
    images = torch.randint(0, 256, (4, 3, size, size), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)

    def step():
        if hasattr(method, "begin_step"):
            method.begin_step(0.0, g)
        loss, _ = method([make_views(images, spec, g)[0] for spec in method.views])
        loss.backward()

    return [grad for _, grad in backbone_passes(method, step)]


@pytest.mark.parametrize("name, args, expected", [
    ("mocov2", {"queue_size": 8, "bn_splits": 2}, [False, True]),    # key fwd (shuffle-BN), query fwd+bwd
    ("byol", {}, [False, False, True, True]),                        # symmetric: 2 target, 2 online
    ("ressl", {"memory": 8}, [False, True]),                         # weak teacher, strong student
    ("ressl", {"memory": 8, "symmetric": True}, [False, False, True, True]),
    ("cgh", {"memory": 8}, [False, True]),                           # forward_stages counted too
])
def test_backbone_passes(name, args, expected):
    # in order: every no-grad (teacher/key) pass runs before the passes that keep a graph,
    # so its activations are not held alongside theirs (lower peak memory, faster on CPU)
    assert _passes(name, **args) == expected


def test_bench_runs_and_reports_the_pass_ceiling(capsys):
    result = main(["--method", "mocov2", "--arch", "resnet18", "--stem", "cifar", "--size", "32",
                   "--batch", "4", "--steps", "1", "--warmup", "0", "--device", "cpu",
                   "method.queue_size=8", "method.hidden_dim=32", "method.dim=16", "method.bn_splits=2"])
    assert result["passes"] == ["fwd 32px", "fwd+bwd 32px"]
    assert 0 < result["ratio"] < float("inf") and 0 < result["ratio_to_bare_fwd_bwd"] < float("inf")
    assert "ceiling" in capsys.readouterr().out


def test_bench_flops_count_the_whole_step():
    """A MoCo v2 step is one key forward plus one query forward and backward (about 2x the
    forward, a little less: the image needs no gradient): about 4 backbone forwards when the
    heads are tiny. Counted apart, on the bare backbone, so a count that missed the backward
    (about 2) or the key pass (about 3) would fail."""
    from torch.utils.flop_counter import FlopCounterMode

    from pretrain.models.resnet import build_backbone

    batch = 4
    result = main(["--method", "mocov2", "--baseline", "mocov2", "--arch", "resnet18", "--stem", "cifar",
                   "--size", "32", "--batch", str(batch), "--steps", "1", "--rounds", "1", "--warmup", "0",
                   "--device", "cpu", "--flops", "method.queue_size=8", "method.hidden_dim=32", "method.dim=16",
                   "method.bn_splits=2"])
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        build_backbone("resnet18", stem="cifar")(torch.randn(batch, 3, 32, 32))
    forward = counter.get_total_flops() / 1e9
    assert 3.95 * forward <= result["step_gflops"] <= 4.05 * forward
    assert result["flops_vs_baseline"] == pytest.approx(1.0, rel=1e-4)
