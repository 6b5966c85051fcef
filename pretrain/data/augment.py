"""Batched view augmentation on the training device.

Images arrive as a uint8 batch (N, 3, H, W) already on the device; every random
parameter is drawn per sample from a ``torch.Generator`` (so a step's views are a
function of (seed, step) and resume is exact), then applied with batched tensor ops:

- random resized crop + resize: one ``torchvision.ops.roi_align`` call over all boxes
  (torchvision's scale/ratio sampling: 10 tries, then the central fallback crop). With
  adaptive sampling each output pixel averages ceil(box/size)^2 bilinear samples, so
  downscaling is anti-aliased and a box of the output's size is copied exactly;
- horizontal flip, colour jitter (brightness, contrast, saturation, hue -- applied in
  this fixed order, where torchvision draws a random order), grayscale, Gaussian blur
  (per-sample sigma, separable grouped convolution), solarize;
- optionally RandAugment as CLSA's "stronger augmentation" uses it (``randaugment`` ops per
  view from FixMatch's 14-op pool, each applied with probability 1/2 at a random level
  1..magnitude-1; ``rand_augment`` below), or, per sample with probability ``autoaugment_p``,
  torchvision's AutoAugment ImageNet policy in place of the colour pipeline (Revisiting's
  A+; ``auto_augment`` below, on the same batched ops), then normalisation.

Constrained crops (``overlap_with``, Revisiting's constrained multi-crop) and images of
different sizes in one padded batch (``sizes``: each sample's crop is drawn inside its own
image, so aspect ratios survive into the random resized crop) are handled by
``make_view_set``.

The crop boxes and flips are returned with the views, so dense methods know each
view's geometry. The same code runs on CPU and GPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY = (0.299, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL/torchvision


@dataclass
class ViewSpec:
    """One view's pipeline (defaults: MoCo v2). Probabilities are per sample."""
    size: int = 224
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)  # brightness, contrast, saturation, hue
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    randaugment: int = 0                  # RandAugment ops per view (CLSA: 5); 0 = off
    randaugment_magnitude: int = 10       # levels drawn from 1..magnitude-1 (CLSA: m = 10)
    # A+ (Revisiting Sec. 4.2): with this probability per sample, the crop is followed by
    # flip + torchvision's AutoAugment ImageNet policy instead of jitter/grayscale/blur
    autoaugment_p: float = 0.0
    # constrained crop (Revisiting Sec. 4.1): the box is redrawn while less than
    # ``min_overlap`` of its area lies inside the box of view ``overlap_with`` (an index into
    # the list given to ``make_view_set``; -1 = unconstrained); ``overlap_tries`` candidates
    # at most, then ``overlap_fallback``: "centred" (the drawn size centred on the anchor box)
    # or "unconstrained" (a plain random resized crop, the official code's fallback)
    overlap_with: int = -1
    min_overlap: float = 0.2
    overlap_tries: int = 100
    overlap_fallback: str = "centred"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def from_dict(cls, d: dict) -> "ViewSpec":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class ViewParams:
    boxes: torch.Tensor                   # (N, 4) crop box x0, y0, x1, y1 in input pixels
    flip: torch.Tensor                    # (N,) bool
    jitter: torch.Tensor                  # (N, 4) brightness, contrast, saturation factors, hue shift
    jitter_on: torch.Tensor               # (N,) bool
    gray: torch.Tensor                    # (N,) bool
    blur_sigma: torch.Tensor              # (N,) float, 0 = no blur
    solarize: torch.Tensor                # (N,) bool
    randaug: torch.Tensor | None = None   # (N, n, 3) long: op index, level (0 = not applied), sign (+1/-1)
    autoaug: torch.Tensor | None = None   # (N, 2, 3) float: AUTOAUGMENT_OPS index, signed magnitude, applied
    extra: dict = field(default_factory=dict)


def _uniform(n, low, high, g, device):
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def _crop_sizes(scale, ratio, area, n, tries, g, device):
    """torchvision's RandomResizedCrop size draws: (n, tries) widths and heights."""
    target = area[:, None] * _uniform(n * tries, *scale, g, device).view(n, tries)
    log_r = _uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]), g, device)
    r = torch.exp(log_r).view(n, tries)
    return torch.sqrt(target * r).round(), torch.sqrt(target / r).round()


def _random_resized_boxes(spec: ViewSpec, n: int, height: torch.Tensor, width: torch.Tensor,
                          g: torch.Generator, device) -> torch.Tensor:
    """torchvision's RandomResizedCrop boxes (10 tries, then the central fallback crop) for
    inputs of per-sample (height, width), (n,) float tensors."""
    tries = 10
    w, h = _crop_sizes(spec.scale, spec.ratio, height * width, n, tries, g, device)
    ok = (w > 0) & (h > 0) & (w <= width[:, None]) & (h <= height[:, None])
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1, device=device))
    # torchvision's fallback: the central crop with the ratio clamped into range
    in_ratio = width / height
    fw = torch.where(in_ratio > spec.ratio[1], torch.round(height * spec.ratio[1]), width)
    fh = torch.where(in_ratio < spec.ratio[0], torch.round(width / spec.ratio[0]), height)
    idx = first.clamp(min=0)
    cw = torch.where(first >= 0, w.gather(1, idx[:, None])[:, 0], fw)
    ch = torch.where(first >= 0, h.gather(1, idx[:, None])[:, 0], fh)
    x0 = torch.floor(torch.rand(n, generator=g, device=device) * (width - cw + 1))
    y0 = torch.floor(torch.rand(n, generator=g, device=device) * (height - ch + 1))
    x0 = torch.where(first >= 0, x0, torch.floor((width - fw) / 2))
    y0 = torch.where(first >= 0, y0, torch.floor((height - fh) / 2))
    return torch.stack([x0, y0, x0 + cw, y0 + ch], dim=1)


def box_overlap(boxes: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Intersection area of (..., 4) x0, y0, x1, y1 boxes with anchor boxes (broadcast)."""
    iw = (torch.minimum(boxes[..., 2], anchor[..., 2]) - torch.maximum(boxes[..., 0], anchor[..., 0])).clamp(min=0)
    ih = (torch.minimum(boxes[..., 3], anchor[..., 3]) - torch.maximum(boxes[..., 1], anchor[..., 1])).clamp(min=0)
    return iw * ih


def constrained_boxes(spec: ViewSpec, anchor: torch.Tensor, height: torch.Tensor, width: torch.Tensor,
                      g: torch.Generator, device) -> torch.Tensor:
    """Random resized crop boxes, each redrawn while less than ``spec.min_overlap`` of its
    area lies inside its sample's ``anchor`` box (Revisiting's constrained multi-crop).

    Vectorised per sample: candidates are drawn in rounds of 10 for the whole batch (sizes as
    torchvision's sampler, positions uniform), each sample keeps its first candidate that fits
    and overlaps enough; rounds stop when every sample has one or after ``overlap_tries``
    candidates. Samples still without one take ``overlap_fallback``: "unconstrained" (the
    official code: a plain random resized crop) or "centred" (a plain crop's size, centred on
    the anchor box and shifted into the image: it overlaps the anchor as much as a box of that
    size can)."""
    n, per_round = anchor.shape[0], 10
    boxes = torch.zeros(n, 4, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    for _ in range(math.ceil(spec.overlap_tries / per_round)):
        w, h = _crop_sizes(spec.scale, spec.ratio, height * width, n, per_round, g, device)
        x0 = torch.floor(torch.rand(n, per_round, generator=g, device=device) * (width[:, None] - w + 1))
        y0 = torch.floor(torch.rand(n, per_round, generator=g, device=device) * (height[:, None] - h + 1))
        cand = torch.stack([x0, y0, x0 + w, y0 + h], dim=2)                     # (n, tries, 4)
        fits = (w > 0) & (h > 0) & (w <= width[:, None]) & (h <= height[:, None])
        ok = fits & (box_overlap(cand, anchor[:, None]) >= spec.min_overlap * w * h) & ~done[:, None]
        take = ok.any(1)
        boxes = torch.where(take[:, None], cand[torch.arange(n, device=device), ok.float().argmax(1)], boxes)
        done |= take
        if bool(done.all()):
            return boxes
    fallback = _random_resized_boxes(spec, n, height, width, g, device)
    if spec.overlap_fallback == "centred":
        size = fallback[:, 2:] - fallback[:, :2]
        centre = (anchor[:, :2] + anchor[:, 2:]) / 2
        limit = torch.stack([width, height], 1) - size
        start = torch.minimum(torch.maximum(torch.floor(centre - size / 2), torch.zeros_like(size)), limit)
        fallback = torch.cat([start, start + size], 1)
    elif spec.overlap_fallback != "unconstrained":
        raise ValueError(f"overlap_fallback must be 'centred' or 'unconstrained', got {spec.overlap_fallback!r}")
    return torch.where(done[:, None], boxes, fallback)


def sample_params(spec: ViewSpec, n: int, height: int, width: int, g: torch.Generator,
                  device: torch.device | str, sizes: torch.Tensor | None = None,
                  anchor: torch.Tensor | None = None) -> ViewParams:
    """Draw every random parameter of ``n`` views of (height, width) inputs. ``sizes`` (n, 2)
    gives each sample's own (height, width) (aspect-preserving batches: the image sits in the
    top-left corner of the padded batch); ``anchor`` (n, 4) the boxes a constrained view
    (``spec.overlap_with``) must overlap."""
    if sizes is None:
        hs = torch.full((n,), float(height), device=device)
        ws = torch.full((n,), float(width), device=device)
    else:
        hs, ws = sizes[:, 0].to(device=device, dtype=torch.float32), sizes[:, 1].to(device=device, dtype=torch.float32)
    if anchor is None:
        boxes = _random_resized_boxes(spec, n, hs, ws, g, device)
    else:
        boxes = constrained_boxes(spec, anchor.to(device=device, dtype=torch.float32), hs, ws, g, device)

    b, c, s, hue = spec.jitter
    jitter = torch.stack([_uniform(n, max(0.0, 1 - b), 1 + b, g, device),
                          _uniform(n, max(0.0, 1 - c), 1 + c, g, device),
                          _uniform(n, max(0.0, 1 - s), 1 + s, g, device),
                          _uniform(n, -hue, hue, g, device)], dim=1)
    coin = lambda p: torch.rand(n, generator=g, device=device) < p  # noqa: E731
    flip, jitter_on, gray, blur_on, solarize = (coin(spec.flip_p), coin(spec.jitter_p),
                                                coin(spec.gray_p), coin(spec.blur_p),
                                                coin(spec.solarize_p))
    sigma = _uniform(n, *spec.blur_sigma, g, device) * blur_on
    randaug = None
    if spec.randaugment:  # drawn last, so views without RandAugment are unchanged by it
        k = spec.randaugment
        op = torch.randint(len(RANDAUGMENT_OPS), (n, k), generator=g, device=device)
        level = torch.randint(1, spec.randaugment_magnitude, (n, k), generator=g, device=device)
        level = level * (torch.rand(n, k, generator=g, device=device) < 0.5)
        sign = torch.where(torch.rand(n, k, generator=g, device=device) < 0.5, -1, 1)
        randaug = torch.stack([op, level, sign], 2)
    autoaug = None
    if spec.autoaugment_p > 0:  # drawn last too; the A+ samples skip the default colour pipeline
        chosen = coin(spec.autoaugment_p)
        autoaug = sample_autoaugment(n, g, device) * chosen.view(n, 1, 1)
        jitter_on, gray, solarize = jitter_on & ~chosen, gray & ~chosen, solarize & ~chosen
        sigma = sigma * ~chosen
    return ViewParams(boxes, flip, jitter, jitter_on, gray, sigma, solarize, randaug, autoaug)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(_GRAY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _rgb_to_hsv(x):
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(1), x.amin(1)  # values only: max(1)/min(1) also build indices, ~30x slower on CPU
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, ((g - b) / safe) % 6,
                    torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([h, s, maxc], 1)


def _hsv_to_rgb(x):
    h, s, v = x.unbind(1)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v[:, None] - v[:, None] * s[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def color_jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation (multiplicative blends, clamped to [0,1] after
    each, as torchvision) and hue shift (fraction of the hue circle) per sample."""
    view = lambda t: t.view(-1, 1, 1, 1)  # noqa: E731
    x = (x * view(factors[:, 0])).clamp(0, 1)
    mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (mean + view(factors[:, 1]) * (x - mean)).clamp(0, 1)
    gray = grayscale(x)
    x = (gray + view(factors[:, 2]) * (x - gray)).clamp(0, 1)
    hsv = _rgb_to_hsv(x)
    hsv = torch.stack([(hsv[:, 0] + factors[:, 3].view(-1, 1, 1)) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
    return _hsv_to_rgb(hsv).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable Gaussian blur with one sigma per sample (reflect padding, as torchvision)."""
    n, c, h, w = x.shape
    radius = kernel_size // 2
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c, k)
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="reflect"), kernel.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="reflect"), kernel.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


# FixMatch's RandAugment pool, as CLSA uses it: name -> (max value, bias); a level v in
# 1..9 gives the value v * max / 10 + bias (PIL semantics, on [0, 1] floats here).
RANDAUGMENT_OPS = (
    ("autocontrast", None, None), ("brightness", 0.9, 0.05), ("color", 0.9, 0.05),
    ("contrast", 0.9, 0.05), ("equalize", None, None), ("identity", None, None),
    ("posterize", 4, 4), ("rotate", 30, 0), ("sharpness", 0.9, 0.05), ("shear_x", 0.3, 0),
    ("shear_y", 0.3, 0), ("solarize", 256, 0), ("translate_x", 0.3, 0), ("translate_y", 0.3, 0),
)
_LEVELS = 10  # PIL ops' PARAMETER_MAX


def _blend(x, degenerate, factor):
    return (degenerate + factor.view(-1, 1, 1, 1) * (x - degenerate)).clamp(0, 1)


def _to_uint8_levels(x):
    return torch.round(x * 255)


def _affine(x, matrix):
    """Per-sample affine warp, nearest neighbour, zero fill (PIL ``Image.transform``):
    ``matrix`` (N, 2, 3) maps output pixel-centre coordinates to input coordinates."""
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype) + 0.5,
                            torch.arange(w, device=x.device, dtype=x.dtype) + 0.5, indexing="ij")
    pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, h * w, 3)
    src = pts @ matrix.to(x.dtype).transpose(1, 2)                          # (N, h*w, 2) pixel units
    # PIL's NEAREST takes floor(u); grid_sample's nearest rounds u - 0.5, so sample at floor(u) + 0.5
    src = torch.floor(src) + 0.5
    grid = torch.stack([2 * src[..., 0] / w - 1, 2 * src[..., 1] / h - 1], -1).view(n, h, w, 2)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _randaugment_op(name: str, x: torch.Tensor, value: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """One RandAugment op (not ``identity``) on a [0, 1] batch; ``value`` (N,) float is the
    op's PIL parameter."""
    from torchvision.transforms.v2 import functional as TF

    n, _, h, w = x.shape
    if name == "autocontrast":
        return TF.autocontrast(x)
    if name == "equalize":
        return TF.equalize(_to_uint8_levels(x).to(torch.uint8)).float() / 255
    if name == "brightness":
        return _blend(x, torch.zeros_like(x), value)
    if name == "color":
        return _blend(x, grayscale(x), value)
    if name == "contrast":  # PIL: blend with the rounded mean of the 8-bit grayscale image
        mean = torch.round(_to_uint8_levels(grayscale(x)).mean((1, 2, 3), keepdim=True)) / 255
        return _blend(x, mean.expand_as(x), value)
    if name == "sharpness":  # PIL: blend with the SMOOTH-filtered image, border pixels kept
        kernel = torch.ones(3, 3, device=x.device, dtype=x.dtype)
        kernel[1, 1] = 5
        kernel = (kernel / kernel.sum()).expand(3, 1, 3, 3)
        smooth = x.clone()
        smooth[:, :, 1:-1, 1:-1] = torch.round(F.conv2d(x * 255, kernel, groups=3)) / 255
        return _blend(x, smooth, value)
    if name == "posterize":  # keep the top `bits` bits of each 8-bit value
        step = (2 ** (8 - value)).view(-1, 1, 1, 1)
        return torch.floor(_to_uint8_levels(x) / step) * step / 255
    if name == "solarize":  # invert 8-bit values >= 256 - value
        x8 = _to_uint8_levels(x)
        return torch.where(x8 >= (256 - value).view(-1, 1, 1, 1), 255 - x8, x8) / 255
    if name == "invert":
        return 1 - x
    zero, one = torch.zeros_like(value), torch.ones_like(value)
    v = value * sign
    if name == "rotate":  # PIL rotate(v): counter-clockwise by v degrees about the centre
        t = torch.deg2rad(-v)
        cx, cy = w / 2, h / 2
        cos, sin = torch.cos(t), torch.sin(t)
        rows = [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy]
    elif name == "shear_x":
        rows = [one, v, zero, zero, one, zero]
    elif name == "shear_y":
        rows = [one, zero, zero, v, one, zero]
    elif name == "translate_x":
        rows = [one, zero, torch.trunc(v * w), zero, one, zero]
    elif name == "translate_y":
        rows = [one, zero, zero, zero, one, torch.trunc(v * h)]
    else:
        raise ValueError(f"unknown RandAugment op {name!r}")
    return _affine(x, torch.stack(rows, 1).view(n, 2, 3))


def rand_augment(x: torch.Tensor, randaug: torch.Tensor) -> torch.Tensor:
    """Apply the (N, n, 3) RandAugment draws of ``sample_params`` to a [0, 1] batch: in each
    of the n rounds, every sample runs its own op; samples sharing an op run as one batch."""
    for r in range(randaug.shape[1]):
        op, level, sign = randaug[:, r].unbind(1)
        for k, (name, max_v, bias) in enumerate(RANDAUGMENT_OPS):
            sel = ((op == k) & (level > 0)).nonzero()[:, 0]
            if name == "identity" or sel.numel() == 0:
                continue
            lv = level[sel].to(x.dtype)
            if name in ("posterize", "rotate", "solarize"):  # PIL's integer parameters
                value = torch.floor(lv * max_v / _LEVELS) + bias
            elif max_v is None:
                value = lv
            else:
                value = lv * max_v / _LEVELS + bias
            x = x.index_copy(0, sel, _randaugment_op(name, x[sel], value, sign[sel].to(x.dtype)))
    return x


# torchvision's AutoAugment ImageNet policy (AutoAugmentPolicy.IMAGENET): 25 sub-policies of
# two (op, probability, magnitude bin) steps; magnitudes from torchvision's 10-bin space
# (signed ops flip sign with probability 1/2). Only the ops the ImageNet policy uses.
AUTOAUGMENT_OPS = ("posterize", "rotate", "solarize", "autocontrast", "equalize", "color", "contrast",
                   "invert", "sharpness", "shear_x")
AUTOAUGMENT_IMAGENET = (
    (("posterize", 0.4, 8), ("rotate", 0.6, 9)), (("solarize", 0.6, 5), ("autocontrast", 0.6, None)),
    (("equalize", 0.8, None), ("equalize", 0.6, None)), (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
    (("equalize", 0.4, None), ("solarize", 0.2, 4)), (("equalize", 0.4, None), ("rotate", 0.8, 8)),
    (("solarize", 0.6, 3), ("equalize", 0.6, None)), (("posterize", 0.8, 5), ("equalize", 1.0, None)),
    (("rotate", 0.2, 3), ("solarize", 0.6, 8)), (("equalize", 0.6, None), ("posterize", 0.4, 6)),
    (("rotate", 0.8, 8), ("color", 0.4, 0)), (("rotate", 0.4, 9), ("equalize", 0.6, None)),
    (("equalize", 0.0, None), ("equalize", 0.8, None)), (("invert", 0.6, None), ("equalize", 1.0, None)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)), (("rotate", 0.8, 8), ("color", 1.0, 2)),
    (("color", 0.8, 8), ("solarize", 0.8, 7)), (("sharpness", 0.4, 7), ("invert", 0.6, None)),
    (("shear_x", 0.6, 5), ("equalize", 1.0, None)), (("color", 0.4, 0), ("equalize", 0.6, None)),
    (("equalize", 0.4, None), ("solarize", 0.2, 4)), (("solarize", 0.6, 5), ("autocontrast", 0.6, None)),
    (("invert", 0.6, None), ("equalize", 1.0, None)), (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("equalize", 0.8, None), ("equalize", 0.6, None)),
)
_AA_BINS = 10
_AA_SIGNED = ("rotate", "color", "contrast", "sharpness", "shear_x")


def _autoaugment_magnitude(name: str, bin_: int | None) -> float:
    """torchvision's ``AutoAugment._augmentation_space(10, ...)`` value of one bin."""
    if bin_ is None or name in ("autocontrast", "equalize", "invert"):
        return 0.0
    if name == "posterize":
        return float(8 - round(bin_ / ((_AA_BINS - 1) / 4)))
    top = {"rotate": 30.0, "color": 0.9, "contrast": 0.9, "sharpness": 0.9, "shear_x": 0.3}
    if name == "solarize":
        return 255.0 * (1 - bin_ / (_AA_BINS - 1))
    return top[name] * bin_ / (_AA_BINS - 1)


def _autoaugment_table() -> torch.Tensor:
    """(25, 2, 4) float: op index, magnitude, probability, signed."""
    return torch.tensor([[[AUTOAUGMENT_OPS.index(name), _autoaugment_magnitude(name, b), p, name in _AA_SIGNED]
                          for name, p, b in policy] for policy in AUTOAUGMENT_IMAGENET])


def sample_autoaugment(n: int, g: torch.Generator, device) -> torch.Tensor:
    """Per-sample AutoAugment draws as torchvision makes them (sub-policy uniform, each step
    applied with its probability, signed magnitudes negated with probability 1/2):
    (n, 2, 3) float of op index, signed magnitude, applied (0/1)."""
    table = _autoaugment_table().to(device)
    policy = torch.randint(len(AUTOAUGMENT_IMAGENET), (n,), generator=g, device=device)
    probs = torch.rand(n, 2, generator=g, device=device)
    negative = torch.rand(n, 2, generator=g, device=device) < 0.5
    steps = table[policy]                                                    # (n, 2, 4)
    magnitude = torch.where(negative & (steps[..., 3] > 0), -steps[..., 1], steps[..., 1])
    applied = (probs <= steps[..., 2]).float()
    return torch.stack([steps[..., 0], magnitude, applied], 2)


def auto_augment(x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Apply ``sample_autoaugment`` draws to a [0, 1] batch with the batched RandAugment ops
    (torchvision's semantics on PIL images: enhance factors 1 + magnitude, posterize bits,
    solarize threshold, rotate / shear_x by the signed magnitude, nearest, zero fill)."""
    for r in range(draws.shape[1]):
        op, magnitude, applied = draws[:, r].unbind(1)
        for k, name in enumerate(AUTOAUGMENT_OPS):
            sel = ((op == k) & (applied > 0)).nonzero()[:, 0]
            if sel.numel() == 0:
                continue
            m = magnitude[sel].to(x.dtype)
            if name in ("color", "contrast", "sharpness"):
                value, sign = 1 + m, torch.ones_like(m)
            elif name == "solarize":  # the RandAugment op inverts values >= 256 - value
                value, sign = 256 - m, torch.ones_like(m)
            else:
                value, sign = m.abs(), torch.where(m < 0, -1.0, 1.0).to(x.dtype)
            x = x.index_copy(0, sel, _randaugment_op(name, x[sel], value, sign))
    return x


def apply_view(images: torch.Tensor, params: ViewParams, spec: ViewSpec) -> torch.Tensor:
    """uint8 or [0,1] float (N,3,H,W) -> normalised float (N,3,size,size)."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    n = x.shape[0]
    rois = torch.cat([torch.arange(n, device=x.device, dtype=x.dtype)[:, None], params.boxes.to(x.dtype)], 1)
    x = roi_align(x, rois, output_size=spec.size, spatial_scale=1.0, sampling_ratio=0, aligned=True)
    x = torch.where(params.flip.view(-1, 1, 1, 1), x.flip(3), x)
    if params.jitter_on.any():
        sel = params.jitter_on.nonzero()[:, 0]
        x = x.index_copy(0, sel, color_jitter(x[sel], params.jitter[sel]))
    x = torch.where(params.gray.view(-1, 1, 1, 1), grayscale(x).expand_as(x), x)
    blur = params.blur_sigma > 0
    if blur.any():
        sel = blur.nonzero()[:, 0]
        kernel = max(3, int(0.1 * spec.size) // 2 * 2 + 1)  # odd, about 10% of the side
        x = x.index_copy(0, sel, gaussian_blur(x[sel], params.blur_sigma[sel], kernel))
    if params.solarize.any():
        x = torch.where(params.solarize.view(-1, 1, 1, 1) & (x >= 0.5), 1 - x, x)
    if params.randaug is not None:
        x = rand_augment(x, params.randaug)
    if params.autoaug is not None:
        x = auto_augment(x, params.autoaug)
    mean = torch.tensor(spec.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def make_views(images: torch.Tensor, spec: ViewSpec, g: torch.Generator, total: int | None = None,
               offset: int = 0, sizes: torch.Tensor | None = None) -> tuple[torch.Tensor, ViewParams]:
    """Views of ``images``. Under data parallelism each process holds rows
    ``offset:offset+n`` of a global batch of ``total``: parameters are drawn for the
    whole global batch and sliced, so a sample's view does not depend on the number
    of processes. ``sizes`` (n, 2): each image's (height, width) in an aspect-preserving
    batch (``UInt8Images(keep_aspect=True)``)."""
    return make_view_set(images, [spec], g, total, offset, sizes)[0]


def make_view_set(images: torch.Tensor, specs: list[ViewSpec], g: torch.Generator, total: int | None = None,
                  offset: int = 0, sizes: torch.Tensor | None = None) -> list[tuple[torch.Tensor, ViewParams]]:
    """(view, params) for each spec, drawn in order; a spec with ``overlap_with = i`` draws
    its boxes constrained by view i's (constrained multi-crop). Data parallel as ``make_views``
    (every process's ``sizes`` are gathered so the global draws are the same everywhere)."""
    from pretrain.distributed import gather

    n = images.shape[0]
    if sizes is not None and total is not None and total != n:
        sizes = gather(sizes.to(images.device))
    drawn: list[ViewParams] = []
    for spec in specs:
        if spec.overlap_with >= len(drawn):
            raise ValueError(f"view {len(drawn)} is constrained by view {spec.overlap_with}, which is not drawn before it")
        anchor = drawn[spec.overlap_with].boxes if spec.overlap_with >= 0 else None
        drawn.append(sample_params(spec, total or n, images.shape[2], images.shape[3], g, images.device,
                                   sizes=sizes, anchor=anchor))
    out = []
    for spec, params in zip(specs, drawn):
        if total is not None:
            params = ViewParams(**{f.name: None if getattr(params, f.name) is None
                                   else getattr(params, f.name)[offset:offset + n]
                                   for f in fields(ViewParams) if f.name != "extra"})
        out.append((apply_view(images, params, spec), params))
    return out


def normalize(images: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 (N,3,H,W) -> normalised float, no augmentation (evaluation)."""
    x = images.float() / 255
    return (x - torch.tensor(mean, device=x.device).view(1, 3, 1, 1)) / torch.tensor(std, device=x.device).view(1, 3, 1, 1)
