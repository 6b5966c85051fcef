"""Suite backbone -> mmseg ResNet: every tensor lands, identical; anything missing is fatal and named."""
import pytest
import torch

from pretrain.checkpoint import load, save, save_backbone
from pretrain.models.resnet import build_backbone
from transfer.convert_detectron2 import ConversionError
from transfer.convert_mmseg import (backbone_cfg, build_mmseg_backbone, convert, load_and_verify, to_mmseg,
                                    verify_loaded, write)


pytestmark = pytest.mark.usefixtures("one_thread")


def _random_trained(arch, path):
    """A backbone whose BN tensors (statistics included) also differ from a fresh init."""
    torch.manual_seed(1)
    model = build_backbone(arch)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith(("running_var", "bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.copy_(0.1 * torch.randn_like(tensor))
    return save_backbone(path, model, method="test"), model


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "resnet18_w16"])
def test_round_trip_every_tensor_lands_identical(tmp_path, arch):
    src, model = _random_trained(arch, tmp_path / "backbone.pth")
    out, state, meta = convert(src, tmp_path / "mmseg.pth")
    source = model.state_dict()
    assert set(state) == set(source) and meta["arch"] == arch
    assert all(torch.equal(state[k], source[k]) for k in source)
    # mmengine's Pretrained init loads the file into the built mmseg ResNet; every tensor compared
    assert load_and_verify(out, arch, output_stride=8) == len(source)


@pytest.mark.parametrize("arch, strides", [("resnet50", (32, 16, 8)), ("resnet18", (32,)), ("resnet18_w16", (32,))])
def test_mmseg_resnet_computes_the_torchvision_function(tmp_path, arch, strides):
    """Same keys is not enough: the mmseg class must be the same network (7x7 stem, stride in
    the 3x3 conv, dilation pattern of torchvision's replace_stride_with_dilation) -- equal
    stage outputs. ResNet-18/34 are compared at output stride 32 only: torchvision's BasicBlock
    has no dilated form (mmseg's dilates the first 3x3 conv of each block, see convert_mmseg)."""
    src, model = _random_trained(arch, tmp_path / "backbone.pth")
    state, _ = to_mmseg(src)
    x = torch.randn(1, 3, 64, 80)
    for output_stride in strides:
        ours = build_backbone(arch, output_stride=output_stride)
        ours.load_state_dict(model.state_dict())
        ours.eval()
        theirs = build_mmseg_backbone(arch, output_stride)
        theirs.load_state_dict(state)
        theirs.eval()
        with torch.no_grad():
            expected = list(ours.forward_stages(x).values())
            got = theirs(x)
        assert len(got) == 4 and got[-1].shape[-2:] == (64 // output_stride, -(-80 // output_stride))
        for a, b in zip(expected, got):
            assert a.shape == b.shape
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_missing_key_is_fatal_and_named(tmp_path):
    src, _ = _random_trained("resnet18", tmp_path / "backbone.pth")
    payload = load(src)
    del payload["state_dict"]["layer4.1.bn2.running_var"]
    save(payload, tmp_path / "broken.pth")
    with pytest.raises(ConversionError, match=r"layer4\.1\.bn2\.running_var"):
        convert(tmp_path / "broken.pth", tmp_path / "out.pth")


def test_half_loaded_backbone_is_caught_after_mmengine_load(tmp_path):
    """mmengine's Pretrained init loads with strict=False and only logs a missing key; the
    suite's check after the load names it."""
    src, _ = _random_trained("resnet18", tmp_path / "backbone.pth")
    state, meta = to_mmseg(src)
    truncated = {k: v for k, v in state.items() if k != "layer3.0.downsample.0.weight"}
    path = write(truncated, meta, tmp_path / "half.pth")
    with pytest.raises(ConversionError, match=r"layer3\.0\.downsample\.0\.weight"):
        load_and_verify(path, "resnet18")
    # and a value changed after loading is caught too
    backbone = build_mmseg_backbone("resnet18", 8)
    backbone.load_state_dict(state)
    with torch.no_grad():
        backbone.layer1[0].conv1.weight.add_(1e-3)
    with pytest.raises(ConversionError, match=r"layer1\.0\.conv1\.weight"):
        verify_loaded(backbone, state)


def test_cifar_stem_is_refused(smoke_checkpoint, tmp_path):
    with pytest.raises(ConversionError, match="cifar"):
        convert(smoke_checkpoint("resnet18", "cifar"), tmp_path / "out.pth")


def test_norm_rescale_scales_conv_weights(tmp_path):
    """PCD NormRescale 0.25: conv weights x0.25, BN statistics follow, the eval-mode network
    computes the same function."""
    src, model = _random_trained("resnet18", tmp_path / "backbone.pth")
    plain, _ = to_mmseg(src)
    scaled, meta = to_mmseg(src, norm_rescale_factor=0.25)
    assert meta["norm_rescale"] == 0.25
    for key, value in plain.items():
        if value.dim() == 4:
            torch.testing.assert_close(scaled[key], 0.25 * value, rtol=0, atol=0)
        elif not key.endswith(("running_mean", "running_var")):
            assert torch.equal(scaled[key], value), key
    nets = []
    for state in (plain, scaled):
        net = build_mmseg_backbone("resnet18", 8)
        net.load_state_dict(state)
        net.eval()
        nets.append(net)
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        a, b = nets[1](x)[-1], nets[0](x)[-1]
    assert (a - b).abs().mean() < 1e-2 * b.abs().mean()  # equal up to the BN eps (1e-5 vs var x 0.0625)
