import random

import numpy as np
import pytest
import torch
from torchvision.models import resnet18

from pretrain import checkpoint as ckpt
from pretrain.models.resnet import build_backbone


@pytest.fixture
def backbone():
    torch.manual_seed(0)
    return build_backbone("resnet18", stem="cifar")


def test_backbone_round_trip(tmp_path, backbone):
    path = ckpt.save_backbone(tmp_path / "b.pth", backbone, method="mocov2", source_run="unit")
    raw = torch.load(path, weights_only=True)  # loadable without unpickling code
    assert raw["format"] == ckpt.BACKBONE_FORMAT and raw["arch"] == "resnet18"
    model, meta = ckpt.load_backbone(path)
    assert meta["method"] == "mocov2" and meta["stem"] == "cifar" and "state_dict" not in meta
    for k, v in backbone.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_training_checkpoint_round_trip(tmp_path, backbone):
    opt = torch.optim.SGD(backbone.parameters(), lr=0.1, momentum=0.9)
    backbone(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    state = ckpt.training_checkpoint(
        models={"method": backbone}, optimizer=opt, scaler=None, state={"queue_ptr": 3},
        epoch=1, step=7, config={"name": "unit", "optim": {"lr": 0.1}},
        backbone=ckpt.backbone_payload(backbone, method="unit"))
    path = ckpt.save(state, tmp_path / "checkpoint.pth")
    loaded = ckpt.load(path)
    assert loaded["step"] == 7 and loaded["config"]["optim"]["lr"] == 0.1
    assert loaded["optimizer"]["state"], "optimizer momentum buffers must be saved"
    model, _ = ckpt.load_backbone(path)  # a training checkpoint is also a backbone source
    assert torch.equal(model.conv1.weight, backbone.conv1.weight)


def test_rng_state_round_trip():
    state = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(); np.random.rand(); torch.rand(3)  # move on
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_missing_and_unexpected_keys_are_listed(tmp_path, backbone):
    payload = ckpt.backbone_payload(backbone, method="x")
    del payload["state_dict"]["layer4.1.bn2.running_var"]
    payload["state_dict"]["head.weight"] = torch.zeros(3)
    ckpt.save(payload, tmp_path / "bad.pth")
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load_backbone(tmp_path / "bad.pth")
    message = str(err.value)
    assert "layer4.1.bn2.running_var" in message and "head.weight" in message
    assert "missing keys (1)" in message and "unexpected keys (1)" in message


def test_shape_mismatch_and_wrong_arch(tmp_path, backbone):
    path = ckpt.save_backbone(tmp_path / "b.pth", backbone, method="x")
    with pytest.raises(ckpt.CheckpointError, match="arch is 'resnet18'.*'resnet50'"):
        ckpt.load_backbone(path, arch="resnet50")
    payload = ckpt.backbone_payload(backbone, method="x")
    payload["stem"] = "imagenet"  # conv1 of the cifar stem is 3x3, imagenet's 7x7
    ckpt.save(payload, tmp_path / "stem.pth")
    with pytest.raises(ckpt.CheckpointError, match=r"conv1.weight: checkpoint \(64, 3, 3, 3\)"):
        ckpt.load_backbone(tmp_path / "stem.pth")


def test_corrupted_and_missing_files_name_the_path(tmp_path, backbone):
    path = ckpt.save_backbone(tmp_path / "b.pth", backbone, method="x")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match="b.pth"):
        ckpt.load_backbone(path)
    with pytest.raises(ckpt.CheckpointError, match="nope.pth"):
        ckpt.load(tmp_path / "nope.pth")


def test_torchvision_state_dict_is_imported(tmp_path):
    ref = resnet18()
    torch.save(ref.state_dict(), tmp_path / "tv.pth")
    model, meta = ckpt.load_backbone(tmp_path / "tv.pth")
    assert meta["arch"] == "resnet18" and meta["stem"] == "imagenet"
    assert torch.equal(model.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)


def test_interrupted_write_keeps_previous_file(tmp_path, backbone, monkeypatch):
    path = ckpt.save_backbone(tmp_path / "b.pth", backbone, method="first")
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial garbage")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_backbone(path, backbone, method="second")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pth"], "temp file left behind"
