"""Importers: a checkpoint built in each official layout loads every backbone tensor unchanged."""
import pickle

import pytest
import torch
from torchvision.models import resnet18, resnet50

from pretrain import checkpoint as ckpt
from pretrain.importers import LayoutError, detect_layout, from_detectron2_name, import_backbone_state


@pytest.fixture(scope="module")
def reference():
    """A randomly initialised torchvision ResNet-18 with non-trivial BN buffers."""
    torch.manual_seed(0)
    model = resnet18()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(7)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _backbone(state):
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def _noise(state):
    return {k: torch.randn_like(v.float()) for k, v in state.items()}


def _mlp(prefix):
    return {f"{prefix}0.weight": torch.randn(16, 512), f"{prefix}0.bias": torch.randn(16),
            f"{prefix}2.weight": torch.randn(8, 16), f"{prefix}2.bias": torch.randn(8)}


def _with_prefix(prefix, state):
    return {prefix + k: v for k, v in state.items()}


SEQUENTIAL = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def _layouts(ref):
    bb = _backbone(ref)
    other = _noise(bb)  # momentum/target/student copies must never be the ones imported
    return {
        "moco_v1_v2": {"epoch": 200, "arch": "resnet18", "optimizer": {},
                       "state_dict": {**_with_prefix("module.encoder_q.", bb),
                                      **_with_prefix("module.encoder_q.", _mlp("fc.")),
                                      **_with_prefix("module.encoder_k.", other),
                                      "module.queue": torch.randn(8, 32), "module.queue_ptr": torch.zeros(1)}},
        "moco_v3": {"epoch": 300, "arch": "resnet18", "scaler": {},
                    "state_dict": {**_with_prefix("module.base_encoder.", bb),
                                   **_with_prefix("module.base_encoder.", _mlp("fc.")),
                                   **_with_prefix("module.momentum_encoder.", other),
                                   **_with_prefix("module.predictor.", _mlp(""))}},
        "byol_lewel": {"epoch": 200, "state_dict": {**_with_prefix("module.online_net.backbone.", bb),
                                                    **_with_prefix("module.online_net.neck.", _mlp("mlp.")),
                                                    **_with_prefix("module.target_net.backbone.", other)}},
        "byol_sequential": {
            "online_network_state_dict": {
                **{f"encoder.{SEQUENTIAL[k.split('.')[0]]}.{k.split('.', 1)[1]}": v for k, v in bb.items()},
                **_with_prefix("projetion.net.", _mlp(""))},
            "target_network_state_dict": _with_prefix("encoder.", other), "optimizer_state_dict": {}},
        "dino": {"teacher": {**_with_prefix("backbone.", bb), **_with_prefix("head.mlp.", _mlp(""))},
                 "student": {**_with_prefix("module.backbone.", other), **_with_prefix("module.head.", _mlp(""))},
                 "epoch": 100, "args": {}},
        "backbone_prefix": {"state_dict": {**_with_prefix("backbone.", bb), **_with_prefix("projector.", _mlp("")),
                                           **_with_prefix("momentum_backbone.", other)}, "epoch": 3},
        "timm": {"epoch": 10, "arch": "resnet18", "state_dict": dict(ref), "state_dict_ema": _noise(ref)},
        "torchvision": dict(ref),
    }


LAYOUT_NAMES = ["moco_v1_v2", "moco_v3", "byol_lewel", "byol_sequential", "dino", "backbone_prefix",
                "timm", "torchvision"]


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_every_backbone_tensor_lands_unchanged(name, reference, tmp_path):
    obj = _layouts(reference)[name]
    assert detect_layout(obj).name == name
    path = tmp_path / f"{name}.pth"
    torch.save(obj, path)
    model, meta = ckpt.load_backbone(path)
    assert meta["method"] == name and meta["arch"] == "resnet18" and meta["stem"] == "imagenet"
    loaded = model.state_dict()
    expected = _backbone(reference)
    assert set(loaded) == set(expected)
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


def test_heads_are_dropped_by_name(reference):
    state, info = import_backbone_state(_layouts(reference)["moco_v1_v2"])
    assert info["dropped"] == sorted(f"module.encoder_q.fc.{i}.{p}" for i in (0, 2) for p in ("weight", "bias"))
    assert not any(k.startswith("fc.") for k in state)


def test_timm_resnet50_keys_are_torchvision_keys(tmp_path):
    torch.manual_seed(1)
    ref = resnet50().state_dict()
    torch.save({"state_dict": ref, "arch": "resnet50", "epoch": 1}, tmp_path / "timm.pth")
    model, meta = ckpt.load_backbone(tmp_path / "timm.pth", arch="resnet50")
    assert meta["method"] == "timm"
    for key, value in model.state_dict().items():
        assert torch.equal(value, ref[key]), key


def test_unknown_layout_lists_top_level_keys(tmp_path):
    torch.save({"net": {"w": torch.zeros(1)}, "epoch": 3}, tmp_path / "x.pth")
    with pytest.raises(ckpt.CheckpointError, match=r"top-level keys \[epoch, net\]"):
        ckpt.read_backbone(tmp_path / "x.pth")


def test_unknown_key_under_the_prefix_is_fatal_and_named(reference, tmp_path):
    obj = _layouts(reference)["moco_v1_v2"]
    obj["state_dict"]["module.encoder_q.extra_layer.weight"] = torch.zeros(3)
    torch.save(obj, tmp_path / "x.pth")
    with pytest.raises(ckpt.CheckpointError, match="unexpected keys.*extra_layer.weight"):
        ckpt.load_backbone(tmp_path / "x.pth")


def test_missing_backbone_key_is_fatal_and_named(reference, tmp_path):
    obj = _layouts(reference)["moco_v3"]
    del obj["state_dict"]["module.base_encoder.layer3.1.bn2.running_var"]
    torch.save(obj, tmp_path / "x.pth")
    with pytest.raises(ckpt.CheckpointError, match=r"missing keys \(1\): layer3.1.bn2.running_var"):
        ckpt.load_backbone(tmp_path / "x.pth")


def test_detectron2_names_invert_the_moco_renaming():
    cases = {"stem.conv1.weight": "conv1.weight", "stem.conv1.norm.running_mean": "bn1.running_mean",
             "res2.0.conv3.norm.bias": "layer1.0.bn3.bias", "res5.2.conv2.weight": "layer4.2.conv2.weight",
             "res3.0.shortcut.weight": "layer2.0.downsample.0.weight",
             "res4.0.shortcut.norm.running_var": "layer3.0.downsample.1.running_var"}
    for d2, tv in cases.items():
        assert from_detectron2_name(d2) == tv
    with pytest.raises(LayoutError, match="fpn_lateral2"):
        from_detectron2_name("fpn_lateral2.weight")


def test_weights_pickle_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"model": Evil(), "__author__": "x"}))
    with pytest.raises(ckpt.CheckpointError, match="builtins.print is not allowed"):
        ckpt.read_backbone(tmp_path / "evil.pkl")
