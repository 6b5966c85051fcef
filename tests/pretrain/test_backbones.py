import pytest
import torch
from torchvision.models import resnet18, resnet50

from pretrain.models.resnet import ResNetBackbone, build_backbone


@pytest.mark.parametrize("arch,ctor", [("resnet18", resnet18), ("resnet50", resnet50)])
def test_keys_are_torchvision_minus_fc(arch, ctor):
    ours = set(build_backbone(arch).state_dict())
    theirs = {k for k in ctor().state_dict() if not k.startswith("fc.")}
    assert ours == theirs


@pytest.mark.parametrize("arch,channels", [("resnet18", (64, 128, 256, 512)), ("resnet50", (256, 512, 1024, 2048)),
                                           ("resnet18_w16", (16, 32, 64, 128))])
@pytest.mark.parametrize("stem,size,first_stride", [("cifar", 32, 1), ("cifar", 64, 1), ("imagenet", 224, 4), ("imagenet", 64, 4)])
def test_stage_shapes(arch, channels, stem, size, first_stride):
    model = build_backbone(arch, stem=stem).eval()
    with torch.no_grad():
        stages = model.forward_stages(torch.randn(2, 3, size, size))
        pooled = model(torch.randn(2, 3, size, size))
    for i, name in enumerate(("C2", "C3", "C4", "C5")):
        side = size // (first_stride * 2 ** i)
        assert stages[name].shape == (2, channels[i], side, side), name
    assert pooled.shape == (2, channels[-1]) and model.num_features == channels[-1]


def test_narrow_resnet18_has_resnet18_keys_with_a_quarter_of_the_channels():
    from pretrain.models.resnet import resnet_spec
    narrow, full = build_backbone("resnet18_w16").state_dict(), build_backbone("resnet18").state_dict()
    assert narrow.keys() == full.keys()
    for key, tensor in narrow.items():
        if tensor.dim() == 4:  # conv: out and in channels a quarter (the stem's 3 input channels stay)
            assert tensor.shape[0] * 4 == full[key].shape[0] and tensor.shape[1] in (3, full[key].shape[1] // 4), key
    assert resnet_spec("resnet18_w16") == (18, 16, (16, 32, 64, 128))
    assert resnet_spec("resnet50") == (50, 64, (256, 512, 1024, 2048)) and resnet_spec("resnet34")[0] == 34


@pytest.mark.parametrize("output_stride,flags", [(16, [False, False, True]), (8, [False, True, True])])
def test_dilated_resnet50_matches_torchvision(output_stride, flags):
    """Our dilation must equal torchvision's replace_stride_with_dilation exactly."""
    torch.manual_seed(0)
    ref = resnet50(replace_stride_with_dilation=flags).eval()
    ours = build_backbone("resnet50", output_stride=output_stride).eval()
    ours.load_state_dict({k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")})
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        ref_c5 = ref.layer4(ref.layer3(ref.layer2(ref.layer1(ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))))))
        c5 = ours.forward_stages(x)["C5"]
    assert c5.shape[-1] == 96 // output_stride
    torch.testing.assert_close(c5, ref_c5)


@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilated_resnet18_output_stride(output_stride):
    model = build_backbone("resnet18", output_stride=output_stride).eval()
    with torch.no_grad():
        c5 = model.forward_stages(torch.randn(1, 3, 128, 128))["C5"]
    assert c5.shape == (1, 512, 128 // output_stride, 128 // output_stride)


def test_rejects_unknown_arch_and_stride():
    with pytest.raises(ValueError, match="resnet9"):
        ResNetBackbone("resnet9")
    with pytest.raises(ValueError, match="output_stride"):
        ResNetBackbone("resnet18", output_stride=4)
