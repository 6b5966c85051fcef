"""PCD: Pixel-Wise Contrastive Distillation (Huang & Guo, ICCV 2023; seed 002).

    t  = A(T(x))              frozen teacher T (eval mode, no gradient, BN statistics fixed), its
                              projection head reshaped by the SpatialAdaptor A: each fc becomes a
                              1x1 conv, ReLU becomes CW-ReLU σ*(x)_c = x_c · [mean_HW x_c > 0]
                              (Eq. 6), the last (affine-free) BN is dropped -> GAP(A(t)) = head(GAP(t))
    s* = M(φ(S(x)))           student backbone S (its last feature map), projector φ = two
                              [Conv-BN-ReLU-Conv] MLPs as 1x1 convs, M = multi-head self-attention
                              over the pixels (8 heads x 64, no positional encoding, 1x1 output projection)
    t  <- bilinear(t, size(s*))   when the two maps differ in size
    L(s*, t) = 1/HW Σ_i -log exp(s*_i·t_i/τ) / (exp(s*_i·t_i/τ) + Σ_k exp(s*_i·n^k/τ))   (Eq. 3-4)
                              L2-normalised vectors; n^k: queue of pooled, normalised teacher maps
    L = ½ [L(s*(v1), t(v1)) + L(s*(v2), t(v2))]   loss on each view, averaged (Sec. 3.2)
    queue <- normalize(GAP(t))  after the step

Switches for the paper's ablations (Tables 1-4) and the choices the seed leaves open:

- ``symmetric: false`` -- Table 1 "PCD, asymmetric": one view per image, one loss term;
- ``level: image`` -- Table 2 image-level distillation: s* and t globally pooled before the loss;
- ``adaptor``: ``cw_relu`` (ours), ``relu`` (Table 3 (d): the head's ReLU kept), ``none``
  (Table 3 (a)-(c): the teacher's head removed, its backbone map is the target);
  ``student_relu: true`` adds a ReLU at the end of the student ((b): after M; (c): with
  ``attention: none``, after φ);
- ``attention``: ``mhsa`` (ours), ``none`` (Table 4 w/o MHSA), ``pred`` (Table 4 "extra pred.":
  M replaced by a Conv-BN-ReLU-Conv head of ``pred_hidden_dim``, chosen for about M's parameters);
- ``pairing``: ``same`` -- student and teacher see the same view (the seed: "from the *same*
  view of an image"), or ``cross`` -- the student's view 1 against the teacher's view 2 and vice
  versa (the authors' released pcd/pcd.py); ``enqueue``: ``first`` (the authors' code enqueues
  the pooled teacher map of view 1 only) or ``both``;
- ``mhsa``: ``heads``, ``head_dim``, ``qkv_bias``, ``residual``, ``layer_norm`` -- the seed states
  heads x dim, no positional encoding and the 1x1 output projection; the released code has no
  MHSA. Defaults: qkv projection with bias (nn.MultiheadAttention's default), no residual, no
  LayerNorm (the seed feeds "the output of the MHSA module" to the loss and names neither).

The teacher (``teacher`` block): ``checkpoint`` -- an official MoCo v3 checkpoint or a suite
``checkpoint.pth`` (``pretrain.importers.import_teacher_state``), ``branch`` momentum (the paper's
MoCo v3 ``momentum_encoder``) or online, ``arch`` (checked against the checkpoint), ``hidden_dim`` /
``dim`` of its head (checked; used to build a randomly initialised MoCo v3-shaped teacher when
``checkpoint`` is null, for benchmarks and tests only). φ follows the teacher's head (seed: "the
hidden dimension of the student is equal to that of the teacher"; the released code mirrors the
teacher head's depth and biases): the same number of hidden layers and width, the output width of
the target, biases as the teacher's last layer. The exported backbone is the student's.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from pretrain import checkpoint as ckpt
from pretrain.data.augment import ViewSpec
from pretrain.losses import pixel_info_nce
from pretrain.methods.byol import BYOL_VIEWS
from pretrain.methods.common import MemoryQueue, mlp
from pretrain.models.lightweight import LightweightBackbone
from pretrain.models.resnet import build_backbone

log = logging.getLogger("pretrain")


def feature_map(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's last feature map before pooling: C5 of a ResNet, the ``features`` output of a
    torchvision lightweight network (MobileNet-V3: 960 channels)."""
    if isinstance(backbone, LightweightBackbone):
        return backbone.features(x)
    return backbone.forward_stages(x)["C5"]


class CWReLU(nn.Module):
    """Channel-wise ReLU σ* (Eq. 6): a channel whose spatial mean is not positive is zeroed, the
    others pass unchanged (negative pixels included), so GAP(σ*(x)) = ReLU(GAP(x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (x.mean(dim=(2, 3), keepdim=True) > 0).to(x.dtype)


class SpatialAdaptor(nn.Sequential):
    """A projection head of Linear / BatchNorm1d / ReLU layers reshaped to act on every pixel:
    Linear -> 1x1 conv (same weights), BatchNorm1d -> BatchNorm2d (same statistics; used in eval
    mode), ReLU -> CW-ReLU (``relu="relu"``: plain ReLU, Table 3 (d)). A trailing BN is dropped
    when ``drop_last_bn`` (MoCo v3's affine-free last BN; seed 002 Sec. 3.2)."""

    def __init__(self, head: nn.Sequential, relu: str = "cw_relu", drop_last_bn: bool = True):
        if relu not in ("cw_relu", "relu"):
            raise ValueError(f"SpatialAdaptor relu must be 'cw_relu' or 'relu', got {relu!r}")
        layers = list(head)
        if drop_last_bn and isinstance(layers[-1], nn.BatchNorm1d):
            layers = layers[:-1]
        out: list[nn.Module] = []
        with torch.no_grad():
            for layer in layers:
                if isinstance(layer, nn.Linear):
                    conv = nn.Conv2d(layer.in_features, layer.out_features, 1, bias=layer.bias is not None)
                    conv.weight.copy_(layer.weight[:, :, None, None])
                    if layer.bias is not None:
                        conv.bias.copy_(layer.bias)
                    out.append(conv)
                elif isinstance(layer, nn.BatchNorm1d):
                    bn = nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum,
                                        affine=layer.affine)
                    bn.load_state_dict(layer.state_dict())
                    out.append(bn)
                elif isinstance(layer, nn.ReLU):
                    out.append(CWReLU() if relu == "cw_relu" else nn.ReLU())
                else:
                    raise ValueError(f"SpatialAdaptor: cannot reshape a {type(layer).__name__} layer "
                                     f"(Linear, BatchNorm1d and ReLU only)")
        super().__init__(*out)


def head_from_state(state: dict[str, torch.Tensor], source: str) -> nn.Sequential:
    """The nn.Sequential projection head a state holds (keys "<index>.<name>"): an index with a 2-d
    ``weight`` is a Linear (with ``bias`` if present), one with ``running_mean`` a BatchNorm1d
    (affine if it has ``weight``), an index without tensors a ReLU. Loaded strictly."""
    by_index: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        index, _, name = key.partition(".")
        if not index.isdigit():
            raise ckpt.CheckpointError(f"{source}: projection-head key {key!r} is not an nn.Sequential index")
        by_index.setdefault(int(index), {})[name] = value
    layers: list[nn.Module] = []
    for i in range(max(by_index) + 1):
        p = by_index.get(i, {})
        if not p:
            layers.append(nn.ReLU(inplace=True))
        elif "running_mean" in p:
            layers.append(nn.BatchNorm1d(p["running_mean"].numel(), affine="weight" in p))
        elif "weight" in p and p["weight"].dim() == 2:
            out_dim, in_dim = p["weight"].shape
            layers.append(nn.Linear(in_dim, out_dim, bias="bias" in p))
        else:
            raise ckpt.CheckpointError(f"{source}: projection-head layer {i} ({sorted(p)}) is neither a "
                                       f"Linear nor a BatchNorm1d")
    head = nn.Sequential(*layers)
    ckpt.load_state_strict(head, state, source)
    return head


class FrozenTeacher(nn.Module):
    """Teacher backbone + (reshaped) head: no gradient, and always in eval mode -- ``train()``
    leaves it in eval, so its BN layers keep their statistics when the engine trains the method."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenTeacher":
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(feature_map(self.backbone, x))


class PixelAttention(nn.Module):
    """Multi-head self-attention over the pixels of a (N, C, H, W) map, each pixel a token, no
    positional encoding: qkv projection, softmax(QKᵀ/√d)V per head, heads concatenated and
    projected back to C (a Linear on tokens = a 1x1 conv). Optional residual and pre-LayerNorm."""

    def __init__(self, dim: int, heads: int = 8, head_dim: int = 64, qkv_bias: bool = True,
                 residual: bool = False, layer_norm: bool = False):
        super().__init__()
        self.heads, self.head_dim, self.residual = heads, head_dim, residual
        self.norm = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=qkv_bias)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)                                   # (N, HW, C)
        q, k, v = self.qkv(self.norm(tokens)).view(n, h * w, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)                           # (N, heads, HW, d)
        out = self.proj(out.transpose(1, 2).reshape(n, h * w, self.heads * self.head_dim))
        if self.residual:
            out = out + tokens
        return out.transpose(1, 2).reshape(n, c, h, w)


class PCD(nn.Module):
    def __init__(self, arch: str, stem: str, teacher_backbone: nn.Module, teacher_head: nn.Sequential,
                 adaptor: str = "cw_relu", drop_last_bn: bool = True, hidden_dim: int | None = None,
                 attention: str = "mhsa", mhsa: dict | None = None, pred_hidden_dim: int = 1024,
                 student_relu: bool = False, level: str = "pixel", symmetric: bool = True,
                 pairing: str = "same", enqueue: str = "first", queue_size: int = 65536, tau: float = 0.2,
                 views: list[dict] | None = None):
        super().__init__()
        for name, value, allowed in (("adaptor", adaptor, ("cw_relu", "relu", "none")),
                                     ("attention", attention, ("mhsa", "none", "pred")),
                                     ("level", level, ("pixel", "image")), ("pairing", pairing, ("same", "cross")),
                                     ("enqueue", enqueue, ("first", "both"))):
            if value not in allowed:
                raise ValueError(f"method.{name} must be one of {allowed}, got {value!r}")
        if pairing == "cross" and not symmetric:
            raise ValueError("method.pairing 'cross' needs two views (symmetric: true)")
        self.tau, self.level, self.pairing = tau, level, pairing                 # τ
        linears = [m for m in teacher_head if isinstance(m, nn.Linear)]
        widths = {m.out_features for m in linears[:-1]}
        if len(widths) != 1 or linears[0].in_features != teacher_backbone.num_features:
            raise ValueError(f"teacher head {[(m.in_features, m.out_features) for m in linears]} does not fit "
                             f"a {teacher_backbone.num_features}-channel teacher backbone with equal hidden widths")
        head = nn.Identity() if adaptor == "none" else SpatialAdaptor(teacher_head, adaptor, drop_last_bn)
        self.teacher = FrozenTeacher(teacher_backbone, head)                    # A(T(.))
        dim = teacher_backbone.num_features if adaptor == "none" else linears[-1].out_features
        hidden, depth, bias = hidden_dim or widths.pop(), len(linears) - 1, linears[-1].bias is not None
        self.encoder = build_backbone(arch, stem=stem)                           # S
        self.projector = nn.Sequential(                                         # φ: two MLPs, 1x1 convs
            mlp(self.encoder.num_features, hidden, dim, True, bias=bias, spatial=True, hidden_layers=depth),
            mlp(dim, hidden, dim, True, bias=bias, spatial=True, hidden_layers=depth))
        if attention == "mhsa":                                                 # M
            self.attention = PixelAttention(dim, **(mhsa or {}))
        elif attention == "pred":
            self.attention = mlp(dim, pred_hidden_dim, dim, True, spatial=True)
        else:
            self.attention = nn.Identity()
        self.out_relu = nn.ReLU() if student_relu else nn.Identity()
        self.queue = MemoryQueue(queue_size, dim)                               # n^k
        self.enqueue_views = 2 if enqueue == "both" and symmetric else 1
        specs = views or [dict(v) for v in BYOL_VIEWS]
        self.views = [ViewSpec.from_dict(v) for v in specs[:2 if symmetric else 1]]

    @property
    def backbone(self) -> nn.Module:
        """The exported network: the student backbone."""
        return self.encoder

    def student(self, x: torch.Tensor) -> torch.Tensor:
        """s* = M(φ(S(x)))."""
        return self.out_relu(self.attention(self.projector(feature_map(self.encoder, x))))

    def distill(self, s: torch.Tensor, t: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        if t.shape[-2:] != s.shape[-2:]:  # teacher map of another size: resized bilinearly (Sec. 3.1)
            t = F.interpolate(t.float(), size=s.shape[-2:], mode="bilinear", align_corners=False)
        if self.level == "image":  # Table 2: vectorised by global average pooling
            s, t = s.mean(dim=(2, 3), keepdim=True), t.mean(dim=(2, 3), keepdim=True)
        return pixel_info_nce(s, t, negatives, self.tau)

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        targets = [self.teacher(v) for v in views]  # teacher first: no graph held during its passes
        students = [self.student(v) for v in views]
        negatives = self.queue()
        pairs = zip(students, targets[::-1] if self.pairing == "cross" else targets)
        loss = sum(self.distill(s, t, negatives) for s, t in pairs) / len(views)
        self.queue.push(torch.cat([F.normalize(t.float().mean(dim=(2, 3)), dim=1)
                                   for t in targets[:self.enqueue_views]]))
        return loss, {}


def load_teacher(teacher: dict) -> tuple[nn.Module, nn.Sequential]:
    """(backbone, projection head) of the ``method.teacher`` config (see the module docstring)."""
    path, branch, arch = teacher.get("checkpoint"), teacher.get("branch", "momentum"), teacher.get("arch")
    if path is None:
        log.warning("PCD: no method.teacher.checkpoint -- a randomly initialised %s teacher (benchmarks and "
                    "tests only)", arch or "resnet50")
        backbone = build_backbone(arch or "resnet50")
        dim = teacher.get("dim", 256)
        head = nn.Sequential(*mlp(backbone.num_features, teacher.get("hidden_dim", 4096), dim, True, bias=False),
                             nn.BatchNorm1d(dim, affine=False))  # MoCo v3's projector
        return backbone, head.eval()
    payload = ckpt.read_teacher(path, branch)
    where = f"teacher {path} ({payload['imported']['layout']}, {branch} branch)"
    if arch is not None and payload["arch"] != arch:
        raise ckpt.CheckpointError(f"{where} holds a {payload['arch']} backbone, but method.teacher.arch "
                                   f"is {arch!r}")
    backbone = build_backbone(payload["arch"], stem=payload["stem"])
    ckpt.load_state_strict(backbone, payload["state_dict"], f"{where} backbone")
    head = head_from_state(payload["head_state_dict"], f"{where} projection head")
    linears = [m for m in head if isinstance(m, nn.Linear)]
    for key, got in (("hidden_dim", linears[0].out_features), ("dim", linears[-1].out_features)):
        if teacher.get(key) is not None and teacher[key] != got:
            raise ckpt.CheckpointError(f"{where}: its projection head has {key} {got}, but method.teacher.{key} "
                                       f"is {teacher[key]}")
    return backbone, head.eval()


def build(config: dict, arch: str, stem: str) -> PCD:
    m = config.get("method", {})
    views = config.get("views", {})
    specs = [{**base, **views.get("default", {}), **views.get(f"view{i + 1}", {})}
             for i, base in enumerate(BYOL_VIEWS)]
    backbone, head = load_teacher(m.get("teacher", {}))
    return PCD(arch, stem, backbone, head, adaptor=m.get("adaptor", "cw_relu"),
               drop_last_bn=m.get("drop_last_bn", True), hidden_dim=m.get("hidden_dim"),
               attention=m.get("attention", "mhsa"), mhsa=m.get("mhsa"), pred_hidden_dim=m.get("pred_hidden_dim", 1024),
               student_relu=m.get("student_relu", False), level=m.get("level", "pixel"),
               symmetric=m.get("symmetric", True), pairing=m.get("pairing", "same"), enqueue=m.get("enqueue", "first"),
               queue_size=m.get("queue_size", 65536), tau=m.get("tau", 0.2), views=specs)
