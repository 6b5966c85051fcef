"""ResNet backbones with torchvision key names.

``ResNetBackbone`` *is* a torchvision ``ResNet`` (same parameter names, so exported
weights load into torchvision, detectron2 and mmseg converters unchanged) with

- ``stem="cifar"``: the 3x3 stride-1 first conv and no max-pool used for 32/64 px
  inputs (ReSSL/CGH small-dataset protocol),
- ``output_stride`` 32 (default), 16 or 8: the last stages use dilated 3x3 convs
  instead of striding (segment retrieval, FCN segmentation, label propagation),
- ``forward_stages`` returning the stage outputs C2..C5,
- no classifier: ``forward`` returns the global-average-pooled C5 features.

``build_backbone`` also builds the lightweight torchvision networks of ReSSL Table 13
(``efficientnet_b0``, ``efficientnet_b1``, ``mobilenet_v3_large``: ``pretrain.models.lightweight``),
which share ``arch``, ``stem``, ``num_features`` and the pooled ``forward``.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet as tvr

from pretrain.models.lightweight import LIGHTWEIGHT_ARCHS, LightweightBackbone

# arch -> (block, blocks per stage, width: channels of the stem and the first stage)
ARCHS: dict[str, tuple[type[nn.Module], list[int], int]] = {
    "resnet18": (tvr.BasicBlock, [2, 2, 2, 2], 64),
    "resnet34": (tvr.BasicBlock, [3, 4, 6, 3], 64),
    "resnet50": (tvr.Bottleneck, [3, 4, 6, 3], 64),
    "resnet101": (tvr.Bottleneck, [3, 4, 23, 3], 64),
    # smoke scale only: a ResNet-18 with a quarter of the channels (16-32-64-128), ~8x fewer
    # FLOPs, so that every method's smoke pretraining fits in a CPU minute or two
    "resnet18_w16": (tvr.BasicBlock, [2, 2, 2, 2], 16),
}
STEMS = ("imagenet", "cifar")
STAGES = ("C2", "C3", "C4", "C5")
# output stride -> dilation of (layer3, layer4)
_DILATIONS = {32: (1, 1), 16: (1, 2), 8: (2, 4)}


class ResNetBackbone(tvr.ResNet):
    def __init__(self, arch: str = "resnet50", stem: str = "imagenet", output_stride: int = 32,
                 zero_init_residual: bool = False):
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHS)}")
        if stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; expected one of {STEMS}")
        if output_stride not in _DILATIONS:
            raise ValueError(f"output_stride must be one of {sorted(_DILATIONS)}, got {output_stride}")
        block, layers, width = ARCHS[arch]
        super().__init__(block, layers, zero_init_residual=zero_init_residual)
        if width != 64:  # torchvision builds 64 channels: rebuild stem and stages, same key names
            self.inplanes = width
            self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.layer1 = self._make_layer(block, width, layers[0])
            for i in (2, 3, 4):
                setattr(self, f"layer{i}", self._make_layer(block, width * 2 ** (i - 1), layers[i - 1], stride=2))
            _init_like_torchvision(self, zero_init_residual)
        self.arch, self.stem, self.output_stride = arch, stem, output_stride
        self.width = width
        self.stage_channels = dict(zip(STAGES, resnet_spec(arch)[2]))
        self.num_features = self.stage_channels["C5"]
        self.fc = nn.Identity()
        if stem == "cifar":
            self.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
            self.maxpool = nn.Identity()
        previous = 1
        for stage, dilation in zip((self.layer3, self.layer4), _DILATIONS[output_stride]):
            if dilation > 1:
                dilate_stage(stage, dilation, first_block_dilation=previous)
            previous = dilation

    def forward_stages(self, x: torch.Tensor, last: str = "C5") -> dict[str, torch.Tensor]:
        """Stage outputs C2..``last`` (strides 4, 8, 16, 32 for the ImageNet stem at OS 32);
        the stages after ``last`` are not run."""
        if last not in STAGES:
            raise ValueError(f"unknown stage {last!r}; expected one of {STAGES}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = {}
        for name, layer in zip(STAGES, (self.layer1, self.layer2, self.layer3, self.layer4)):
            x = layer(x)
            out[name] = x
            if name == last:
                break
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.forward_stages(x)["C5"]), 1)

    def extra_repr(self) -> str:
        return f"arch={self.arch}, stem={self.stem}, output_stride={self.output_stride}"


def _init_like_torchvision(model: nn.Module, zero_init_residual: bool) -> None:
    """torchvision ResNet's initialisation, for stages rebuilt after its constructor."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, tvr.Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, tvr.BasicBlock):
                nn.init.zeros_(m.bn2.weight)


def dilate_stage(stage: nn.Sequential, dilation: int, first_block_dilation: int = 1) -> None:
    """Turn a strided ResNet stage into a dilated one (DeepLab style), in place.

    Strides become 1; every 3x3 conv gets ``dilation`` (the first block keeps the
    dilation of the stage before, as torchvision's ``replace_stride_with_dilation``).
    Works for BasicBlock (ResNet-18/34) and Bottleneck stages alike.
    """
    for index, block in enumerate(stage):
        d = first_block_dilation if index == 0 else dilation
        for module in block.modules():
            if isinstance(module, nn.Conv2d):
                module.stride = (1, 1)
                if module.kernel_size == (3, 3):
                    module.dilation, module.padding = (d, d), (d, d)


ALL_ARCHS = (*ARCHS, *LIGHTWEIGHT_ARCHS)


def resnet_spec(arch: str) -> tuple[int, int, tuple[int, int, int, int]]:
    """``(depth, width, stage channels C2..C5)`` of a ResNet ``arch``: the depth as torchvision,
    detectron2 and mmseg number it (18, 34, 50, 101), the width of the stem and first stage (64
    for the standard networks). ``ValueError`` for an arch that is not a ResNet here."""
    if arch not in ARCHS:
        raise ValueError(f"not a ResNet of this suite: {arch!r}; expected one of {sorted(ARCHS)}")
    block, layers, width = ARCHS[arch]
    depth = sum(layers) * (3 if block is tvr.Bottleneck else 2) + 2
    return depth, width, tuple(width * 2 ** i * block.expansion for i in range(4))


def build_backbone(arch: str = "resnet50", stem: str = "imagenet", output_stride: int = 32,
                   **kwargs) -> ResNetBackbone | LightweightBackbone:
    """The backbone ``arch`` names: a ResNet (``ARCHS``) or a lightweight torchvision network
    (``LIGHTWEIGHT_ARCHS``; ImageNet stem and output stride 32 only)."""
    if arch in LIGHTWEIGHT_ARCHS:
        return LightweightBackbone(arch, stem=stem, output_stride=output_stride, **kwargs)
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {list(ALL_ARCHS)}")
    return ResNetBackbone(arch, stem=stem, output_stride=output_stride, **kwargs)
