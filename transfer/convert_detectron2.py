"""Suite backbone -> detectron2 ResNet weights (MoCo's renaming), and the strict load check.

    python transfer/convert_detectron2.py CKPT OUT.pkl [--norm-rescale 0.25]

Renaming (the facts of MoCo's convert-pretrain-to-detectron2): a key without "layer" gets
the prefix ``stem.``; ``layer1..4`` -> ``res2..5``; ``bn1/2/3`` -> ``conv1/2/3.norm``;
``downsample.0`` -> ``shortcut``, ``downsample.1`` -> ``shortcut.norm``. Bottleneck (R50/101)
and BasicBlock (R18/34) ResNets alike. The ``.pkl`` written by the command line is the
MoCo file format (``{"model": {name: ndarray}, "__author__", "matching_heuristics": True}``)
for use with MoCo's ``train_net.py``/plain detectron2.

The suite's harnesses do *not* rely on detectron2's name-matching heuristics: they place
each converted tensor under its exact name in the built model (``place_in_model``: every
converted key must land on exactly one model key with the same shape, and every backbone
key of the model must be provided), load it with detectron2's checkpointer and then
compare every tensor (``verify_loaded``). A missing, unmatched or unequal tensor is a
``ConversionError`` naming the keys -- a half-loaded backbone cannot pass.

A checkpoint with the CIFAR stem (3x3 conv, no max-pool) is refused: detectron2's ResNet
stem is the 7x7 stride-2 convolution + max-pool, so those weights cannot initialise it.
"""
from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from evaluation.provenance import atomic_writer
from pretrain.checkpoint import read_backbone

AUTHOR = "ssl-repro"
COUNTER = "num_batches_tracked"  # BN step counters: loaded where the model has them, never required
_TV_KEY = re.compile(r"^(conv1\.weight|bn1\.\w+|layer[1-4]\.\d+\.(conv[1-3]\.weight|bn[1-3]\.\w+|"
                     r"downsample\.[01]\.\w+))$")
# where a converted key may live in a detectron2 model: plain ResNet backbone (C4/DC5),
# FPN's bottom-up ResNet, or the C4 res5 head inside the ROI heads
MODEL_PREFIXES = ("backbone.", "backbone.bottom_up.", "roi_heads.")
_MODEL_BACKBONE_KEY = re.compile(r"^(backbone\.(bottom_up\.)?|roi_heads\.)(stem\.|res[2-5]\.\d+\.)")


class ConversionError(RuntimeError):
    """Weights that cannot be converted or did not land; the message lists the keys."""


def detectron2_name(key: str) -> str:
    """torchvision ResNet key -> detectron2 name, MoCo's rules in MoCo's order."""
    if not _TV_KEY.match(key):
        raise ConversionError(f"{key!r} is not a torchvision ResNet backbone key")
    new = key if "layer" in key else "stem." + key
    for t in range(1, 5):
        new = new.replace(f"layer{t}", f"res{t + 1}")
    for t in range(1, 4):
        new = new.replace(f"bn{t}", f"conv{t}.norm")
    return new.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def to_detectron2(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a whole torchvision-keyed backbone state (no ``fc``); names must stay unique."""
    bad = sorted(k for k in state if not _TV_KEY.match(k))
    if bad:
        raise ConversionError(f"not torchvision ResNet backbone keys ({len(bad)}): {', '.join(bad)}")
    out = {detectron2_name(k): v.detach().cpu().clone() for k, v in state.items()}
    assert len(out) == len(state)
    return out


def norm_rescale(state: Mapping[str, torch.Tensor], factor: float) -> dict[str, torch.Tensor]:
    """PCD's NormRescale by a constant (``factor`` 0.25 for C4/FCN fine-tuning).

    Every convolution weight (4-d tensor) is multiplied by ``factor``; the BN running
    mean/variance that follow are scaled by ``factor``/``factor**2`` so that the network
    computes the same function (BN normalises the scale away) -- only the weight norm,
    i.e. the effective step size of fine-tuning, changes.
    """
    if factor <= 0:
        raise ValueError(f"NormRescale factor must be positive, got {factor}")
    out = {}
    for key, value in state.items():
        if value.dim() == 4:
            value = value * factor
        elif key.endswith("running_mean"):
            value = value * factor
        elif key.endswith("running_var"):
            value = value * factor ** 2
        out[key] = value.clone()
    return out


PCD_METHOD = "pcd"  # the ``method`` a PCD checkpoint carries (backbone.pth metadata)
PCD_NORM_RESCALE = 0.25  # PCD seed 002, Sec. 4.1: "When fine-tuning C4 or FCN backbones pre-trained by PCD,
#                         we employ this technique to multiply the weights by a constant 0.25"


def decide_norm_rescale(method: str | None, requested: float | None, c4_or_fcn: bool) -> float | None:
    """The NormRescale factor of one fine-tuning run, decided by the checkpoint's ``method``.

    ``requested`` None (the default everywhere): PCD's constant 0.25 for a checkpoint whose
    method is ``pcd`` fine-tuned as a C4 or FCN backbone (PCD: not for FPN), else none --
    baselines are never rescaled. ``requested`` 0: none. A positive ``requested`` overrides the
    constant, for a PCD checkpoint only: on any other method it is a ``ConversionError``.
    """
    if requested is not None and requested < 0:
        raise ConversionError(f"NormRescale factor must be positive (0 = off), got {requested}")
    if requested and method != PCD_METHOD:
        raise ConversionError(f"NormRescale is PCD's fine-tuning technique (checkpoints with method "
                              f"{PCD_METHOD!r}); this checkpoint's method is {method!r}, so "
                              f"--norm-rescale {requested} is refused (baselines are never rescaled)")
    if requested is not None:
        return requested or None
    return PCD_NORM_RESCALE if method == PCD_METHOD and c4_or_fcn else None


def suite_to_detectron2(path: str | Path, norm_rescale_factor: float | None = None
                        ) -> tuple[dict[str, torch.Tensor], dict]:
    """(detectron2-named backbone tensors, checkpoint metadata) of any importable checkpoint."""
    payload = read_backbone(path)
    if payload["stem"] != "imagenet":
        raise ConversionError(
            f"{path}: backbone has the {payload['stem']!r} stem (3x3 conv, no max-pool); detectron2's "
            "ResNet stem is a 7x7 stride-2 conv + max-pool, so these weights cannot initialise a detector. "
            "Pretrain with stem=imagenet for detection transfer.")
    state = payload["state_dict"]
    if norm_rescale_factor is not None:
        state = norm_rescale(state, norm_rescale_factor)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return to_detectron2(state), meta


def write_pickle(named: Mapping[str, torch.Tensor], path: str | Path, author: str = AUTHOR) -> Path:
    """MoCo's detectron2 file: numpy arrays, ``__author__``, ``matching_heuristics`` True."""
    path = Path(path)
    obj = {"model": {k: v.numpy() for k, v in named.items()}, "__author__": author,
           "matching_heuristics": True}
    with atomic_writer(path) as f:
        pickle.dump(obj, f)
    return path


def place_in_model(named: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]
                   ) -> dict[str, torch.Tensor]:
    """Exact model names for every converted tensor, or a ConversionError listing
    unplaceable keys (none or several candidates), shape mismatches and backbone keys of
    the model that no converted tensor provides."""
    placed: dict[str, torch.Tensor] = {}
    unplaced, ambiguous, shapes = [], [], []
    for key, value in named.items():
        hits = [p + key for p in MODEL_PREFIXES if p + key in model_state]
        if len(hits) > 1:
            ambiguous.append(f"{key} -> {hits}")
        elif not hits:
            if not key.endswith(COUNTER):
                unplaced.append(key)
        elif tuple(model_state[hits[0]].shape) != tuple(value.shape):
            shapes.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(model_state[hits[0]].shape)}")
        else:
            placed[hits[0]] = value
    missing = sorted(k for k in model_state if _MODEL_BACKBONE_KEY.match(k)
                     and not k.endswith(COUNTER) and k not in placed)
    problems = [(t, v) for t, v in (("converted keys with no model key", unplaced),
                                    ("converted keys with several model keys", ambiguous),
                                    ("shape mismatches", shapes), ("model backbone keys not provided", missing))
                if v]
    if problems:
        raise ConversionError("backbone weights do not fit the detectron2 model:\n" + "\n".join(
            f"  {title} ({len(keys)}): {', '.join(sorted(keys))}" for title, keys in problems))
    return placed


def verify_loaded(model: torch.nn.Module, expected: Mapping[str, torch.Tensor]) -> int:
    """After detectron2's checkpointer has loaded: every expected tensor is in the model
    with identical values. Returns the number checked; ConversionError lists the others."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    state = model.state_dict()
    absent = sorted(k for k in expected if k not in state)
    differ = sorted(k for k in expected if k in state and not (
        state[k].shape == expected[k].shape and torch.equal(state[k].detach().cpu(), expected[k].to(state[k].dtype))))
    if absent or differ:
        raise ConversionError("backbone did not load into the detectron2 model:"
                              + (f"\n  absent ({len(absent)}): {', '.join(absent)}" if absent else "")
                              + (f"\n  different values ({len(differ)}): {', '.join(differ)}" if differ else ""))
    return len(expected)


def main(argv: Iterable[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ckpt", help="any checkpoint pretrain.checkpoint.read_backbone imports")
    parser.add_argument("out", help="output .pkl (MoCo/detectron2 format)")
    parser.add_argument("--norm-rescale", type=float, default=None,
                        help="multiply conv weights by this constant (PCD NormRescale: 0.25; PCD checkpoints "
                             "only; not applied unless given)")
    args = parser.parse_args(argv)
    named, meta = suite_to_detectron2(args.ckpt)
    factor = decide_norm_rescale(meta.get("method"), args.norm_rescale, c4_or_fcn=False)
    if factor:
        named = norm_rescale(named, factor)
    path = write_pickle(named, args.out)
    print(f"{len(named)} tensors of {meta['arch']} ({meta.get('method')}) -> {path}")
    return path


if __name__ == "__main__":
    main()
