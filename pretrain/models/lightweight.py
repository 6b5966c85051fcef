"""Lightweight backbones of ReSSL Table 13 (EfficientNet-B0/B1, MobileNet-V3-Large), from
torchvision, as pooled feature extractors.

``LightweightBackbone`` keeps the torchvision model's ``features`` module *as is* (built with
``weights=None``), so its ``state_dict`` has torchvision's key names (``features.*``): exported
weights load into ``torchvision.models.<arch>()`` with only the classifier missing. ``forward``
returns the global-average-pooled output of ``features`` (``num_features`` wide):

    efficientnet_b0      1280   (features end with the 1x1 conv 320 -> 1280)
    efficientnet_b1      1280
    mobilenet_v3_large    960   (torchvision puts its 960 -> 1280 layer in the classifier,
                                 which is not part of the backbone)

Choices the ReSSL seed does not state (it follows SEED/DisCo's settings for these networks):
no stochastic depth in EfficientNet during pretraining (torchvision's supervised default is
0.2; SSL recipes list no such regularisation), torchvision's own initialisation and BN
settings, and the 960-d MobileNet-V3 feature above (timm-style MobileNet-V3, which SEED/DisCo
may have used, applies a 960 -> 1280 1x1 conv after pooling and reports 1280).

Only the ImageNet stem and output stride 32 exist; the dense interfaces of the ResNets
(``forward_stages``, ``stage_channels``, dilation) raise ``NotImplementedError``.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision import models as tvm

# arch -> torchvision constructor, extra constructor arguments
LIGHTWEIGHT_ARCHS = {
    "efficientnet_b0": (tvm.efficientnet_b0, {"stochastic_depth_prob": 0.0}),
    "efficientnet_b1": (tvm.efficientnet_b1, {"stochastic_depth_prob": 0.0}),
    "mobilenet_v3_large": (tvm.mobilenet_v3_large, {}),
}


class LightweightBackbone(nn.Module):
    """torchvision ``<arch>(weights=None).features`` + global average pooling."""

    def __init__(self, arch: str = "efficientnet_b0", stem: str = "imagenet", output_stride: int = 32,
                 **kwargs):
        super().__init__()
        if arch not in LIGHTWEIGHT_ARCHS:
            raise ValueError(f"unknown lightweight arch {arch!r}; expected one of {sorted(LIGHTWEIGHT_ARCHS)}")
        if stem != "imagenet":
            raise ValueError(f"{arch}: only the 'imagenet' stem exists (torchvision's network), got {stem!r}")
        if output_stride != 32:
            raise NotImplementedError(f"{arch}: output_stride {output_stride} (dilation) is implemented for "
                                      f"ResNets only; lightweight backbones have output stride 32")
        ctor, defaults = LIGHTWEIGHT_ARCHS[arch]
        self.features = ctor(weights=None, **{**defaults, **kwargs}).features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.arch, self.stem, self.output_stride = arch, stem, output_stride
        self.num_features = last_conv_channels(self.features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.features(x)), 1)

    def forward_stages(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{self.arch}: forward_stages (dense stage maps C2..C5) is implemented for "
                                  f"ResNets only")

    @property
    def stage_channels(self) -> dict[str, int]:
        raise NotImplementedError(f"{self.arch}: stage_channels (dense stage maps, e.g. CGH's hypercolumn) is "
                                  f"implemented for ResNets only")

    def extra_repr(self) -> str:
        return f"arch={self.arch}, stem={self.stem}, num_features={self.num_features}"


def last_conv_channels(features: nn.Module) -> int:
    convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels
