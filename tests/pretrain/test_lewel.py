"""LEWEL_M / LEWEL_B: alignment maps, channel grouping, losses against references written from
the paper's equations, fp32 under autocast, EMAN, the bench, the generated configs and the map
PNG. (In-batch negatives under 2-process DDP: test_distributed.py; exact resume: test_engine.py.)"""
import math
from pathlib import Path

import pytest
import torch

from pretrain import checkpoint as ckpt
from pretrain import engine
from pretrain.config import CONFIG_DIR, load_config
from pretrain.losses import aligned_info_nce, lewel_byol_loss, lewel_info_nce
from pretrain.methods.lewel import LEWEL, aggregate, alignment_maps


def _fixed(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_alignment_maps_are_distributions_over_space_for_every_group():
    heat = _fixed(3, 49, 16) * 5
    maps = alignment_maps(heat)
    assert maps.shape == heat.shape and maps.dtype == torch.float32
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum(dim=1), torch.ones(3, 16))
    # the heat-maps are L2-normalised over channels before the softmax: a per-position rescale
    # of the heat-maps does not change the maps
    torch.testing.assert_close(alignment_maps(heat * (torch.rand(3, 49, 1) + 0.1) * 10), maps)
    # reference: per map k, softmax over positions of W̃_k,s / ||W̃_*,s||
    ref = torch.empty_like(heat)
    for n in range(3):
        for k in range(16):
            logits = [float(heat[n, s, k] / heat[n, s].norm()) for s in range(49)]
            total = sum(math.exp(v) for v in logits)
            ref[n, :, k] = torch.tensor([math.exp(v) / total for v in logits])
    torch.testing.assert_close(maps, ref)


def test_grouped_aggregation_follows_eq2():
    n, channels, hw, d, h = 2, 12, 5, 8, 4
    features, maps = _fixed(n, channels, hw), alignment_maps(_fixed(n, hw, d, seed=1))
    y = aggregate(features, maps, h)
    assert y.shape == (n, d // h, channels)
    for b in range(n):
        for k in range(d // h):          # y_k = [W_{k*h + j} ⊗ F^(j)]_j (0-based)
            parts = [sum(maps[b, s, k * h + j] * features[b, j * channels // h:(j + 1) * channels // h, s]
                         for s in range(hw)) for j in range(h)]
            torch.testing.assert_close(y[b, k], torch.cat(parts))
    with pytest.raises(ValueError, match="groups"):
        aggregate(features, maps, 5)


@pytest.mark.parametrize("arch,width", [("resnet18", 512), ("resnet50", 2048)])
@pytest.mark.parametrize("base", ["moco", "byol"])
def test_shapes(arch, width, base):
    model = LEWEL(arch, base=base, dim=32, hidden_dim=16, groups=4, queue_size=8, bn="global")
    x = torch.randn(2, 3, 64, 64)
    z, z_aligned, maps = model.embed(x)
    assert model.encoder.num_features == width
    assert z.shape == (2, 32) and z_aligned.shape == (2, 8, 32) and maps.shape == (2, 4, 32)  # 64 px -> 2x2 C5
    torch.testing.assert_close(maps.sum(1), torch.ones(2, 32))
    model = LEWEL(arch, base=base, dim=32, hidden_dim=16, aligned_dim=8, groups=2, queue_size=8, bn="global")
    assert model.embed(x)[1].shape == (2, 16, 8)   # c != d (Fig. 3b)


def _ref_info_nce(q, pos, negs, tau):
    q = q / q.norm()
    sims = [float(q @ (v / v.norm())) / tau for v in [pos, *negs]]
    return -sims[0] + math.log(sum(math.exp(s) for s in sims))


def test_lewel_info_nce_matches_reference():
    n, m, kk, c, d, tau, beta, offset = 3, 6, 4, 5, 7, 0.2, 0.3, 3
    q, k = _fixed(n, d, seed=1), _fixed(n, d, seed=2)
    queue = torch.nn.functional.normalize(_fixed(9, d, seed=3), dim=1)
    qa, ka = _fixed(n, kk, c, seed=4), _fixed(m, kk, c, seed=5)
    global_ref = sum(_ref_info_nce(q[i], k[i], list(queue), tau) for i in range(n)) / n
    aligned_ref = sum(_ref_info_nce(qa[i, j], ka[offset + i, j], [ka[o, j] for o in range(m) if o != offset + i], tau)
                      for i in range(n) for j in range(kk)) / (n * kk)
    assert aligned_info_nce(qa, ka, tau, offset).item() == pytest.approx(aligned_ref, rel=1e-5)
    loss = lewel_info_nce(q, k, queue, qa, ka, tau, beta, offset)
    assert loss.item() == pytest.approx((1 - beta) * global_ref + beta * aligned_ref, rel=1e-5)


def test_lewel_byol_loss_matches_reference():
    n, kk, c, d, beta = 3, 4, 5, 6, 0.5
    p, z, pa, za = _fixed(n, d, seed=1), _fixed(n, d, seed=2), _fixed(n, kk, c, seed=3), _fixed(n, kk, c, seed=4)

    def mse(a, b):
        return float(((a / a.norm() - b / b.norm()) ** 2).sum())

    ref = ((1 - beta) * sum(mse(p[i], z[i]) for i in range(n)) / n
           + beta * sum(mse(pa[i, j], za[i, j]) for i in range(n) for j in range(kk)) / (n * kk))
    assert lewel_byol_loss(p, z, pa, za, beta).item() == pytest.approx(ref, rel=1e-5)


def test_losses_are_fp32_under_autocast():
    q, k, queue = _fixed(8, 16, seed=1), _fixed(8, 16, seed=2), _fixed(32, 16, seed=3)
    qa, ka = _fixed(8, 4, 16, seed=4), _fixed(8, 4, 16, seed=5)
    fp32 = lewel_info_nce(q, k, queue, qa, ka, 0.2, 0.5)
    fp32_b = lewel_byol_loss(q, k, qa, ka, 0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = lewel_info_nce(q, k, queue, qa, ka, 0.2, 0.5)
        mixed_b = lewel_byol_loss(q, k, qa, ka, 0.5)
    assert mixed.dtype == mixed_b.dtype == torch.float32
    assert abs(mixed.item() - fp32.item()) <= 1e-5 and abs(mixed_b.item() - fp32_b.item()) <= 1e-5


def test_ablation_switches():
    x = torch.randn(2, 3, 64, 64)
    uniform = LEWEL("resnet18", dim=16, hidden_dim=16, queue_size=8, bn="global", maps="uniform")
    _, _, maps = uniform.embed(x)
    torch.testing.assert_close(maps, torch.full_like(maps, 0.25))
    uncoupled = LEWEL("resnet18", dim=16, hidden_dim=16, queue_size=8, bn="global", coupled=False, extra_p=False)
    assert uncoupled.map_head is not None and uncoupled.aligned_projector is None
    assert hasattr(uncoupled, "target_map_head") and not hasattr(uncoupled, "target_aligned_projector")
    random_maps = LEWEL("resnet18", dim=16, hidden_dim=16, queue_size=8, bn="global", maps="random")
    random_maps.begin_step(0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(random_maps.embed(x)[2].sum(1), torch.ones(2, 16))
    # separate BN statistics for the pooled vector and the pixels give another global embedding
    joint = LEWEL("resnet18", dim=16, hidden_dim=16, queue_size=8, bn="global")
    separate = LEWEL("resnet18", dim=16, hidden_dim=16, queue_size=8, bn="global", projector_bn="separate")
    separate.load_state_dict(joint.state_dict())
    assert not torch.allclose(joint.embed(x)[0], separate.embed(x)[0])
    with pytest.raises(ValueError, match="maps"):
        LEWEL("resnet18", maps="gaussian")


def test_eman_target_runs_in_eval_mode_with_ema_statistics():
    model = LEWEL("resnet18", base="byol", dim=16, hidden_dim=16, bn="eman").train()
    assert model.encoder.training and not model.target_encoder.training and not model.target_projector.training
    online_bn, target_bn = model.encoder.bn1, model.target_encoder.bn1
    online_bn.running_mean.fill_(1.0)
    model.update_momentum(0.75)
    torch.testing.assert_close(target_bn.running_mean, torch.full_like(target_bn.running_mean, 0.25))


def test_visualize_reads_the_training_checkpoint(generated, tmp_path):
    from PIL import Image

    from pretrain.visualize_lewel import main as visualize

    config = load_config(CONFIG_DIR / "lewel_m_smoke.yaml", [
        f"data.root={generated['imagefolder']}", f"train.out_dir={tmp_path}", "monitor=null", "optim.batch_size=16",
        "optim.max_steps=1", "method.hidden_dim=32", "method.dim=16", "method.queue_size=64", "train.quiet=true"])
    backbone = engine.train(config)
    images = sorted(Path(generated["imagefolder"]).rglob("*.jpg"))[:2]
    out = visualize(["--ckpt", str(tmp_path / "checkpoint.pth"), "--images", *map(str, images), "--size", "96",
                     "--maps", "3", "--out", str(tmp_path / "maps.png")])
    assert Image.open(out).size == (96 * 4, 96 * 2)
    with pytest.raises(ckpt.CheckpointError, match="backbone.pth"):  # g is not in the exported backbone
        visualize(["--ckpt", str(backbone), "--images", str(images[0]), "--out", str(tmp_path / "x.png")])


@pytest.mark.parametrize("base,baseline,passes", [("moco", "mocov2", ["fwd 32px", "fwd+bwd 32px"]),
                                                 ("byol", "byol", ["fwd 32px"] * 2 + ["fwd+bwd 32px"] * 2)])
def test_bench_times_lewel_against_its_base(base, baseline, passes):
    from pretrain.bench import main

    result = main(["--method", "lewel", "--baseline", baseline, "--arch", "resnet18", "--stem", "cifar",
                   "--size", "32", "--batch", "8", "--steps", "1", "--rounds", "1", "--warmup", "0",
                   "--device", "cpu", "--flops", f"method.base={base}", "method.bn=global", "method.queue_size=8",
                   "method.hidden_dim=32", "method.dim=16"])
    assert result["passes"] == passes   # the aligned branch adds no backbone pass
    assert 0 < result["time_vs_baseline"] < float("inf")
    assert result["flops_vs_baseline"] > 1   # the heat-maps, aggregation and p add arithmetic


def test_generated_lewel_configs_build():
    """Every generated LEWEL config builds its method (R50); the ablation switches reach the model."""
    from pretrain.engine import build_method

    paths = sorted((CONFIG_DIR / "lewel").glob("*.yaml"))
    assert len(paths) >= 20
    for path in paths:
        config = load_config(path, ["method.queue_size=64"])
        model = build_method(config)
        assert model.backbone.arch == "resnet50" and len(model.views) == 2, path.name
        if config["method"]["name"] == "lewel":
            m = config["method"]
            assert model.groups == m["groups"] and model.beta == m["beta"] and model.maps == m["maps"], path.name
            assert (model.map_head is None) == m["coupled"], path.name
            assert model.eman == (m["bn"] == "eman") and model.shuffle_bn == (m["bn"] == "shuffle"), path.name
