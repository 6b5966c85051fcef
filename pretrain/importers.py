"""Importers: official checkpoint layouts -> the suite's torchvision-keyed backbone state.

Each layout says where the backbone lives in a checkpoint (a container key path and a
key prefix) and which keys next to it belong to heads/projectors and are dropped *by
name*. Everything else under the prefix is kept; the caller then loads it with
``checkpoint.load_state_strict``, so a key that is neither backbone nor a known head
is reported as unexpected and a backbone key that is absent as missing -- never a
silently partial load.

| layout          | where the backbone is                                          | dropped            |
|-----------------|----------------------------------------------------------------|--------------------|
| moco_v1_v2      | ``state_dict`` / ``module.encoder_q.*`` (MoCo v1/v2, PixPro-like)| ``fc.*`` (head)    |
| moco_v3         | ``state_dict`` / ``module.base_encoder.*``                     | ``fc.*`` (projector)|
| byol_lewel      | ``state_dict`` / ``module.online_net.backbone.*`` (LEWEL/EMAN BYOL) | ``fc.*``     |
| byol_sequential | ``online_network_state_dict`` / ``encoder.<i>.*`` (PyTorch-BYOL: ResNet children in a Sequential) | ``projetion.*``, ``projection.*`` |
| dino            | ``teacher`` (else ``student``) / ``module.backbone.*`` or ``backbone.*`` | ``head.*`` |
| backbone_prefix | ``state_dict`` / ``backbone.*`` (solo-learn, mmselfsup BYOL ...) | ``fc.*``          |
| timm            | ``state_dict`` or ``state_dict_ema`` / ``conv1.weight`` ... (timm train checkpoints; timm resnet keys equal torchvision's) | ``fc.*`` |
| torchvision     | top level / ``conv1.weight`` ... (bare state_dict; also DINO's released ResNet) | ``fc.*``  |
| detectron2      | ``model`` / ``stem.conv1.weight``, ``res2.0...`` (MoCo's convert-pretrain-to-detectron2 pickles and transfer/convert_detectron2.py output) | ``stem.fc.*`` |
| ressl           | ``model`` / ``module.encoder_q.net.*`` (ReSSL's released checkpoints: ReSSL@4d67daa ``linear_eval.py`` keeps exactly these keys; ``encoder_q.head`` is the projector) | ``fc.*`` |
| cgh             | ``net`` / ``module.encoder_q.*`` (CGH's released checkpoints: Cross-Context_Learning@d064b00 ``detection/convert-pretrain-to-detectron2.py`` reads ``obj["net"]``, prefix ``module.encoder_q.``) | ``fc.*`` (MLP projector) |

Detection is automatic (first layout whose container and prefix are present); when
nothing matches, the error lists the checkpoint's top-level keys.
"""
from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class LayoutError(ValueError):
    """A checkpoint whose layout no importer knows, or whose keys cannot be mapped."""


@dataclass(frozen=True)
class Layout:
    name: str
    containers: tuple[tuple[str, ...], ...]  # candidate key paths to the state_dict; () = top level
    prefixes: tuple[str, ...]  # candidate backbone key prefixes (first present wins)
    heads: tuple[str, ...] = ()  # key prefixes (after the backbone prefix) dropped explicitly
    rename: Callable[[str], str] | None = None  # layout key -> torchvision key
    sentinel: str = ""  # for an empty prefix: a key that must be present
    note: str = field(default="", compare=False)


# ------------------------------------------------------------------ key renamers
_SEQUENTIAL_CHILDREN = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


def _from_sequential(key: str) -> str:
    """``nn.Sequential(*list(resnet.children())[:-1])`` index -> torchvision attribute."""
    head, _, rest = key.partition(".")
    if head not in _SEQUENTIAL_CHILDREN:
        raise LayoutError(f"key {key!r}: child index {head} is not a ResNet child with weights "
                          f"(expected one of {sorted(_SEQUENTIAL_CHILDREN)})")
    return f"{_SEQUENTIAL_CHILDREN[head]}.{rest}"


_D2_RULES = [  # detectron2 (MoCo convention) -> torchvision, inverse of transfer/convert_detectron2
    (re.compile(r"^stem\.conv1\.norm\."), "bn1."),
    (re.compile(r"^stem\.conv1\."), "conv1."),
    (re.compile(r"^res([2-5])\."), lambda m: f"layer{int(m.group(1)) - 1}."),
    (re.compile(r"\.conv([123])\.norm\."), lambda m: f".bn{m.group(1)}."),
    (re.compile(r"\.shortcut\.norm\."), ".downsample.1."),
    (re.compile(r"\.shortcut\."), ".downsample.0."),
]


def from_detectron2_name(key: str) -> str:
    """``res2.0.conv1.norm.weight`` -> ``layer1.0.bn1.weight`` (MoCo renaming, inverted)."""
    if not (key.startswith("stem.conv1.") or re.match(r"^res[2-5]\.\d+\.", key)):
        raise LayoutError(f"key {key!r} is not a detectron2 ResNet key (stem.conv1.* / res2..res5.*)")
    for pattern, repl in _D2_RULES:
        key = pattern.sub(repl, key)
    return key


LAYOUTS: tuple[Layout, ...] = (
    Layout("moco_v1_v2", (("state_dict",),), ("module.encoder_q.", "encoder_q."), ("fc.",)),
    Layout("moco_v3", (("state_dict",),), ("module.base_encoder.", "base_encoder."), ("fc.",)),
    Layout("byol_lewel", (("state_dict",),), ("module.online_net.backbone.", "online_net.backbone."),
           ("fc.",)),
    Layout("byol_sequential", (("online_network_state_dict",),), ("encoder.",), (),
           rename=_from_sequential, note="heads outside the prefix (projetion/projection) are ignored"),
    Layout("dino", (("teacher",), ("student",)), ("module.backbone.", "backbone."), ("fc.",)),
    Layout("backbone_prefix", (("state_dict",),), ("module.backbone.", "backbone."), ("fc.",)),
    Layout("timm", (("state_dict",), ("state_dict_ema",)), ("module.", ""), ("fc.",),
           sentinel="conv1.weight"),
    Layout("torchvision", ((),), ("module.", ""), ("fc.",), sentinel="conv1.weight"),
    Layout("detectron2", (("model",),), ("",), ("stem.fc.",), rename=from_detectron2_name,
           sentinel="stem.conv1.weight"),
    Layout("ressl", (("model",),), ("module.encoder_q.net.", "encoder_q.net."), ("fc.",)),
    Layout("cgh", (("net",),), ("module.encoder_q.", "encoder_q."), ("fc.",)),
)


def _container(obj: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any] | None:
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return None
        obj = obj[key]
    if not isinstance(obj, Mapping) or not obj:
        return None
    return obj


def _match(layout: Layout, obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], tuple[str, ...], str] | None:
    for path in layout.containers:
        state = _container(obj, path)
        if state is None:
            continue
        for prefix in layout.prefixes:
            if layout.sentinel:
                found = prefix + layout.sentinel in state
            else:
                found = any(isinstance(k, str) and k.startswith(prefix) for k in state)
            if found:
                return state, path, prefix
    return None


def detect_layout(obj: Mapping[str, Any]) -> Layout:
    """The first layout that fits ``obj``; LayoutError listing the top-level keys otherwise."""
    for layout in LAYOUTS:
        if _match(layout, obj) is not None:
            return layout
    raise LayoutError(f"no importer fits this checkpoint: top-level keys {_describe(obj)}"
                      + _inside_known_containers(obj) + "; known layouts: "
                      + "; ".join(f"{l.name} ({'/'.join(l.containers[0]) or '<top>'}: "
                                  f"{l.prefixes[0] or l.sentinel}*)" for l in LAYOUTS))


def _inside_known_containers(obj: Mapping[str, Any]) -> str:
    """For an unrecognised checkpoint: the first keys of every container a layout names that
    is present (e.g. a ReSSL ``model`` whose keys lack the ``module.encoder_q.net.`` prefix)."""
    paths = sorted({path for layout in LAYOUTS for path in layout.containers if path})
    found = [(path, state) for path in paths if (state := _container(obj, path)) is not None]
    return "".join(f"; under '{'/'.join(path)}': {_describe(state, limit=4)}" for path, state in found)


def _describe(obj: Mapping[str, Any], limit: int = 16) -> str:
    keys = sorted(map(str, obj))
    shown = ", ".join(keys[:limit]) + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")
    return f"[{shown}]"


def _as_tensor(key: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, order="C", copy=True))  # keeps 0-d arrays 0-d
    raise LayoutError(f"key {key!r} holds a {type(value).__name__}, not a tensor/array")


def import_backbone_state(obj: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(torchvision-keyed backbone state, info) of a checkpoint in any known layout.

    ``info`` = {"layout", "container", "prefix", "dropped": sorted dropped keys}.
    """
    layout = detect_layout(obj)
    state, path, prefix = _match(layout, obj)  # type: ignore[misc]
    kept: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        if not (isinstance(key, str) and key.startswith(prefix)):
            continue
        inner = key[len(prefix):]
        if any(inner.startswith(h) for h in layout.heads):
            dropped.append(key)
            continue
        name = layout.rename(inner) if layout.rename else inner
        if name in kept:
            raise LayoutError(f"layout {layout.name}: two keys map to {name!r} (second: {key!r})")
        kept[name] = _as_tensor(key, value)
    if not kept:
        raise LayoutError(f"layout {layout.name}: nothing but heads under '{prefix}' "
                          f"(dropped {dropped[:8]})")
    info = {"layout": layout.name, "container": "/".join(path), "prefix": prefix,
            "dropped": sorted(dropped)}
    return kept, info


# ------------------------------------------------------------ pickled numpy weights
_PICKLE_ALLOWED = {
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _WeightsUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays only: any other global is refused (no code runs)."""

    def find_class(self, module: str, name: str):
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights pickle")


def load_weights_pickle(path: str | Path) -> dict[str, Any]:
    """A detectron2-style ``.pkl`` (``{"model": {name: ndarray}, "__author__": ...}``), read
    with an unpickler that admits numpy arrays and plain containers only."""
    with open(path, "rb") as f:
        obj = _WeightsUnpickler(f, encoding="latin1").load()
    if not isinstance(obj, dict):
        raise LayoutError(f"{path}: pickle holds a {type(obj).__name__}, expected a dict")
    return obj


# ------------------------------------------------- distillation teachers: backbone + projection head
# A distillation teacher (PCD) keeps its projection head, so a teacher is read as two states: the
# backbone (torchvision keys) and the head (the keys of its nn.Sequential: "0.weight", "1.running_mean"
# ...). A layout is found by its head prefix (with or without DDP's "module.").


@dataclass(frozen=True)
class TeacherLayout:
    name: str
    container: tuple[str, ...]  # key path to the state_dict; () = top level
    branches: dict[str, tuple[str, str]] = field(compare=False)  # branch -> (backbone prefix, head prefix)
    dropped: tuple[str, ...] = ()  # prefixes under the backbone prefix that are neither backbone nor head
    note: str = field(default="", compare=False)


TEACHER_LAYOUTS: tuple[TeacherLayout, ...] = (
    TeacherLayout("moco_v3", ("state_dict",), {
        "momentum": ("module.momentum_encoder.", "module.momentum_encoder.fc."),
        "online": ("module.base_encoder.", "module.base_encoder.fc.")}, ("module.predictor.",),
        note="official main_moco.py: each encoder carries its projector as fc, FC-BN-ReLU-FC-BN without "
             "biases, the last BN affine-free; PCD's teacher is the momentum encoder (seed 002, Sec. 3.2)"),
    TeacherLayout("byol_pcd", ("model",), {"momentum": ("module.target_encoder.", "module.target_encoder.fc.")},
                  note="the PyTorch BYOL layout PCD's released teacher_model/byol_resnet50.py reads (BYOL's "
                       "own release is JAX): projector FC(bias)-BN-ReLU-FC 2048-4096-256"),
    TeacherLayout("barlow_twins", ("model",), {"online": ("module.backbone.", "module.projector.")},
                  note="official full checkpoint.pth: projector 3 x FC 8192 (no biases) with BN-ReLU between; "
                       "the affine-free BN after it (module.bn) is not part of the head"),
    TeacherLayout("swav", (), {"online": ("module.", "module.projection_head.")}, ("module.prototypes.",),
                  note="official swav_800ep_pretrain.pth.tar (a bare DDP state_dict): projection head "
                       "FC-BN-ReLU-FC 2048-2048-128 with biases; the prototypes are dropped"),
)
# The suite's own training checkpoints (``checkpoint.pth``: models/method; the exported backbone.pth
# has no head), by the method that wrote them: branch -> (backbone prefix, head prefix).
SUITE_TEACHERS: dict[str, dict[str, tuple[str, str]]] = {
    "mocov2": {"momentum": ("encoder_k.", "head_k."), "online": ("encoder_q.", "head_q.")},
    "byol": {"momentum": ("target_encoder.", "target_projector."), "online": ("encoder.", "projector.")},
    "ressl": {"momentum": ("teacher_encoder.", "teacher_projector."), "online": ("encoder.", "projector.")},
    "cgh": {"momentum": ("teacher.encoder.", "teacher.projector."),
            "online": ("student.encoder.", "student.projector.")},
}


def _teacher_layout(obj: Mapping[str, Any]) -> tuple[TeacherLayout, Mapping[str, Any], str]:
    """(layout, its state_dict, the DDP prefix in use: "module." or "")."""
    for layout in TEACHER_LAYOUTS:
        state = _container(obj, layout.container)
        if state is None:
            continue
        for ddp in ("module.", ""):
            if any(isinstance(k, str) and k.startswith(ddp + head.removeprefix("module."))
                   for k in state for _, head in layout.branches.values()):
                return layout, state, ddp
    raise LayoutError(f"no teacher importer fits this checkpoint: top-level keys {_describe(obj)}; a teacher "
                      f"needs its projection head: "
                      + "; ".join(f"{l.name} ({'/'.join(l.container) or '<top>'}: "
                                  f"{next(iter(l.branches.values()))[1]}*)" for l in TEACHER_LAYOUTS)
                      + f"; or this suite's training checkpoint.pth of {sorted(SUITE_TEACHERS)}")


def import_teacher_state(obj: Mapping[str, Any], branch: str = "momentum", suite_method: str | None = None
                         ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """(backbone state, projection-head state, info) of a distillation teacher.

    ``obj`` is an official checkpoint (``TEACHER_LAYOUTS``), or, with ``suite_method``, the
    ``models["method"]`` state of a suite training checkpoint written by that method
    (``SUITE_TEACHERS``). ``branch``: "momentum" (MoCo v3's momentum_encoder, BYOL's target, the
    suite's key/target/teacher networks) or "online" (the only one of SwAV and Barlow Twins)."""
    dropped: tuple[str, ...] = ()
    if suite_method is not None:
        if suite_method not in SUITE_TEACHERS:
            raise LayoutError(f"a teacher from this suite's {suite_method!r} checkpoint is not supported; "
                              f"teachers can come from {sorted(SUITE_TEACHERS)} runs")
        name, state, branches, where = f"suite:{suite_method}", obj, SUITE_TEACHERS[suite_method], "models/method"
        ddp = ""
    else:
        layout, state, ddp = _teacher_layout(obj)
        name, branches, where = layout.name, layout.branches, "/".join(layout.container) or "<top>"
        dropped = tuple(ddp + p.removeprefix("module.") for p in layout.dropped)
    if branch not in branches:
        raise LayoutError(f"{name}: no {branch!r} teacher branch; it has {sorted(branches)}")
    backbone, head = (ddp + p.removeprefix("module.") if suite_method is None else p for p in branches[branch])
    bb, hd = {}, {}
    for key, value in state.items():
        if not isinstance(key, str) or key.startswith(dropped):
            continue
        if key.startswith(head):
            hd[key[len(head):]] = _as_tensor(key, value)
        elif key.startswith(backbone):
            bb[key[len(backbone):]] = _as_tensor(key, value)
    if not bb or not hd:
        missing = " and ".join(f"no '{p}*' keys ({what})" for p, what, got in
                               ((backbone, "backbone", bb), (head, "projection head", hd)) if not got)
        raise LayoutError(f"{name} {branch} branch ({where}): {missing}; its keys start with {_describe(state, 8)}")
    return bb, hd, {"layout": name, "branch": branch, "container": where, "backbone_prefix": backbone,
                    "head_prefix": head}
