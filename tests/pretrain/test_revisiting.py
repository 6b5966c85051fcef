"""Revisiting (MoCo v2 + multi-crop, constrained multi-crop, A+, kNN-MoCo): views, crop
constraint, AutoAugment ops, kNN mining and loss, aspect-preserving batches, engine resume."""
import csv
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pretrain import checkpoint as ckpt
from pretrain.config import CONFIG_DIR, load_config
from pretrain.data import augment as A
from pretrain.data.loading import UInt8Images, open_dataset
from pretrain.data.readers import DatasetError, ImageList
from pretrain.engine import build_method, train
from pretrain.losses import knn_nce, nearest_neighbours

VARIANTS = ("plain", "multicrop", "constrained", "aplus", "knn")


# --------------------------------------------------------------------------- constrained crops

def _overlap_fraction(boxes, anchor):
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return A.box_overlap(boxes, anchor) / area


@settings(max_examples=60, deadline=None)
@given(height=st.integers(24, 600), width=st.integers(24, 600), seed=st.integers(0, 2**31 - 1),
       min_overlap=st.sampled_from([0.2, 0.1, 0.5]))
def test_constrained_small_crops_overlap_the_anchor(height, width, seed, min_overlap):
    """Seed rule (redraw until it holds, else centred on the anchor): every small crop of
    scale (0.05, 0.14) has at least ``min_overlap`` of its area inside its anchor crop of
    scale (0.2, 1), for any image size; boxes stay inside the image."""
    g = torch.Generator().manual_seed(seed)
    n = 64
    sizes = torch.tensor([[height, width]] * n)
    anchor = A.sample_params(A.ViewSpec(size=160), n, height, width, g, "cpu").boxes
    spec = A.ViewSpec(size=96, scale=(0.05, 0.14), overlap_with=0, min_overlap=min_overlap)
    boxes = A.sample_params(spec, n, height, width, g, "cpu", sizes=sizes, anchor=anchor).boxes
    assert (_overlap_fraction(boxes, anchor) >= min_overlap - 1e-6).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert ((boxes[:, 2:] - boxes[:, :2]) > 0).all()


def test_the_constraint_binds_and_the_code_rule_is_weaker():
    """Without the constraint many small crops miss the anchor (so the property above can
    fail); the official code's rule (10%, 10 tries, unconstrained fallback) is between."""
    g = torch.Generator().manual_seed(0)
    n, h, w = 4000, 480, 640
    anchor = A.sample_params(A.ViewSpec(size=160), n, h, w, g, "cpu").boxes
    free = A.sample_params(A.ViewSpec(size=96, scale=(0.05, 0.14)), n, h, w, g, "cpu").boxes
    code = A.sample_params(A.ViewSpec(size=96, scale=(0.05, 0.14), overlap_with=0, min_overlap=0.1, overlap_tries=10,
                                      overlap_fallback="unconstrained"), n, h, w, g, "cpu", anchor=anchor).boxes
    assert (_overlap_fraction(free, anchor) < 0.2).float().mean() > 0.1
    code_fraction = _overlap_fraction(code, anchor)
    assert (code_fraction >= 0.1).float().mean() > 0.97


@pytest.mark.parametrize("fallback", ["centred", "unconstrained"])
def test_fallbacks_when_no_candidate_qualifies(fallback):
    """An anchor of 2x2 pixels at (10, 20) that no candidate can cover 90% of: "centred" puts
    the crop's centre on it (shifted into the image), "unconstrained" is a plain crop."""
    g = torch.Generator().manual_seed(0)
    n, h, w = 200, 100, 120
    anchor = torch.tensor([[10.0, 20.0, 12.0, 22.0]]).expand(n, 4)
    spec = A.ViewSpec(size=16, scale=(0.05, 0.14), overlap_with=0, min_overlap=0.9, overlap_fallback=fallback)
    boxes = A.sample_params(spec, n, h, w, g, "cpu", anchor=anchor).boxes
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
    contains = (boxes[:, 0] <= 10) & (boxes[:, 1] <= 20) & (boxes[:, 2] >= 12) & (boxes[:, 3] >= 22)
    if fallback == "centred":
        assert contains.all()
    else:
        assert contains.float().mean() < 0.5


def test_constrained_views_follow_the_anchor_view_in_make_view_set():
    images = torch.randint(0, 256, (8, 3, 96, 96), dtype=torch.uint8)
    specs = [A.ViewSpec(size=32), A.ViewSpec(size=32), A.ViewSpec(size=16, scale=(0.05, 0.14), overlap_with=1)]
    views = A.make_view_set(images, specs, torch.Generator().manual_seed(0))
    assert (_overlap_fraction(views[2][1].boxes, views[1][1].boxes) >= 0.2).all()
    with pytest.raises(ValueError, match="constrained by view 2"):
        A.make_view_set(images, [A.ViewSpec(size=16, overlap_with=2)], torch.Generator())


# --------------------------------------------------------------------------- aspect-preserving batches

def test_keep_aspect_batch_crops_equal_crops_of_the_unpadded_image():
    """A view drawn inside the (height, width) of an aspect-kept, edge-padded image equals the
    same box cut from the unpadded image, border samples included."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))
    reader = [(image, 3)]
    tensor, label, size = UInt8Images(reader, 50, keep_aspect=True)[0]
    assert tensor.shape == (3, 50, 50) and label == 3 and size.tolist() == [30, 50]
    unpadded = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    assert torch.equal(tensor[:, :30], unpadded)
    spec = A.ViewSpec(size=24, jitter_p=0.0, gray_p=0.0, blur_p=0.0, flip_p=0.0)
    params = A.sample_params(spec, 16, 50, 50, torch.Generator().manual_seed(1), "cpu",
                             sizes=size.expand(16, 2))
    assert (params.boxes[:, 3] <= 30).all() and (params.boxes[:, 2] <= 50).all()
    padded_views = A.apply_view(tensor.expand(16, -1, -1, -1), params, spec)
    plain_views = A.apply_view(unpadded.expand(16, -1, -1, -1), params, spec)
    torch.testing.assert_close(padded_views, plain_views)


def test_keep_aspect_resizes_the_longer_side():
    image = Image.new("RGB", (640, 480), (10, 20, 30))
    tensor, _, size = UInt8Images([(image, 0)], 128, keep_aspect=True)[0]
    assert tensor.shape == (3, 128, 128) and size.tolist() == [96, 128]


def test_image_list_reader(tmp_path):
    for name in ("a/1.jpg", "a/b/2.png", "3.jpg"):
        (tmp_path / "train" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 6)).save(tmp_path / "train" / name)
    (tmp_path / "train" / "notes.txt").write_text("x")
    everything = ImageList(tmp_path, split="train")
    assert [n for n, _ in everything.samples] == ["train/3.jpg", "train/a/1.jpg", "train/a/b/2.png"]
    assert everything[0][0].size == (8, 6) and everything[0][1] == 0
    listing = tmp_path / "subset.txt"
    listing.write_text("train/a/b/2.png\ntrain/3.jpg\n")
    assert [n for n, _ in ImageList(tmp_path, list=listing).samples] == ["train/a/b/2.png", "train/3.jpg"]
    listing.write_text("train/missing.jpg\n")
    with pytest.raises(DatasetError, match="missing.jpg"):
        ImageList(tmp_path, list=listing)
    assert len(open_dataset("imagelist", tmp_path, "train")) == 3


def test_coco_kind_reads_the_image_folder(generated):
    coco = open_dataset("coco", generated["coco"], "train2017")
    assert len(coco) == len(list((generated["coco"] / "train2017").glob("*.jpg"))) > 0


# --------------------------------------------------------------------------- AutoAugment (A+)

def test_policy_table_is_torchvisions_imagenet_policy():
    from torchvision.transforms import AutoAugment, AutoAugmentPolicy

    reference = AutoAugment(AutoAugmentPolicy.IMAGENET).policies
    names = {"Posterize": "posterize", "Rotate": "rotate", "Solarize": "solarize", "AutoContrast": "autocontrast",
             "Equalize": "equalize", "Color": "color", "Contrast": "contrast", "Invert": "invert",
             "Sharpness": "sharpness", "ShearX": "shear_x"}
    assert [tuple((names[o], p, b) for o, p, b in sub) for sub in reference] == list(A.AUTOAUGMENT_IMAGENET)
    space = AutoAugment()._augmentation_space(10, (32, 32))
    for tv, ours in names.items():
        magnitudes, _ = space[tv]
        if magnitudes.ndim:
            for b in range(10):
                assert A._autoaugment_magnitude(ours, b) == pytest.approx(float(magnitudes[b]), abs=1e-4), (ours, b)


@pytest.fixture(scope="module")
def smooth_images():
    g = torch.Generator().manual_seed(0)
    low = torch.rand(4, 3, 5, 6, generator=g)
    x = F.interpolate(low, size=(36, 44), mode="bilinear", align_corners=False)
    return torch.round(x * 200 + 20).to(torch.uint8)


@pytest.mark.parametrize("name", A.AUTOAUGMENT_OPS)
def test_each_autoaugment_op_matches_torchvision_on_pil(smooth_images, name):
    """Our batched op against torchvision's own AutoAugment step (``_apply_op`` on a PIL
    image, nearest, no fill), at several magnitudes and both signs."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.autoaugment import _apply_op

    tv_name = {"autocontrast": "AutoContrast", "shear_x": "ShearX"}.get(name, name.capitalize())
    for b in (1, 4, 7, 9):
        for sign in (1, -1):
            m = sign * A._autoaugment_magnitude(name, b) if name in A._AA_SIGNED else A._autoaugment_magnitude(name, b)
            n = smooth_images.shape[0]
            draws = torch.tensor([[A.AUTOAUGMENT_OPS.index(name), m, 1.0], [0.0, 0.0, 0.0]]).expand(n, 2, 3)
            out = A.auto_augment(smooth_images.float() / 255, draws)
            out8 = torch.round(out * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for i in range(n):
                pil = Image.fromarray(smooth_images[i].permute(1, 2, 0).numpy())
                ref = np.asarray(_apply_op(pil, tv_name, m, InterpolationMode.NEAREST, None))
                diff = np.abs(out8[i].astype(int) - ref.astype(int))
                assert (diff <= 2).mean() >= 0.99, (name, b, sign, i, diff.max(), (diff > 2).mean())


def test_autoaugment_draws_and_aplus_views():
    g = torch.Generator().manual_seed(0)
    draws = A.sample_autoaugment(20000, g, "cpu")
    policy_probs = torch.tensor([[p for _, p, _ in sub] for sub in A.AUTOAUGMENT_IMAGENET])
    assert abs(draws[..., 2].mean().item() - policy_probs.mean().item()) < 0.01
    rot = draws[..., 0] == A.AUTOAUGMENT_OPS.index("rotate")
    assert (draws[..., 1][rot] < 0).float().mean().item() == pytest.approx(0.5, abs=0.03)
    spec = A.ViewSpec(size=16, autoaugment_p=0.5)
    p = A.sample_params(spec, 4000, 32, 32, torch.Generator().manual_seed(1), "cpu")
    chosen = p.autoaug[..., 2].sum(1) > 0
    assert 0.4 < chosen.float().mean() < 0.5  # 0.5 x P(some step applied)
    assert not (p.jitter_on & chosen).any() and not (p.gray & chosen).any()
    assert not ((p.blur_sigma > 0) & chosen).any()
    q = A.sample_params(A.ViewSpec(size=16), 4000, 32, 32, torch.Generator().manual_seed(1), "cpu")
    torch.testing.assert_close(p.boxes, q.boxes)  # A+ draws come last


# --------------------------------------------------------------------------- kNN mining and loss

def test_nearest_neighbours_match_brute_force():
    g = torch.Generator().manual_seed(0)
    features, bank = torch.randn(12, 16, generator=g), torch.randn(50, 16, generator=g)
    got = nearest_neighbours(features, bank, 7)
    for i in range(12):
        sims = [float(features[i] @ bank[j] / (features[i].norm() * bank[j].norm())) for j in range(50)]
        expected = sorted(range(50), key=lambda j: -sims[j])[:7]
        assert got[i].tolist() == expected


def test_knn_loss_matches_a_reference_written_out():
    g = torch.Generator().manual_seed(1)
    q = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(30, 8, generator=g), dim=1)
    idx = torch.stack([torch.randperm(30, generator=g)[:4] for _ in range(6)])
    tau = 0.2
    total = 0.0
    for i in range(6):
        logits = [math.exp(float(q[i] @ queue[j]) / tau) for j in range(30)]
        total += sum(-math.log(logits[j] / sum(logits)) for j in idx[i].tolist()) / 4
    assert float(knn_nce(q, queue, idx, tau)) == pytest.approx(total / 6, rel=1e-5)


def test_knn_loss_and_mining_are_fp32_under_autocast():
    g = torch.Generator().manual_seed(2)
    q = F.normalize(torch.randn(40, 64, generator=g), dim=1)
    queue = F.normalize(torch.randn(500, 64, generator=g), dim=1)
    feats = torch.randn(40, 128, generator=g)
    bank = torch.randn(500, 128, generator=g)
    idx = nearest_neighbours(feats, bank, 20)
    reference = knn_nce(q, queue, idx, 0.07)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(nearest_neighbours(feats, bank, 20), idx)
        low = knn_nce(q.bfloat16(), queue.bfloat16(), idx, 0.07)
    assert low.dtype == torch.float32
    # bf16 inputs are rounded before the loss; the loss itself runs in fp32
    assert float(low) == pytest.approx(float(knn_nce(q.bfloat16().float(), queue.bfloat16().float(), idx, 0.07)), abs=1e-5)
    assert float(low) == pytest.approx(float(reference), rel=1e-2)


# --------------------------------------------------------------------------- the method

def _small_config(variant, **overrides):
    items = [f"{k}={v}" for k, v in {"method.queue_size": 64, "method.hidden_dim": 64, **overrides}.items()]
    return load_config(CONFIG_DIR / f"revisiting_{variant}_smoke.yaml", items)


@pytest.mark.parametrize("variant", VARIANTS)
def test_views_shapes_counts_and_small_crops_stay_out_of_the_key_path(variant):
    config = _small_config(variant, **{"method.knn.start_epochs": 0} if variant == "knn" else {})
    method = build_method(config)
    n_small = config["method"]["small_crops"]
    assert len(method.views) == 2 + n_small
    assert [v.size for v in method.views] == [32, 32] + [16] * n_small
    assert all(v.scale == (0.05, 0.14) for v in method.views[2:])
    assert all(v.overlap_with == (1 if config["method"].get("constrained") else -1) for v in method.views[2:])
    images = torch.randint(0, 256, (8, 3, 128, 128), dtype=torch.uint8)
    sizes = torch.tensor([[128, 96]] * 4 + [[80, 128]] * 4)
    g = torch.Generator().manual_seed(0)
    views = [v for v, _ in A.make_view_set(images, method.views, g, sizes=sizes)]
    assert [tuple(v.shape) for v in views] == [(8, 3, 32, 32)] * 2 + [(8, 3, 16, 16)] * n_small
    seen = {"q": [], "k": []}
    method.moco.encoder_q.register_forward_pre_hook(lambda m, i: seen["q"].append(tuple(i[0].shape)))
    method.moco.encoder_k.register_forward_pre_hook(lambda m, i: seen["k"].append(tuple(i[0].shape)))
    method.begin_step(10.0, g)
    loss, logs = method(views)
    loss.backward()
    assert seen["k"] == [(8, 3, 32, 32)]                       # only the anchor
    assert seen["q"] == [(8, 3, 32, 32)] + ([(8 * n_small, 3, 16, 16)] if n_small else [])  # small crops: one pass
    assert int(method.moco.queue.ptr) == 8                     # only the anchors' keys enqueued
    if variant == "knn":
        assert int(method.queue_g.ptr) == 8 and logs["knn"] > 0
    else:
        assert logs["knn"] == 0


def test_knn_loss_starts_after_its_epochs_and_positives_sum_scales():
    config = _small_config("knn")
    method = build_method(config)
    images = torch.randint(0, 256, (8, 3, 96, 96), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    views = [v for v, _ in A.make_view_set(images, method.views, g)]
    method.begin_step(4.9, g)
    _, early = method(views)
    method.begin_step(5.0, g)
    _, late = method(views)
    assert early["knn"] == 0 and late["knn"] > 0
    summed = build_method(_small_config("multicrop", **{"method.positives": "sum"}))
    mean = build_method(_small_config("multicrop"))
    mean.load_state_dict(summed.state_dict())
    summed.eval(), mean.eval()  # no BN statistics updates between the two calls
    views = [v for v, _ in A.make_view_set(images, mean.views, torch.Generator().manual_seed(0))]
    assert summed(views)[1]["inst"] == pytest.approx(5 * mean(views)[1]["inst"], rel=1e-5)


# --------------------------------------------------------------------------- engine

def _engine_config(generated, out_dir):
    return load_config(CONFIG_DIR / "revisiting_knn_smoke.yaml", [
        f"data.root={generated['coco']}", "data.kind=coco", "data.split=train2017", "data.keep_aspect=true",
        f"train.out_dir={out_dir}", "monitor=null", "optim.batch_size=8",
        "optim.max_steps=6", "method.queue_size=32", "method.hidden_dim=32", "method.knn.k=5",
        "method.knn.start_epochs=0.5", "data.image_size=64", "views.default.size=32", "views.small.size=16",
        "train.checkpoint_every=3", "train.quiet=true", "train.deterministic=true"])


def test_multicrop_knn_run_resumes_exactly(generated, tmp_path, killed_run):
    train(_engine_config(generated, tmp_path / "a"))
    with open(tmp_path / "a" / "log.csv") as f:
        reference = [(r["step"], r["loss"], r["knn"]) for r in csv.DictReader(f)]
    assert [s for s, _, _ in reference] == [str(i) for i in range(1, 7)]
    assert float(reference[0][2]) == 0 and float(reference[-1][2]) > 0  # kNN loss switched on
    killed_run(_engine_config(generated, tmp_path / "b"), 3)
    train(_engine_config(generated, tmp_path / "b"), resume="auto")
    with open(tmp_path / "b" / "log.csv") as f:
        assert [(r["step"], r["loss"], r["knn"]) for r in csv.DictReader(f)] == reference
    a = ckpt.load(tmp_path / "a" / "checkpoint.pth")["models"]["method"]
    b = ckpt.load(tmp_path / "b" / "checkpoint.pth")["models"]["method"]
    assert "queue_g.embeddings" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------- generated configs

def _published_pretraining_rows():
    from evaluation.published import load_published

    published = load_published().fillna("")
    rv = published[published.paper == "revisiting"]
    # rows of models the paper pretrains (not random init, not other methods' numbers)
    keep = rv.method.str.startswith("MoCo") | (rv.method == "kNN-MoCo")
    return rv[keep]


def test_every_revisiting_pretraining_row_has_exactly_one_config():
    configs = [load_config(p) for p in sorted((CONFIG_DIR / "revisiting").glob("*.yaml"))]
    rows = _published_pretraining_rows()
    lost = ("+MC +CC (Sec. 4.1)",)  # Table 4's MC+CC row: numbers lost in the seed (no row to name)
    assert len(rows) > 100
    for _, r in rows.drop_duplicates(["table", "method", "variant", "pretrain_data"]).iterrows():
        matches = [c for c in configs for ref in c["reproduces"]
                   if (ref["table"], ref["method"], ref.get("variant", ""), ref.get("pretrain_data", r.pretrain_data))
                   == (r.table, r.method, r.variant, r.pretrain_data)]
        assert len(matches) == 1 or r.variant in lost, (r.table, r.method, r.variant, r.pretrain_data, len(matches))
        c = matches[0]
        assert c["method"]["name"] == "revisiting" and c["model"]["arch"] == "resnet50"
        assert c["data"]["keep_aspect"] and c["optim"]["batch_size"] == 256
        if r.epochs:
            assert c["optim"]["epochs"] == int(float(r.epochs)), (r.table, r.variant)
        label = f"{r.method} {r.variant}"
        baseline = r.variant.startswith("baseline")  # "baseline (no MC/CC/m↓/A+/NN)"
        multi = not baseline and any(t in label for t in ("MC", "CC", "kNN", "NN", "lambda", "multi-crop", "aug="))
        assert (c["method"]["small_crops"] == 4) == multi, label
        has_knn = not baseline and ("NN" in r.variant or "kNN" in r.method and r.variant != "lambda=0.0")
        assert bool(c["method"].get("knn")) == has_knn, label


@pytest.mark.parametrize("name", ["coco_mocov2_200ep", "coco_cc_aplus_knn_800ep", "coco_knn_mined_after_head_200ep"])
def test_revisiting_configs_build(name):
    config = load_config(CONFIG_DIR / "revisiting" / f"{name}.yaml",
                         ["method.queue_size=256", "model.arch=resnet18", "method.hidden_dim=64"])
    method = build_method(config)
    assert len(method.views) == 2 + config["method"]["small_crops"]
    assert method.views[0].size == (224 if config["method"]["small_crops"] == 0 else 160)
