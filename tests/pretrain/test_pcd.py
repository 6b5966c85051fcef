"""PCD: SpatialAdaptor, CW-ReLU, the pixel-wise loss against a reference, the frozen teacher, teacher
importers (official MoCo v3 layout, the suite's checkpoint.pth), engine step/resume, configs."""
import csv
import math

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from evaluation.published import load_published
from pretrain import checkpoint as ckpt
from pretrain import make_configs
from pretrain.config import CONFIG_DIR, load_config
from pretrain.engine import build_method, train
from pretrain.losses import pixel_info_nce
from pretrain.methods.pcd import PCD, CWReLU, PixelAttention, SpatialAdaptor, load_teacher
from pretrain.methods.common import mlp
from pretrain.models.resnet import build_backbone


def _mocov3_head(in_dim=512, hidden=64, dim=16, seed=0):
    """MoCo v3's projector FC-BN-ReLU-FC-BN(affine=False), no biases, with non-trivial BN state."""
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, dim, bias=False), nn.BatchNorm1d(dim, affine=False))
    for bn in (head[1], head[4]):
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.num_batches_tracked.fill_(5)
    head[1].weight.data.uniform_(0.5, 1.5)
    head[1].bias.data.normal_()
    return head.eval()


# ----------------------------------------------------------------------------- SpatialAdaptor, CW-ReLU
def test_spatial_adaptor_equals_the_head_on_pooled_input():
    """GAP(A(t)) = head(GAP(t)) (Eq. 7) with the last BN dropped on both sides; with plain ReLU
    (Table 3 (d)) the identity fails, which is why CW-ReLU exists."""
    head = _mocov3_head(in_dim=32, hidden=48, dim=8)
    t = torch.randn(4, 32, 5, 6) + 0.3
    expected = head[:-1](t.mean(dim=(2, 3)))
    adaptor = SpatialAdaptor(head).eval()
    assert [type(m) for m in adaptor] == [nn.Conv2d, nn.BatchNorm2d, CWReLU, nn.Conv2d]
    assert torch.allclose(adaptor(t).mean(dim=(2, 3)), expected, atol=1e-5)
    plain = SpatialAdaptor(head, relu="relu").eval()
    assert (plain(t).mean(dim=(2, 3)) - expected).abs().max() > 1e-2
    kept = SpatialAdaptor(head, drop_last_bn=False).eval()
    assert torch.allclose(kept(t).mean(dim=(2, 3)), head(t.mean(dim=(2, 3))), atol=1e-5)


def test_cw_relu_masks_whole_channels_by_their_spatial_mean():
    x = torch.tensor([[[[3.0, -1.0], [-1.0, -0.5]],     # mean 0.125 > 0: kept, negatives included
                       [[2.0, -3.0], [-1.0, 1.0]],      # mean -0.25: zeroed, positives included
                       [[1.0, -1.0], [0.5, -0.5]]]])    # mean 0: zeroed (ReLU(0) = 0)
    y = CWReLU()(x)
    assert torch.equal(y[0, 0], x[0, 0])
    assert torch.equal(y[0, 1], torch.zeros(2, 2)) and torch.equal(y[0, 2], torch.zeros(2, 2))
    assert torch.allclose(y.mean(dim=(2, 3)), torch.relu(x.mean(dim=(2, 3))))


# ----------------------------------------------------------------------------------------- the loss
def reference_pixel_loss(s, t, queue, tau):
    """Eq. 3-4 written out pixel by pixel in float64."""
    s, t, queue = (x.detach().double().numpy() for x in (s, t, queue))
    n, c, h, w = s.shape
    total = 0.0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                si = s[b, :, i, j] / np.linalg.norm(s[b, :, i, j])
                ti = t[b, :, i, j] / np.linalg.norm(t[b, :, i, j])
                pos = float(si @ ti) / tau
                negs = queue @ si / tau
                total += -(pos - math.log(math.exp(pos) + np.exp(negs).sum()))
    return total / (n * h * w)


def _unit(g, *shape):
    return nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_pixel_loss_matches_reference():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 8, 4, 5, generator=g), torch.randn(3, 8, 4, 5, generator=g)
    queue = _unit(g, 50, 8)
    for tau in (0.2, 0.07):
        assert pixel_info_nce(s, t, queue, tau).item() == pytest.approx(reference_pixel_loss(s, t, queue, tau),
                                                                        rel=1e-5)


def test_pixel_loss_gradient_flows_to_the_student_only():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(2, 8, 3, 3, generator=g, requires_grad=True)
    t = torch.randn(2, 8, 3, 3, generator=g, requires_grad=True)
    pixel_info_nce(s, t, _unit(g, 20, 8), 0.2).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None


def _naive_pixel_loss(s, t, queue, tau):
    """The same loss without the fp32 guard: under autocast its matmul runs in bf16."""
    c = s.shape[1]
    s = nn.functional.normalize(s, dim=1).permute(0, 2, 3, 1).reshape(-1, c)
    t = nn.functional.normalize(t, dim=1).permute(0, 2, 3, 1).reshape(-1, c)
    logits = torch.cat([(s * t).sum(1, keepdim=True), s @ queue.t()], 1) / tau
    return nn.functional.cross_entropy(logits, torch.zeros(len(s), dtype=torch.long))


def test_pixel_loss_under_autocast_equals_fp32():
    """The logits are computed in fp32 with autocast off: bf16 autocast outside changes nothing
    (while the unguarded computation moves by more than the tolerance)."""
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(4, 32, 3, 3, generator=g), torch.randn(4, 32, 3, 3, generator=g)
    queue = _unit(g, 256, 32)
    fp32 = pixel_info_nce(s, t, queue, 0.2)
    assert fp32.item() == pytest.approx(_naive_pixel_loss(s, t, queue, 0.2).item(), abs=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = pixel_info_nce(s, t, queue, 0.2)
        naive = _naive_pixel_loss(s, t, queue, 0.2)
    assert mixed.dtype == torch.float32
    assert abs(mixed.item() - fp32.item()) < 1e-5
    assert abs(naive.item() - fp32.item()) > 1e-5


def test_teacher_map_of_another_size_is_resized_bilinearly():
    model = _tiny_pcd(queue_size=32)
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(2, 16, 4, 4, generator=g), torch.randn(2, 16, 2, 2, generator=g)
    negatives = _unit(g, 32, 16)
    resized = nn.functional.interpolate(t, size=(4, 4), mode="bilinear", align_corners=False)
    assert model.distill(s, t, negatives).item() == pytest.approx(pixel_info_nce(s, resized, negatives, 0.2).item())


def test_image_level_variant_is_infonce_of_pooled_maps():
    from pretrain.losses import info_nce

    model = _tiny_pcd(queue_size=32, level="image")
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(2, 16, 3, 3, generator=g), torch.randn(2, 16, 3, 3, generator=g)
    negatives = _unit(g, 32, 16)
    q, k = (nn.functional.normalize(x.mean(dim=(2, 3)), dim=1) for x in (s, t))
    assert model.distill(s, t, negatives).item() == pytest.approx(info_nce(q, k, negatives, 0.2).item(), rel=1e-5)


# ------------------------------------------------------------------------------- the method
def _tiny_pcd(**kw):
    torch.manual_seed(0)
    teacher = build_backbone("resnet18")
    kw.setdefault("queue_size", 64)
    return PCD("resnet18", "imagenet", teacher, _mocov3_head(512, 32, 16), hidden_dim=32,
               mhsa={"heads": 2, "head_dim": 8}, **kw)


def test_teacher_is_frozen_and_stays_in_eval_mode():
    model = _tiny_pcd()
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    model.train()
    assert not any(m.training for m in model.teacher.modules()) and model.encoder.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        loss, _ = model([torch.randn(4, 3, 64, 64, generator=g) for _ in model.views])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is None for p in model.teacher.parameters())
    after = model.teacher.state_dict()
    for key, value in before.items():  # weights and BN statistics (running mean/var, count) unchanged
        assert torch.equal(after[key], value), key
    assert model.encoder.bn1.num_batches_tracked.item() == 4  # the student's BN does train


def test_symmetric_same_view_loss_and_queue_of_pooled_teacher_maps():
    model = _tiny_pcd().train()
    g = torch.Generator().manual_seed(5)
    views = [torch.randn(4, 3, 64, 64, generator=g) for _ in range(2)]
    queue = model.queue().clone()
    loss, _ = model(views)
    with torch.no_grad():
        t = [model.teacher(v) for v in views]
    model.train()
    s = [model.student(v) for v in views]  # BN in train mode again: same batch statistics
    expected = 0.5 * (pixel_info_nce(s[0], t[0], queue, 0.2) + pixel_info_nce(s[1], t[1], queue, 0.2))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    pushed = nn.functional.normalize(t[0].mean(dim=(2, 3)), dim=1)  # view 1's pooled teacher map
    assert torch.allclose(model.queue.embeddings[:4], pushed, atol=1e-6)
    assert torch.equal(model.queue.embeddings[4:], queue[4:]) and model.queue.ptr.item() == 4


def test_ablation_switches_build_the_described_networks():
    assert isinstance(_tiny_pcd().attention, PixelAttention)
    a = _tiny_pcd(adaptor="none")
    assert isinstance(a.teacher.head, nn.Identity) and a.queue.embeddings.shape[1] == 512
    d = _tiny_pcd(adaptor="relu")
    assert any(type(m) is nn.ReLU for m in d.teacher.head) and not any(isinstance(m, CWReLU) for m in d.teacher.head)
    c = _tiny_pcd(adaptor="none", attention="none", student_relu=True)
    assert isinstance(c.attention, nn.Identity) and isinstance(c.out_relu, nn.ReLU)
    assert len(_tiny_pcd(symmetric=False).views) == 1
    with pytest.raises(ValueError, match="method.adaptor"):
        _tiny_pcd(adaptor="gelu")


def test_extra_prediction_head_has_about_the_mhsa_parameters():
    """Table 4 "extra pred.": a head of roughly MHSA's size (256-d, 8 x 64) -- hidden 1024."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    mhsa, pred = PixelAttention(256), mlp(256, 1024, 256, True, spatial=True)
    assert abs(count(pred) / count(mhsa) - 1) < 0.05


def test_mhsa_is_attention_over_pixels_without_positions():
    torch.manual_seed(0)
    att = PixelAttention(16, heads=2, head_dim=8).eval()
    x = torch.randn(2, 16, 3, 4)
    perm = torch.randperm(12)
    shuffled = x.flatten(2)[:, :, perm].reshape(2, 16, 3, 4)  # permuting pixels permutes the output
    assert torch.allclose(att(shuffled).flatten(2), att(x).flatten(2)[:, :, perm], atol=1e-5)
    mha = nn.MultiheadAttention(16, 2, batch_first=True, kdim=16, vdim=16)  # same maths when head_dim = C/heads
    with torch.no_grad():
        mha.in_proj_weight.copy_(att.qkv.weight)
        mha.in_proj_bias.copy_(att.qkv.bias)
        mha.out_proj.weight.copy_(att.proj.weight)
        mha.out_proj.bias.copy_(att.proj.bias)
    tokens = x.flatten(2).transpose(1, 2)
    assert torch.allclose(mha(tokens, tokens, tokens, need_weights=False)[0],
                          att(x).flatten(2).transpose(1, 2), atol=1e-5)


# --------------------------------------------------------------------------------- teacher loading
def _mocov3_checkpoint():
    """A checkpoint in the official MoCo v3 layout (main_moco.py), ResNet-18 for speed."""
    def encoder(seed):
        torch.manual_seed(seed)
        net = resnet18()
        state = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
        state.update({f"fc.{k}": v for k, v in _mocov3_head(512, 64, 16, seed).state_dict().items()})
        return state

    base, momentum = encoder(1), encoder(2)
    predictor = nn.Sequential(nn.Linear(16, 64, bias=False), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 16, bias=False))
    state = {**{f"module.base_encoder.{k}": v for k, v in base.items()},
             **{f"module.momentum_encoder.{k}": v for k, v in momentum.items()},
             **{f"module.predictor.{k}": v for k, v in predictor.state_dict().items()}}
    return {"epoch": 300, "arch": "resnet18", "state_dict": state, "optimizer": {}, "scaler": {}}, base, momentum


@pytest.mark.parametrize("branch", ["momentum", "online"])
def test_mocov3_teacher_loads_the_chosen_encoder_and_its_projector(tmp_path, branch):
    obj, base, momentum = _mocov3_checkpoint()
    torch.save(obj, tmp_path / "moco_v3.pth.tar")
    backbone, head = load_teacher({"checkpoint": str(tmp_path / "moco_v3.pth.tar"), "branch": branch,
                                   "arch": "resnet18", "hidden_dim": 64, "dim": 16})
    expected = momentum if branch == "momentum" else base
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear, nn.BatchNorm1d]
    assert head[0].bias is None and not head[4].affine
    for key, value in head.state_dict().items():
        assert torch.equal(value, expected[f"fc.{key}"]), key
    model = PCD("resnet18", "imagenet", backbone, head, queue_size=32)
    assert isinstance(model.teacher.head[-1], nn.Conv2d)  # the affine-free BN dropped
    assert torch.equal(model.teacher.head[0].weight[:, :, 0, 0], expected["fc.0.weight"])
    assert model.projector[0][0].in_channels == 512 and model.projector[0][0].out_channels == 64


def _table5_teacher(layout):
    """Checkpoints in the layouts of the Table 5 teachers (ResNet-18 and small heads for speed)."""
    torch.manual_seed(3)
    bb = {k: v for k, v in resnet18().state_dict().items() if not k.startswith("fc.")}
    head = mlp(512, 32, 8, True).state_dict()  # FC-BN-ReLU-FC with biases (SwAV's, BYOL's first layer)
    prefixed = lambda p, d: {p + k: v for k, v in d.items()}  # noqa: E731
    noise = {k: torch.randn_like(v.float()) for k, v in bb.items()}
    if layout == "swav":
        return {**prefixed("module.", bb), **prefixed("module.projection_head.", head),
                "module.prototypes.weight": torch.randn(30, 8)}, bb, head, "online"
    if layout == "barlow_twins":
        return {"epoch": 1000, "optimizer": {}, "model": {
            **prefixed("module.backbone.", bb), **prefixed("module.projector.", head),
            "module.bn.running_mean": torch.zeros(8), "module.bn.running_var": torch.ones(8)}}, bb, head, "online"
    return {"model": {**prefixed("module.target_encoder.", bb), **prefixed("module.target_encoder.fc.", head),
                      **prefixed("module.online_encoder.", noise)}}, bb, head, "momentum"


@pytest.mark.parametrize("layout", ["swav", "barlow_twins", "byol_pcd"])
def test_table5_teacher_layouts_load_backbone_and_head(tmp_path, layout):
    obj, bb, head, branch = _table5_teacher(layout)
    torch.save(obj, tmp_path / "teacher.pth")
    backbone, loaded = load_teacher({"checkpoint": str(tmp_path / "teacher.pth"), "branch": branch, "arch": "resnet18"})
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, bb[key]), key
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, head[key]), key
    if branch == "online":
        with pytest.raises(ckpt.CheckpointError, match=f"{layout}: no 'momentum' teacher branch"):
            load_teacher({"checkpoint": str(tmp_path / "teacher.pth")})


def test_teacher_of_the_wrong_arch_is_a_clear_error(tmp_path):
    obj, _, _ = _mocov3_checkpoint()
    torch.save(obj, tmp_path / "moco_v3.pth.tar")
    with pytest.raises(ckpt.CheckpointError, match=r"moco_v3.pth.tar \(moco_v3, momentum branch\) holds a resnet18 "
                                                    r"backbone, but method.teacher.arch is 'resnet50'"):
        load_teacher({"checkpoint": str(tmp_path / "moco_v3.pth.tar"), "arch": "resnet50"})
    with pytest.raises(ckpt.CheckpointError, match="projection head has dim 16, but method.teacher.dim is 256"):
        load_teacher({"checkpoint": str(tmp_path / "moco_v3.pth.tar"), "dim": 256})


def test_teacher_without_a_head_is_refused_with_the_reason(tmp_path):
    ckpt.save_backbone(tmp_path / "backbone.pth", build_backbone("resnet18"), method="mocov2")
    with pytest.raises(ckpt.CheckpointError, match="no projection head.*checkpoint.pth"):
        load_teacher({"checkpoint": str(tmp_path / "backbone.pth")})
    torch.save(resnet18().state_dict(), tmp_path / "torchvision.pth")
    with pytest.raises(ckpt.CheckpointError, match="no teacher importer fits"):
        load_teacher({"checkpoint": str(tmp_path / "torchvision.pth")})


# ------------------------------------------------------------------------------ engine + configs
def _smoke(generated, out_dir, config="mocov2_smoke.yaml", *extra):
    return load_config(CONFIG_DIR / config, [
        f"data.root={generated['imagefolder']}", f"train.out_dir={out_dir}", "monitor=null",
        "optim.batch_size=16", "optim.max_steps=4", "method.queue_size=32", "train.checkpoint_every=2",
        "train.quiet=true", "train.deterministic=true", "train.tensorboard=false", *extra])


def _losses(run_dir):
    with open(run_dir / "log.csv") as f:
        return [(row["step"], row["loss"]) for row in csv.DictReader(f)]


def test_engine_distils_from_a_suite_teacher_and_resumes_exactly(generated, tmp_path, killed_run):
    train(_smoke(generated, tmp_path / "teacher", "mocov2_smoke.yaml", "optim.max_steps=2", "method.hidden_dim=32"))
    teacher_state = ckpt.load(tmp_path / "teacher" / "checkpoint.pth")["models"]["method"]
    pcd = lambda out: _smoke(generated, out, "pcd_smoke.yaml", "method.hidden_dim=32",  # noqa: E731
                             f"method.teacher.checkpoint={tmp_path / 'teacher' / 'checkpoint.pth'}")
    train(pcd(tmp_path / "a"))
    reference = _losses(tmp_path / "a")
    assert [s for s, _ in reference] == ["1", "2", "3", "4"]
    state = ckpt.load(tmp_path / "a" / "checkpoint.pth")["models"]["method"]
    for key, value in teacher_state.items():  # the teacher is the MoCo v2 key encoder + head, unchanged
        if key.startswith("encoder_k."):
            assert torch.equal(state["teacher.backbone." + key[len("encoder_k."):]], value), key
    assert torch.equal(state["teacher.head.0.weight"][:, :, 0, 0], teacher_state["head_k.0.weight"])
    payload = ckpt.read_backbone(tmp_path / "a" / "backbone.pth")
    assert payload["method"] == "pcd" and payload["arch"] == "resnet18_w16"  # what the harnesses key NormRescale on

    killed_run(pcd(tmp_path / "b"), 2)
    train(pcd(tmp_path / "b"), resume="auto")
    assert _losses(tmp_path / "b") == reference
    b = ckpt.load(tmp_path / "b" / "checkpoint.pth")["models"]["method"]
    for key in state:
        assert torch.equal(state[key], b[key]), key


KEYS = ("paper", "table", "method", "variant", "backbone", "pretrain_data", "epochs", "batch_size")


def _pcd_configs():
    return sorted((CONFIG_DIR / "pcd").glob("*.yaml"))


def test_pcd_configs_name_published_rows_and_cover_every_pretraining_row():
    published = load_published().fillna("").astype({k: str for k in KEYS})
    published = published[published.paper == "pcd"]
    covered = set()
    for path in _pcd_configs():
        config = load_config(path)
        assert config["scale"] == "full" and config["reproduces"], path
        for ref in config["reproduces"]:
            rows = published
            for key in KEYS:
                if key in ref or key == "variant":
                    rows = rows[rows[key].map(lambda v: v.removesuffix(".0")) == str(ref.get(key, ""))]
            assert len(rows) > 0, f"{path.name}: {ref} names no published row"
            covered.update(rows.index)
    students = published[~published.method.isin(["Teacher", "ImageNet Supervised", "supervised", "PixPro",
                                                 "CompRes", "DisCo", "BINGO"])]
    vit = students.variant.str.contains("ViT")  # the ViT-Base teacher rows are not implemented
    assert set(students[~vit].index) <= covered, students[~vit].loc[~students[~vit].index.isin(covered)]


@pytest.mark.parametrize("name", ["pcd/imagenet_r18", "pcd/imagenet_r18_variant_a", "pcd/imagenet_r18_extra_pred",
                                  "pcd/imagenet_mobilenet_v3_large", "pcd/imagenet_r18_asymmetric"])
def test_pcd_configs_build_their_method(name):
    config = load_config(CONFIG_DIR / f"{name}.yaml", [
        "method.teacher.checkpoint=null", "method.teacher.arch=resnet18", "method.queue_size=64"])
    model = build_method(config)
    assert model.backbone.arch == config["model"]["arch"]
    assert len(model.views) == (2 if config["method"].get("symmetric", True) else 1)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    loss, _ = model([x, x][:len(model.views)])
    assert math.isfinite(loss.item())


def test_generated_configs_are_current():
    assert make_configs.main(["--check"]) == 0, "run: python -m pretrain.make_configs"
