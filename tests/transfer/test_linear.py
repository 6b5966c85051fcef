import argparse
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import top_k_accuracy_score

from evaluation.records import read_records
from pretrain.checkpoint import CheckpointError, read_backbone, save
from pretrain.models.resnet import build_backbone
from transfer import linear
from transfer.linear import RECIPES, linear_head, lr_multipliers, resolve_recipe, topk_accuracy, train_classifier


def lr_at(recipe, epoch, steps_per_epoch=7, step=0):
    return recipe.head_lr() * lr_multipliers(recipe, steps_per_epoch)[epoch * steps_per_epoch + step]


@pytest.mark.parametrize("name, expected", [
    ("ressl_small", {0: 10, 59: 10, 60: 1, 79: 1, 80: 0.1, 99: 0.1}),
    ("lewel", {0: 0.4, 29: 0.4, 30: 0.04, 39: 0.04, 40: 0.004, 49: 0.004}),
    ("moco_imagenet", {0: 30, 59: 30, 60: 3, 80: 0.3}),
])
def test_step_recipes(name, expected):
    for epoch, lr in expected.items():
        assert lr_at(RECIPES[name], epoch) == pytest.approx(lr), (name, epoch)


@pytest.mark.parametrize("name, base", [("ressl_imagenet", 0.3), ("simclr_imagenet", 0.1), ("cgh_small", 3.0),
                                        ("cgh_imagenet", 0.3)])
def test_cosine_recipes(name, base):
    recipe, spe = RECIPES[name], 10
    total = recipe.epochs * spe
    for epoch in (0, recipe.epochs // 4, recipe.epochs // 2, recipe.epochs - 1):
        step = epoch * spe
        assert lr_at(recipe, epoch, spe) == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * step / total)))
    assert lr_at(recipe, recipe.epochs // 2, spe) == pytest.approx(base / 2)
    assert lr_at(recipe, recipe.epochs - 1, spe, spe - 1) < 1e-3 * base


def test_simclr_lr_scales_with_batch_and_overrides_rescale_milestones():
    args = argparse.Namespace(recipe="simclr_imagenet", smoke=False, milestones=None, batch_size=1024,
                              **{f: None for f in ("epochs", "lr", "schedule", "gamma", "momentum", "nesterov",
                                                   "weight_decay", "crop", "resize", "crop_scale")})
    recipe, overrides = resolve_recipe(args, RECIPES)
    assert recipe.nesterov and recipe.head_lr() == pytest.approx(0.4) and overrides == {"batch_size": 1024}
    args.recipe, args.batch_size, args.epochs = "ressl_small", None, 10
    recipe, overrides = resolve_recipe(args, RECIPES)
    assert recipe.milestones == (6, 8) and overrides == {"epochs": 10, "milestones": (6, 8)}


def test_topk_accuracy_matches_sklearn():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(200, 7, generator=g), torch.randint(0, 7, (200,), generator=g)
    for k in (1, 3, 5):
        assert topk_accuracy(logits, labels, k) == pytest.approx(
            100 * top_k_accuracy_score(labels.numpy(), logits.numpy(), k=k, labels=range(7)))


class TinySet(torch.utils.data.Dataset):
    def __init__(self, n=6, size=8, classes=3):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
        self.y = torch.arange(n) % classes

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


@pytest.mark.parametrize("precompute", [False, True])
def test_frozen_backbone_and_bn_statistics_stay_unchanged(precompute):
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", stem="cifar")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    head = linear_head(backbone.num_features, 3, seed=0)
    head_before = head.weight.detach().clone()
    data = TinySet()
    recipe = linear.Recipe(epochs=2, lr=1.0, schedule="cosine", batch_size=4, crop=8, resize=8)
    features = labels = None
    if precompute:
        features, labels = linear.extract_features(backbone, data, "cpu", progress=False)
    train_classifier(backbone, head, recipe, data, "cpu", seed=0, train_features=features, train_labels=labels)
    assert not backbone.training
    assert all(torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    assert not torch.equal(head_before, head.weight)

    # control: a fine-tuning recipe does move the weights and the BN running statistics
    finetune = linear.Recipe(epochs=1, lr=1.0, schedule="cosine", batch_size=6, crop=8, backbone_lr=0.1)
    train_classifier(backbone, head, finetune, data, "cpu", seed=0)
    changed = [k for k, v in backbone.state_dict().items() if not torch.equal(before[k], v)]
    assert "bn1.running_mean" in changed and "conv1.weight" in changed


def smoke_args(data, ckpt, results=None):
    return ["--smoke", "--ckpt", str(ckpt), "--dataset", "imagefolder", "--data", str(data), "--test-split", "val",
            "--max-per-class", "4", "--crop", "16", "--resize", "16", "--batch-size", "10", "--eval-every", "1"] + (
        ["--results", str(results)] if results else [])


def test_checkpoint_with_missing_key_is_rejected(generated, smoke_checkpoint, tmp_path):
    payload = read_backbone(smoke_checkpoint("resnet18", "cifar"))
    del payload["state_dict"]["layer2.1.bn2.running_var"]
    broken = save(payload, tmp_path / "backbone.pth")
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): layer2\.1\.bn2\.running_var"):
        linear.main(smoke_args(generated["imagefolder"], broken))


def test_full_scale_refuses_a_reduced_run(generated, smoke_checkpoint):
    args = smoke_args(generated["imagefolder"], smoke_checkpoint("resnet18", "cifar"))[1:]
    with pytest.raises(SystemExit):
        linear.main(args + ["--scale", "full", "--epochs", "1"])


def test_smoke_run_writes_records(generated, smoke_checkpoint, tmp_path):
    result = linear.main(smoke_args(generated["imagefolder"], smoke_checkpoint("resnet18", "cifar"), tmp_path))
    records = list(read_records(tmp_path))
    assert [(r.task, r.metric, r.scale) for r in records] == [("linear_cls", "top1", "smoke")]  # 5 classes: no top5
    protocol = records[0].protocol
    assert records[0].value == result["top1"] == protocol["top1_per_eval"]["2"]
    assert protocol["epochs"] == 2 and protocol["recipe"] == "ressl_small" and protocol["train_images"] == 20
    assert protocol["train_aug"].endswith("over the whole image (aspect preserved; torchvision, bilinear)")
    assert 0 <= result["top1"] <= 100


class GradientImage:
    """A reader with one 240 x 120 image whose red channel is the x coordinate and green the y
    coordinate (scaled to 0..255): a crop's pixel values tell where in the image it was cut."""

    W, H = 240, 120

    def __len__(self):
        return 1

    def __getitem__(self, index):
        from PIL import Image

        x = np.linspace(0, 255, self.W)[None, :].repeat(self.H, 0)
        y = np.linspace(0, 255, self.H)[:, None].repeat(self.W, 1)
        return Image.fromarray(np.stack([x, y, np.zeros_like(x)], 2).round().astype(np.uint8)), 0


def test_train_crops_cover_the_whole_image_with_its_aspect():
    """RandomResizedCrop over the whole (non-square) image: crops come from outside the centre
    square too, and each box keeps the image's aspect (its width/height in original pixels is
    within RandomResizedCrop's ratio range (3/4, 4/3)) -- a crop of the image squashed to a
    square, or of its centre square, fails one or the other."""
    reader = GradientImage()
    spec = linear.train_view_spec(linear.Recipe(epochs=1, lr=1.0, schedule="cosine", crop=32, resize=32,
                                                crop_scale=(0.08, 0.3)))
    crops = linear.RandomResizedCropImages(reader, spec, seed=0)
    centres, ratios, flipped = [], [], 0
    for epoch in range(150):
        crops.set_epoch(epoch)
        x, label = crops[0]
        assert x.dtype == torch.uint8 and x.shape == (3, 32, 32) and label == 0
        red, green = x[0].double(), x[1].double()
        x_span = (red.max() - red.min()) * (reader.W - 1) / 255
        y_span = (green.max() - green.min()) * (reader.H - 1) / 255
        centres.append(red.mean().item() * (reader.W - 1) / 255)
        ratios.append((x_span / y_span).item())
        flipped += bool(red[:, 0].mean() > red[:, -1].mean())
    assert min(centres) < reader.W / 2 - reader.H / 2 and max(centres) > reader.W / 2 + reader.H / 2
    # the spans are measured between pixel centres of a 32-px crop: allow that much slack
    assert 0.75 * 30 / 32 <= min(ratios) and max(ratios) <= 4 / 3 * 32 / 30
    assert 30 < flipped < 120  # horizontal flip with probability 1/2
    crops.set_epoch(3)
    assert torch.equal(crops[0][0], crops[0][0])  # a function of (seed, epoch, index)


def test_centre_square_crops_cannot_be_full(generated, smoke_checkpoint, capsys):
    args = smoke_args(generated["imagefolder"], smoke_checkpoint("resnet18", "cifar"))[1:]
    with pytest.raises(SystemExit):
        linear.main(args + ["--scale", "full", "--train-crop", "centre-square"])
    assert "centre 16px square" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--load-size is for --train-crop centre-square"):
        linear.main(args + ["--scale", "full", "--load-size", "32"])
