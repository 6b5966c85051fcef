"""Lightweight backbones of ReSSL Table 13 (torchvision EfficientNet-B0/B1, MobileNet-V3-Large):
torchvision keys and outputs, pooled feature shapes at small sizes, checkpoint round trip,
clear errors for the dense (ResNet-only) interfaces, and a ReSSL training step."""
import pytest
import torch
from torchvision import models as tvm

from pretrain import checkpoint as ckpt
from pretrain.methods.cgh import CGH
from pretrain.methods.common import momentum_update
from pretrain.methods.ressl import ReSSL
from pretrain.models.lightweight import LIGHTWEIGHT_ARCHS, LightweightBackbone
from pretrain.models.resnet import build_backbone

WIDTHS = {"efficientnet_b0": 1280, "efficientnet_b1": 1280, "mobilenet_v3_large": 960}


def test_every_lightweight_arch_has_an_expected_width():
    assert set(WIDTHS) == set(LIGHTWEIGHT_ARCHS)


@pytest.mark.parametrize("arch", sorted(WIDTHS))
def test_is_torchvision_features_with_the_same_output(arch):
    torch.manual_seed(0)
    ours = build_backbone(arch).eval()
    assert isinstance(ours, LightweightBackbone) and ours.arch == arch and ours.stem == "imagenet"
    theirs = getattr(tvm, arch)(weights=None).eval()
    # our keys are torchvision's minus the classifier; our weights load into torchvision's model
    assert set(ours.state_dict()) == {k for k in theirs.state_dict() if not k.startswith("classifier.")}
    result = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not result.unexpected_keys and all(k.startswith("classifier.") for k in result.missing_keys)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torch.flatten(theirs.avgpool(theirs.features(x)), 1)
        torch.testing.assert_close(ours(x), expected)


@pytest.mark.parametrize("arch", sorted(WIDTHS))
@pytest.mark.parametrize("size", [32, 64])
def test_pooled_feature_shapes(arch, size):
    model = build_backbone(arch)
    assert model.num_features == WIDTHS[arch]
    out = model(torch.randn(2, 3, size, size))  # train mode: BN over the batch
    assert out.shape == (2, WIDTHS[arch]) and torch.isfinite(out).all()


def test_dense_interfaces_and_other_stems_raise_clear_errors():
    model = build_backbone("efficientnet_b0")
    with pytest.raises(NotImplementedError, match="efficientnet_b0.*ResNets only"):
        model.forward_stages(torch.randn(1, 3, 32, 32))
    with pytest.raises(NotImplementedError, match="stage_channels"):
        model.stage_channels
    with pytest.raises(NotImplementedError, match="output_stride 16"):
        build_backbone("mobilenet_v3_large", output_stride=16)
    with pytest.raises(ValueError, match="only the 'imagenet' stem"):
        build_backbone("efficientnet_b1", stem="cifar")
    with pytest.raises(ValueError, match="mobilenet_v3_large"):  # the message lists every arch
        build_backbone("mobilenet_v2")
    with pytest.raises(NotImplementedError, match="ResNets only"):  # CGH needs stage maps
        CGH(arch="efficientnet_b0", dim=8, hidden_dim=16, memory=8)


@pytest.mark.parametrize("arch", sorted(WIDTHS))
def test_checkpoint_round_trip(tmp_path, arch):
    torch.manual_seed(0)
    backbone = build_backbone(arch)
    backbone(torch.randn(2, 3, 32, 32))  # move the BN running statistics off their defaults
    path = ckpt.save_backbone(tmp_path / "b.pth", backbone, method="ressl", source_run="unit")
    raw = torch.load(path, weights_only=True)
    assert raw["arch"] == arch and raw["stem"] == "imagenet"
    assert all(k.startswith("features.") for k in raw["state_dict"])
    model, meta = ckpt.load_backbone(path, arch=arch)
    assert isinstance(model, LightweightBackbone) and meta["arch"] == arch and meta["method"] == "ressl"
    for k, v in backbone.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    with pytest.raises(ckpt.CheckpointError, match="requested"):
        ckpt.load_backbone(path, arch="resnet18")


def test_checkpoint_load_is_strict(tmp_path):
    payload = ckpt.backbone_payload(build_backbone("efficientnet_b0"), method="x")
    payload["arch"] = "efficientnet_b1"  # B0 weights under B1's name: B1 has more blocks
    ckpt.save(payload, tmp_path / "wrong.pth")
    with pytest.raises(ckpt.CheckpointError, match="missing keys") as err:
        ckpt.load_backbone(tmp_path / "wrong.pth")
    assert "features.2.2." in str(err.value)  # B1's third block of stage 2, absent from B0
    payload["arch"] = "efficientnet_b7"
    ckpt.save(payload, tmp_path / "unknown.pth")
    with pytest.raises(ckpt.CheckpointError, match="efficientnet_b7"):
        ckpt.load_backbone(tmp_path / "unknown.pth")


@pytest.mark.parametrize("arch,symmetric", [("efficientnet_b0", False), ("mobilenet_v3_large", True)])
def test_ressl_training_step_with_a_lightweight_backbone(arch, symmetric):
    torch.manual_seed(0)
    view = {"size": 32, "blur_p": 0}
    model = ReSSL(arch=arch, dim=16, hidden_dim=32, memory=24, teacher_view=view, student_views=[view],
                  symmetric=symmetric, infonce_warmup_epochs=1)
    assert model.projector[0].in_features == WIDTHS[arch]
    model.begin_step(0.5, None)  # in the InfoNCE warm-up: both losses contribute
    views = [torch.randn(4, 3, 32, 32) for _ in model.views]
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    teacher_before = [p.clone() for p in model.teacher_encoder.parameters()]
    loss, logs = model(views)
    loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert torch.isfinite(loss) and all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in model.teacher_encoder.parameters())
    optimizer.step()
    momentum_update(model.encoder, model.teacher_encoder, 0.9)
    assert any(not torch.equal(a, b) for a, b in zip(teacher_before, model.teacher_encoder.parameters()))
    assert int(model.memory.ptr) == (8 if symmetric else 4) and logs["alpha"] == 0.5


def test_engine_run_exports_a_lightweight_backbone(generated, tmp_path):
    """Two pretraining steps of symmetric ReSSL with EfficientNet-B0 through the engine; the
    exported backbone.pth loads strictly as an efficientnet_b0."""
    from pretrain.config import CONFIG_DIR, load_config
    from pretrain.engine import train

    config = load_config(CONFIG_DIR / "ressl_smoke.yaml", [
        f"data.root={generated['imagefolder']}", f"train.out_dir={tmp_path / 'run'}", "optim.batch_size=8",
        "monitor=null",
        "optim.max_steps=2", "method.hidden_dim=32", "method.dim=16", "method.memory=32", "train.quiet=true",
        "model.arch=efficientnet_b0", "model.stem=imagenet", "method.symmetric=true"])
    model, meta = ckpt.load_backbone(train(config), arch="efficientnet_b0")
    assert meta["method"] == "ressl" and meta["stem"] == "imagenet" and model.num_features == 1280
