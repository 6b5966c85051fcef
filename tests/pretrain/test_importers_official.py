"""Importers for the authors' released ReSSL and CGH checkpoints: a checkpoint built in each
layout (as the official training scripts save it) loads every backbone tensor unchanged;
the projectors, the momentum encoder and the queues are left out; a wrong layout is an error
that shows what the checkpoint holds."""
import re

import pytest
import torch
from torchvision.models import resnet18

from pretrain import checkpoint as ckpt
from pretrain.importers import detect_layout, import_backbone_state


@pytest.fixture(scope="module")
def backbone():
    """torchvision ResNet-18 weights (no fc) with non-trivial BN buffers."""
    torch.manual_seed(3)
    model = resnet18()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}


def prefixed(prefix, state):
    return {prefix + k: v for k, v in state.items()}


def noise(state):
    return {k: torch.randn_like(v.float()) for k, v in state.items()}


def mlp(prefix, dims=(512, 64, 16)):
    return {f"{prefix}0.weight": torch.randn(dims[1], dims[0]), f"{prefix}0.bias": torch.randn(dims[1]),
            f"{prefix}2.weight": torch.randn(dims[2], dims[1]), f"{prefix}2.bias": torch.randn(dims[2])}


def ressl_checkpoint(bb):
    """ReSSL@4d67daa: DDP(ReSSL) with encoder_q/encoder_k = BackBone(net=ResNet, head=ProjectionHead),
    a queue; saved as {'model': state_dict, 'optimizer': ..., 'epoch': ...}."""
    return {"model": {**prefixed("module.encoder_q.net.", bb), **prefixed("module.encoder_q.head.", mlp("mlp.")),
                      **prefixed("module.encoder_k.net.", noise(bb)),
                      **prefixed("module.encoder_k.head.", mlp("mlp.")),
                      "module.queue": torch.randn(16, 64), "module.queue_ptr": torch.zeros(1, dtype=torch.long)},
            "optimizer": {"state": {}, "param_groups": []}, "epoch": 200}


def cgh_checkpoint(bb):
    """Cross-Context_Learning@d064b00: the model's 'net' (DDP(CGH)) holds encoder_q/encoder_k =
    torchvision ResNets whose fc is the MLP projector, the hypercolumn projectors and two queues."""
    return {"net": {**prefixed("module.encoder_q.", bb), **prefixed("module.encoder_q.", mlp("fc.")),
                    **prefixed("module.encoder_k.", noise(bb)), **prefixed("module.encoder_k.", mlp("fc.")),
                    **prefixed("module.hypercols_proj_q.", mlp("projector.", (2048, 64, 16))),
                    "module.hypercols_proj_q.reg_conv.0.weight": torch.randn(2048, 768, 1, 1),
                    "module.queue": torch.randn(16, 64), "module.queue_hyper": torch.randn(16, 64),
                    "module.queue_ptr": torch.zeros(1, dtype=torch.long)},
            "epoch": 200, "optimizer_net": {}}


@pytest.mark.parametrize("name,make,container,prefix", [
    ("ressl", ressl_checkpoint, "model", "module.encoder_q.net."),
    ("cgh", cgh_checkpoint, "net", "module.encoder_q."),
])
def test_released_layout_loads_every_backbone_tensor(name, make, container, prefix, backbone, tmp_path):
    obj = make(backbone)
    assert detect_layout(obj).name == name
    state, info = import_backbone_state(obj)
    assert info["container"] == container and info["prefix"] == prefix
    assert set(state) == set(backbone)
    torch.save(obj, tmp_path / f"{name}.pth")
    model, meta = ckpt.load_backbone(tmp_path / f"{name}.pth")
    assert meta["method"] == name and meta["arch"] == "resnet18" and meta["stem"] == "imagenet"
    loaded = model.state_dict()
    assert set(loaded) == set(backbone)
    for key, value in backbone.items():
        assert torch.equal(loaded[key], value), key


def test_cgh_projector_under_the_prefix_is_dropped_by_name(backbone):
    _, info = import_backbone_state(cgh_checkpoint(backbone))
    assert info["dropped"] == sorted(f"module.encoder_q.fc.{i}.{p}" for i in (0, 2) for p in ("weight", "bias"))


def test_cifar_stem_cgh_checkpoint(tmp_path):
    """CGH's small-dataset encoder (ResNetCIFAR: 3x3 stride-1 conv1, no max-pool) keeps torchvision names."""
    from pretrain.models.resnet import build_backbone

    torch.manual_seed(4)
    bb = build_backbone("resnet18", stem="cifar").state_dict()
    torch.save(cgh_checkpoint(bb), tmp_path / "cgh_cifar.pth")
    model, meta = ckpt.load_backbone(tmp_path / "cgh_cifar.pth")
    assert meta["stem"] == "cifar"
    assert all(torch.equal(v, bb[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("obj,shown", [
    # ReSSL's container with MoCo's prefix (no '.net'): the keys under 'model' are shown
    (lambda bb: {"model": prefixed("module.encoder_q.", bb), "epoch": 1}, r"under 'model': \[module\.encoder_q\."),
    # CGH's container with ReSSL's prefix
    (lambda bb: {"net": prefixed("module.encoder.net.", bb)}, r"under 'net': \[module\.encoder\.net\."),
])
def test_wrong_layout_is_a_clear_error(obj, shown, backbone, tmp_path):
    torch.save(obj(backbone), tmp_path / "x.pth")
    with pytest.raises(ckpt.CheckpointError, match="no importer fits this checkpoint") as err:
        ckpt.read_backbone(tmp_path / "x.pth")
    assert "known layouts" in str(err.value) and "ressl (model: module.encoder_q.net.*)" in str(err.value)
    assert "cgh (net: module.encoder_q.*)" in str(err.value)
    assert re.search(shown, str(err.value)), str(err.value)


def test_unexpected_key_under_the_ressl_prefix_is_named(backbone, tmp_path):
    obj = ressl_checkpoint(backbone)
    obj["model"]["module.encoder_q.net.extra.weight"] = torch.zeros(2)
    torch.save(obj, tmp_path / "x.pth")
    with pytest.raises(ckpt.CheckpointError, match=r"unexpected keys \(1\): extra.weight"):
        ckpt.load_backbone(tmp_path / "x.pth")
