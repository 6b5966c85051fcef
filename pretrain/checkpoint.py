"""The suite's one checkpoint format.

A *training checkpoint* (``.pth``) holds everything needed to resume exactly::

    {"format": "ssl-repro/train", "version": 1,
     "models": {name: state_dict}, "optimizer": ..., "scaler": ..., "state": {...},
     "rng": {...}, "epoch": int, "step": int, "config": {...resolved config...},
     "git_commit": str, "backbone": <backbone payload, below>}

A *backbone payload* (also written on its own as ``backbone.pth``) is what every
downstream harness loads::

    {"format": "ssl-repro/backbone", "version": 1, "arch": "resnet50", "stem": "imagenet",
     "method": "mocov2", "source_run": "...", "git_commit": "...",
     "config": "ressl_cifar10_best", "scale": "full", "reproduces": [{paper, table, method, ...}],
     "state_dict": {torchvision key names: a ResNet without fc, or the ``features.*`` of
                    EfficientNet-B0/B1 / MobileNet-V3-Large (``arch`` efficientnet_b0, ...)},
     and what the method's ``export_extra()`` adds (CGH: "hypercolumn", its hypercolumn head)}

Files are written atomically and read with ``torch.load(weights_only=True)``. Loading
a backbone is strict: any missing, unexpected or mis-shaped key, or a different
architecture, raises ``CheckpointError`` listing the keys.
"""
from __future__ import annotations

import os
import pickle
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import Bottleneck

from evaluation.provenance import atomic_writer, git_commit
from pretrain.importers import LayoutError, import_backbone_state, import_teacher_state, load_weights_pickle
from pretrain.models.lightweight import LightweightBackbone
from pretrain.models.resnet import ARCHS, ResNetBackbone, build_backbone

Backbone = ResNetBackbone | LightweightBackbone  # what build_backbone returns

TRAIN_FORMAT = "ssl-repro/train"
BACKBONE_FORMAT = "ssl-repro/backbone"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used as asked; the message names file and keys."""


# ----------------------------------------------------------------------------- I/O
def save(obj: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` through a temp file + rename: an interrupted write keeps the old file."""
    path = Path(path)
    with atomic_writer(path) as f:
        torch.save(dict(obj), f)
    return path


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"cannot read checkpoint {path} (corrupted, truncated or not a "
                              f"PyTorch file): {err}") from err
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict")
    return obj


# ------------------------------------------------------------------------ RNG state
def rng_state() -> dict[str, Any]:
    """Every random generator a training step may draw from, in weights_only-safe types."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------ backbones
def backbone_payload(backbone: Backbone, *, method: str, source_run: str = "",
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    state = {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}
    return {"format": BACKBONE_FORMAT, "version": VERSION, "arch": backbone.arch,
            "stem": backbone.stem, "method": method, "source_run": str(source_run),
            "git_commit": git_commit(), "state_dict": state, **dict(extra or {})}


def run_metadata(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a backbone file says about the run that made it, for the harnesses' records:
    ``config`` (name), ``scale`` (smoke/reduced/full) and ``reproduces`` (the published rows
    the config stands behind; see pretrain/make_configs.py)."""
    return {"config": str(config.get("name", "")), "scale": str(config.get("scale", "smoke")),
            "reproduces": list(config.get("reproduces") or [])}


def save_backbone(path: str | os.PathLike, backbone: Backbone, **meta) -> Path:
    return save(backbone_payload(backbone, **meta), path)


def read_backbone(path: str | os.PathLike) -> dict[str, Any]:
    """The backbone payload of any checkpoint the suite can import.

    Accepts the suite's backbone files and training checkpoints, and the official layouts
    of ``pretrain.importers`` (bare torchvision/timm ResNet state_dicts, MoCo v1/v2/v3,
    BYOL, DINO, detectron2 ``.pkl``): arch and stem inferred from the keys, heads dropped
    by name and listed in ``payload["imported"]``.
    """
    if Path(path).suffix == ".pkl":
        if not Path(path).is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        try:
            obj = load_weights_pickle(path)
        except (pickle.UnpicklingError, LayoutError, EOFError) as err:
            raise CheckpointError(f"cannot read weights pickle {path}: {err}") from err
    else:
        obj = load(path)
    fmt = obj.get("format")
    if fmt == BACKBONE_FORMAT:
        payload = obj
    elif fmt == TRAIN_FORMAT:
        if "backbone" not in obj:
            raise CheckpointError(f"training checkpoint {path} has no 'backbone' entry")
        payload = obj["backbone"]
    elif fmt is None:
        try:
            state, info = import_backbone_state(obj)
        except LayoutError as err:
            raise CheckpointError(f"{path}: {err}") from err
        payload = {"format": BACKBONE_FORMAT, "version": VERSION, "arch": _infer_arch(state, path),
                   "stem": "cifar" if state["conv1.weight"].shape[-1] == 3 else "imagenet",
                   "method": info["layout"], "source_run": str(path), "imported": info,
                   "state_dict": state}
    else:
        raise CheckpointError(f"{path}: unrecognised checkpoint layout (format={fmt!r}, "
                              f"top-level keys {sorted(obj)[:12]})")
    missing = {"arch", "stem", "state_dict"} - set(payload)
    if missing:
        raise CheckpointError(f"{path}: backbone payload lacks {sorted(missing)}")
    return payload


def read_teacher(path: str | os.PathLike, branch: str = "momentum") -> dict[str, Any]:
    """A distillation teacher: ``{"arch", "stem", "state_dict", "head_state_dict", "imported"}``.

    Reads an official MoCo v3 checkpoint or a suite training checkpoint (``checkpoint.pth``, whose
    ``config`` names the method that wrote it) through ``importers.import_teacher_state``; the
    exported ``backbone.pth`` is refused (it has no projection head)."""
    obj = load(path)
    fmt = obj.get("format")
    if fmt == BACKBONE_FORMAT:
        raise CheckpointError(f"{path} is an exported backbone: it has no projection head, which a "
                              f"distillation teacher needs; give the run's full {Path(path).parent}/checkpoint.pth")
    try:
        if fmt == TRAIN_FORMAT:
            method = obj.get("config", {}).get("method", {}).get("name")
            state, head, info = import_teacher_state(obj["models"]["method"], branch, suite_method=method)
        else:
            state, head, info = import_teacher_state(obj, branch)
    except LayoutError as err:
        raise CheckpointError(f"teacher {path}: {err}") from err
    return {"arch": _infer_arch(state, path), "stem": "cifar" if state["conv1.weight"].shape[-1] == 3 else "imagenet",
            "state_dict": state, "head_state_dict": head, "imported": info}


def _infer_arch(state: Mapping[str, torch.Tensor], path) -> str:
    if "conv1.weight" not in state:
        raise CheckpointError(f"{path}: not a ResNet state_dict (no 'conv1.weight'; keys start "
                              f"with {sorted(state)[:8]})")
    n_blocks = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")})
                     for i in range(1, 5))
    bottleneck = any(k.endswith("conv3.weight") for k in state)
    width = int(state["conv1.weight"].shape[0])  # channels of the stem (64, or a narrow smoke ResNet's)
    for arch, (block, layers, arch_width) in ARCHS.items():
        if (tuple(layers), block is Bottleneck, arch_width) == (n_blocks, bottleneck, width):
            return arch
    raise CheckpointError(f"{path}: cannot infer the ResNet (blocks per stage {n_blocks}, "
                          f"{'Bottleneck' if bottleneck else 'BasicBlock'}, stem width {width})")


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that refuses any partial load, naming every offending key."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                    for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        lines = [f"checkpoint {source} does not match {type(module).__name__}:"]
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                            ("shape mismatches", shapes)):
            if keys:
                lines.append(f"  {title} ({len(keys)}): " + ", ".join(keys))
        raise CheckpointError("\n".join(lines))
    module.load_state_dict(state, strict=True)


def load_backbone(path: str | os.PathLike, arch: str | None = None, stem: str | None = None,
                  output_stride: int = 32) -> tuple[Backbone, dict[str, Any]]:
    """Build the backbone a checkpoint describes and load every weight (strictly).

    ``arch``/``stem`` given by the caller must agree with the checkpoint.
    Returns the model and the payload's metadata (everything but the weights).
    """
    payload = read_backbone(path)
    for key, wanted in (("arch", arch), ("stem", stem)):
        if wanted is not None and payload[key] != wanted:
            raise CheckpointError(f"{path}: checkpoint {key} is {payload[key]!r}, "
                                  f"but {wanted!r} was requested")
    try:
        model = build_backbone(payload["arch"], stem=payload["stem"], output_stride=output_stride)
    except ValueError as err:  # an arch/stem this suite does not build
        raise CheckpointError(f"{path}: cannot build the checkpoint's backbone: {err}") from err
    load_state_strict(model, payload["state_dict"], str(path))
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta


def training_checkpoint(*, models: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer,
                        scaler: Any, state: Mapping[str, Any], epoch: int, step: int,
                        config: Mapping[str, Any], backbone: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble a full training checkpoint (see module docstring)."""
    return {"format": TRAIN_FORMAT, "version": VERSION,
            "models": {k: m.state_dict() for k, m in models.items()},
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "state": dict(state), "rng": rng_state(), "epoch": int(epoch), "step": int(step),
            "config": dict(config), "git_commit": git_commit(), "backbone": dict(backbone)}
