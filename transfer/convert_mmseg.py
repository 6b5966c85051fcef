"""Suite backbone -> mmsegmentation ResNet weights, and the strict load check.

    python transfer/convert_mmseg.py CKPT OUT.pth [--output-stride 8] [--norm-rescale 0.25]

The papers' backbones are torchvision ResNets (7x7 stride-2 stem conv + max-pool, stride in
the 3x3 conv of a bottleneck, 1x1 conv + BN shortcut). The mmseg class with exactly that
architecture *and* torchvision's key names (``conv1``, ``bn1``, ``layerN.M.convK/bnK``,
``layerN.M.downsample.0/1``) is ``mmseg.models.backbones.ResNet`` with ``style='pytorch'``,
``deep_stem=False``, ``avg_down=False`` (what the DenseCL fork calls ``ResNetNormal``).
mmseg's stock FCN configs use ``ResNetV1c`` instead, whose deep 3x3 stem has other keys
and shapes (``stem.0...``): torchvision checkpoints cannot initialise it. So the weights
keep their names; the converter's work is the checks:

- every key of the checkpoint must be a key of the mmseg ResNet built for that depth and
  every key of that ResNet must be in the checkpoint, with equal shapes (a CIFAR-stem
  checkpoint is refused: its 3x3 ``conv1`` cannot be the 7x7 stem);
- :func:`verify_loaded`, run after mmengine has initialised the model (mmengine's
  ``Pretrained`` init loads with ``strict=False`` and only logs what it skipped), compares
  every backbone tensor of the built model with the converted file and raises
  ``ConversionError`` listing every absent or different tensor.

ResNet-18/34 (PCD's students, Table 6) and ResNet-50/101 are supported. Bottleneck ResNets
compute exactly torchvision's function at output stride 32, 16 and 8 (dilation as
``replace_stride_with_dilation``). torchvision's BasicBlock has no dilated form; mmseg's
dilates the first 3x3 conv of each block in a dilated stage and keeps the second at 1
(``pretrain.models.resnet.dilate_stage`` dilates both), so ResNet-18/34 equal torchvision at
output stride 32 and follow mmseg's convention when dilated. ``--norm-rescale``
applies PCD's NormRescale by a constant (0.25 for FCN fine-tuning) as
``transfer.convert_detectron2.norm_rescale`` defines it. The output file is
``{"state_dict": {key: tensor}, "meta": {...}}``, readable by ``mmengine.runner.load_checkpoint``.
"""
from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pretrain.checkpoint import read_backbone, save
from pretrain.models.resnet import resnet_spec
from transfer.convert_detectron2 import ConversionError, norm_rescale

# the mmseg backbone class whose keys and layers equal torchvision's ResNet
MMSEG_BACKBONE = "ResNet"
# output stride -> (strides, dilations) of the four stages; the first block of a dilated
# stage keeps half the dilation (contract_dilation), as torchvision's replace_stride_with_dilation
STAGES = {32: ((1, 2, 2, 2), (1, 1, 1, 1)), 16: ((1, 2, 2, 1), (1, 1, 1, 2)), 8: ((1, 2, 1, 1), (1, 1, 2, 4))}


def backbone_cfg(arch: str, output_stride: int = 8, norm_cfg: Mapping[str, Any] | None = None,
                 checkpoint: str | None = None) -> dict[str, Any]:
    """mmseg config dict of the torchvision-equivalent ResNet at ``output_stride``."""
    try:
        depth, width, _ = resnet_spec(arch)
    except ValueError as err:
        raise ConversionError(f"no mmseg ResNet for arch {arch!r}: {err}") from err
    if output_stride not in STAGES:
        raise ConversionError(f"output stride must be one of {sorted(STAGES)}, got {output_stride}")
    strides, dilations = STAGES[output_stride]
    cfg = dict(type=MMSEG_BACKBONE, depth=depth, stem_channels=width, base_channels=width, num_stages=4, out_indices=(0, 1, 2, 3),
               strides=strides, dilations=dilations, contract_dilation=True, style="pytorch",
               deep_stem=False, avg_down=False, norm_eval=False,
               norm_cfg=dict(norm_cfg or dict(type="BN", requires_grad=True)))
    if checkpoint is not None:
        cfg["init_cfg"] = dict(type="Pretrained", checkpoint=str(checkpoint))
    return cfg


def build_mmseg_backbone(arch: str, output_stride: int = 8) -> nn.Module:
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    return MODELS.build(backbone_cfg(arch, output_stride))


def check_keys(state: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor], source: str) -> None:
    """Same key set and shapes, or a ConversionError naming every offending key."""
    missing = sorted(set(model_state) - set(state))
    unexpected = sorted(set(state) - set(model_state))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs mmseg {tuple(model_state[k].shape)}"
                    for k in set(state) & set(model_state) if state[k].shape != model_state[k].shape)
    if missing or unexpected or shapes:
        lines = [f"{source} does not fit mmseg {MMSEG_BACKBONE}:"]
        for title, keys in (("keys the mmseg backbone needs but the checkpoint lacks", missing),
                            ("checkpoint keys the mmseg backbone does not have", unexpected),
                            ("shape mismatches", shapes)):
            if keys:
                lines.append(f"  {title} ({len(keys)}): " + ", ".join(keys))
        raise ConversionError("\n".join(lines))


def to_mmseg(path: str | Path, norm_rescale_factor: float | None = None
             ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(mmseg ResNet state, metadata) of any checkpoint ``pretrain.checkpoint.read_backbone`` imports."""
    payload = read_backbone(path)
    if payload["stem"] != "imagenet":
        raise ConversionError(
            f"{path}: backbone has the {payload['stem']!r} stem (3x3 conv, no max-pool); the papers' FCN "
            "uses the torchvision 7x7 stride-2 stem + max-pool. Pretrain with stem=imagenet for segmentation.")
    state = {k: v.detach().cpu().clone() for k, v in payload["state_dict"].items()}
    if norm_rescale_factor is not None:
        state = norm_rescale(state, norm_rescale_factor)
    # key set and shapes do not depend on the output stride
    check_keys(state, build_mmseg_backbone(payload["arch"]).state_dict(), str(path))
    meta = {k: v for k, v in payload.items() if k not in ("state_dict", "imported")}
    meta.update(source=str(path), mmseg_backbone=MMSEG_BACKBONE, norm_rescale=norm_rescale_factor)
    return state, meta


def write(state: Mapping[str, torch.Tensor], meta: Mapping[str, Any], out: str | Path) -> Path:
    return save({"state_dict": dict(state), "meta": dict(meta)}, out)


def convert(path: str | Path, out: str | Path, norm_rescale_factor: float | None = None
            ) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """Convert ``path`` and write it to ``out``; returns (out, state, meta)."""
    state, meta = to_mmseg(path, norm_rescale_factor)
    return write(state, meta, out), state, meta


def verify_loaded(backbone: nn.Module, expected: Mapping[str, torch.Tensor], source: str = "") -> int:
    """Every tensor of the built backbone equals the converted one and none is absent.

    Returns the number of tensors compared; otherwise ConversionError lists the names."""
    state = backbone.state_dict()
    absent = sorted(set(state) - set(expected))
    extra = sorted(set(expected) - set(state))
    differ = sorted(k for k in set(state) & set(expected) if not (
        state[k].shape == expected[k].shape
        and torch.equal(state[k].detach().cpu(), expected[k].to(state[k].dtype))))
    if absent or extra or differ:
        lines = [f"backbone weights did not land in the mmseg model{f' from {source}' if source else ''}:"]
        for title, keys in (("model tensors with no converted weight", absent),
                            ("converted weights with no model tensor", extra),
                            ("tensors whose values differ from the converted weights", differ)):
            if keys:
                lines.append(f"  {title} ({len(keys)}): " + ", ".join(keys))
        raise ConversionError("\n".join(lines))
    return len(state)


def load_and_verify(path: str | Path, arch: str, output_stride: int = 8) -> int:
    """Build the mmseg ResNet, let mmengine initialise it from ``path`` (its ``Pretrained``
    init) and verify every tensor: the check the harnesses run inside their Runner."""
    import logging

    from mmengine.logging import MMLogger
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    backbone = MODELS.build(backbone_cfg(arch, output_stride, checkpoint=str(path)))
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # mmengine logs one init line per tensor
    try:
        backbone.init_weights()
    finally:
        logger.setLevel(level)
    return verify_loaded(backbone, _load_checkpoint(str(path), map_location="cpu")["state_dict"], str(path))


def main(argv: Iterable[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="any checkpoint pretrain.checkpoint.read_backbone imports")
    parser.add_argument("out", help="output .pth for mmseg (backbone init_cfg Pretrained)")
    parser.add_argument("--norm-rescale", type=float, default=None,
                        help="PCD NormRescale: multiply conv weights by this constant (PCD FCN: 0.25)")
    parser.add_argument("--output-stride", type=int, default=8, choices=sorted(STAGES),
                        help="output stride of the mmseg model the check builds (weights do not depend on it)")
    args = parser.parse_args(None if argv is None else list(argv))
    out, state, meta = convert(args.ckpt, args.out, args.norm_rescale)
    checked = load_and_verify(out, meta["arch"], args.output_stride)
    print(f"{len(state)} tensors of {meta['arch']} ({meta.get('method')}) -> {out}; "
          f"mmengine-loaded into mmseg {MMSEG_BACKBONE} (OS {args.output_stride}): {checked} tensors identical")
    return out


if __name__ == "__main__":
    main()
