"""Suite backbone -> detectron2: every tensor lands with identical values, or the load fails by name."""
import pickle

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from pretrain.checkpoint import read_backbone, save_backbone
from pretrain.models.resnet import build_backbone
from transfer.convert_detectron2 import (ConversionError, norm_rescale, place_in_model, suite_to_detectron2,
                                         to_detectron2, verify_loaded, write_pickle)
from transfer.detectron2_common import DatasetSpec, build_cfg

DUMMY = DatasetSpec("coco", "dummy", "", "")


def _backbone(arch, stem="imagenet", seed=0):
    torch.manual_seed(seed)
    model = build_backbone(arch, stem=stem)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_()
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model


def _model(config, arch, tmp_path):
    cfg, _ = build_cfg(config, arch, train=[DUMMY], test=DUMMY, num_classes=3, device="cpu", num_gpus=1,
                       out_dir=tmp_path, smoke=True, max_iter=None, opts=[], seed=0)
    return build_model(cfg)


# independent expectations: where a torchvision key must end up in each detector layout
EXPECTED_NAMES = {
    ("coco_C4_1x", "conv1.weight"): "backbone.stem.conv1.weight",
    ("coco_C4_1x", "bn1.running_var"): "backbone.stem.conv1.norm.running_var",
    ("coco_C4_1x", "layer3.0.downsample.1.weight"): "backbone.res4.0.shortcut.norm.weight",
    ("coco_C4_1x", "layer4.1.bn2.running_mean"): "roi_heads.res5.1.conv2.norm.running_mean",
    ("coco_FPN_1x", "layer1.1.conv2.weight"): "backbone.bottom_up.res2.1.conv2.weight",
    ("coco_FPN_1x", "layer4.0.downsample.0.weight"): "backbone.bottom_up.res5.0.shortcut.weight",
}


@pytest.mark.parametrize("config,arch", [("coco_C4_1x", "resnet18"), ("coco_FPN_1x", "resnet18"),
                                         ("coco_C4_1x", "resnet50"), ("coco_C4_1x", "resnet18_w16"),
                                         ("coco_FPN_1x", "resnet18_w16")])
def test_round_trip_every_tensor_lands(config, arch, tmp_path):
    backbone = _backbone(arch)
    path = save_backbone(tmp_path / "b.pth", backbone, method="unit")
    named, meta = suite_to_detectron2(path)
    model = _model(config, arch, tmp_path)
    exact = place_in_model(named, model.state_dict())
    torch.save({"model": exact, "__author__": "test", "matching_heuristics": False}, tmp_path / "w.pth")
    DetectionCheckpointer(model).load(str(tmp_path / "w.pth"))
    assert verify_loaded(model, exact) == len(backbone.state_dict())
    loaded = model.state_dict()
    for (cfg_name, tv_key), d2_key in EXPECTED_NAMES.items():
        if cfg_name == config:
            assert torch.equal(loaded[d2_key], backbone.state_dict()[tv_key]), d2_key
    # every source tensor, value for value, at the name an independent table gives
    for key, value in backbone.state_dict().items():
        assert torch.equal(loaded[_independent_name(key, config)], value), key


def _independent_name(key, config):
    parts = key.split(".")
    if parts[0] in ("conv1", "bn1"):
        stage, block, rest = "stem", None, parts
    else:
        stage, block, rest = {"layer1": "res2", "layer2": "res3", "layer3": "res4", "layer4": "res5"}[parts[0]], \
            parts[1], parts[2:]
    layer = {"conv1": ["conv1"], "conv2": ["conv2"], "conv3": ["conv3"], "bn1": ["conv1", "norm"],
             "bn2": ["conv2", "norm"], "bn3": ["conv3", "norm"]}
    if rest[0] == "downsample":
        middle = ["shortcut"] if rest[1] == "0" else ["shortcut", "norm"]
        rest = rest[2:]
    else:
        middle, rest = layer[rest[0]], rest[1:]
    owner = {"coco_C4_1x": "roi_heads" if stage == "res5" else "backbone",
             "coco_FPN_1x": "backbone.bottom_up"}[config]
    return ".".join([owner, stage] + ([block] if block else []) + middle + rest)


def test_missing_backbone_key_is_fatal_and_named(tmp_path):
    state = _backbone("resnet18").state_dict()
    del state["layer2.0.downsample.1.weight"]
    model = _model("coco_C4_1x", "resnet18", tmp_path)
    with pytest.raises(ConversionError, match=r"model backbone keys not provided \(1\): backbone.res3.0.shortcut.norm.weight"):
        place_in_model(to_detectron2(state), model.state_dict())


def test_unmatched_and_misshaped_keys_are_fatal(tmp_path):
    named = to_detectron2(_backbone("resnet18").state_dict())
    model = _model("coco_C4_1x", "resnet50", tmp_path)  # R18 weights into an R50 detector
    with pytest.raises(ConversionError) as err:
        place_in_model(named, model.state_dict())
    assert "shape mismatches" in str(err.value) and "res2.0.conv1.weight" in str(err.value)
    assert "model backbone keys not provided" in str(err.value) and "res2.0.conv3.weight" in str(err.value)


def test_verify_loaded_catches_a_tensor_that_did_not_land(tmp_path):
    named = to_detectron2(_backbone("resnet18").state_dict())
    model = _model("coco_C4_1x", "resnet18", tmp_path)
    exact = place_in_model(named, model.state_dict())
    DetectionCheckpointer(model)._load_model({"model": dict(exact), "matching_heuristics": False})
    verify_loaded(model, exact)
    with torch.no_grad():
        model.backbone.res4[1].conv2.weight.add_(1e-3)
    with pytest.raises(ConversionError, match=r"different values \(1\): backbone.res4.1.conv2.weight"):
        verify_loaded(model, exact)


def test_moco_pickle_loads_with_detectron2_heuristics_and_reimports(tmp_path):
    backbone = _backbone("resnet50")
    named = to_detectron2(backbone.state_dict())
    pkl = write_pickle(named, tmp_path / "moco_format.pkl")
    with open(pkl, "rb") as f:
        raw = pickle.load(f)
    assert raw["__author__"] and raw["matching_heuristics"] is True and "stem.conv1.weight" in raw["model"]
    # plain detectron2 with its name-matching heuristics (MoCo's workflow) also gets everything
    model = _model("coco_C4_1x", "resnet50", tmp_path)
    DetectionCheckpointer(model).load(str(pkl))
    verify_loaded(model, {k: v for k, v in place_in_model(named, model.state_dict()).items()
                          if not k.endswith("num_batches_tracked")})
    # and the suite imports the pickle back into identical torchvision tensors
    payload = read_backbone(pkl)
    assert payload["method"] == "detectron2" and payload["arch"] == "resnet50"
    for key, value in backbone.state_dict().items():
        assert torch.equal(payload["state_dict"][key], value), key


def test_cifar_stem_is_refused(tmp_path):
    path = save_backbone(tmp_path / "c.pth", _backbone("resnet18", stem="cifar"), method="unit")
    with pytest.raises(ConversionError, match="'cifar' stem"):
        suite_to_detectron2(path)


def test_norm_rescale_scales_weights_and_keeps_the_function():
    backbone = _backbone("resnet18").eval()
    scaled = norm_rescale(backbone.state_dict(), 0.25)
    assert torch.equal(scaled["layer2.0.conv1.weight"], backbone.state_dict()["layer2.0.conv1.weight"] * 0.25)
    assert torch.equal(scaled["layer2.0.bn1.weight"], backbone.state_dict()["layer2.0.bn1.weight"])
    other = _backbone("resnet18", seed=1).eval()
    other.load_state_dict(scaled)
    for model in (backbone, other):  # with eps = 0 the invariance is exact (eps/c^2 aside)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eps = 0.0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), backbone(x), rtol=1e-4, atol=1e-4)
