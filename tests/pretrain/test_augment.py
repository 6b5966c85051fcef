"""Batched augmentation against torchvision's per-image functional ops."""
import math

import pytest
import torch
import torchvision.transforms.functional as TF

from pretrain.data import augment as A


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (6, 3, 40, 48), generator=g, dtype=torch.uint8)


def _params(n, h, w, **over):
    base = dict(boxes=torch.tensor([[0.0, 0.0, w, h]] * n), flip=torch.zeros(n, dtype=torch.bool),
                jitter=torch.tensor([[1.0, 1.0, 1.0, 0.0]] * n), jitter_on=torch.zeros(n, dtype=torch.bool),
                gray=torch.zeros(n, dtype=torch.bool), blur_sigma=torch.zeros(n),
                solarize=torch.zeros(n, dtype=torch.bool))
    base.update(over)
    return A.ViewParams(**base)


def _spec(h, **over):
    return A.ViewSpec(size=h, mean=(0, 0, 0), std=(1, 1, 1), **over)


def test_identity_box_and_per_sample_flip(images):
    n, _, h, w = images.shape
    images = images[..., :h]  # square so the full-image box resizes to itself
    flip = torch.tensor([True, False, True, False, False, True])
    out = A.apply_view(images, _params(n, h, h, boxes=torch.tensor([[0.0, 0.0, h, h]] * n), flip=flip), _spec(h))
    x = images.float() / 255
    for i in range(n):
        torch.testing.assert_close(out[i], TF.hflip(x[i]) if flip[i] else x[i], atol=1e-5, rtol=0)


def test_crop_box_selects_the_region(images):
    n = images.shape[0]
    boxes = torch.tensor([[4.0, 2.0, 20.0, 18.0]] * n)  # 16x16 crop, output 16: pure copy
    out = A.apply_view(images, _params(n, 40, 48, boxes=boxes), _spec(16))
    torch.testing.assert_close(out, images[:, :, 2:18, 4:20].float() / 255, atol=1e-5, rtol=0)


def test_color_jitter_matches_torchvision_per_sample(images):
    x = images.float() / 255
    factors = torch.tensor([[1.3, 0.7, 1.2, 0.05], [0.8, 1.4, 0.6, -0.1], [1.0, 1.0, 1.0, 0.0],
                            [0.6, 1.1, 0.0, 0.3], [1.2, 0.6, 1.4, -0.45], [0.9, 0.9, 0.9, 0.2]])
    out = A.color_jitter(x, factors)
    for i in range(x.shape[0]):
        b, c, s, hue = factors[i].tolist()
        ref = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(x[i], b), c), s), hue)
        torch.testing.assert_close(out[i], ref, atol=2e-4, rtol=0)


def test_grayscale_and_solarize(images):
    n, _, h, w = images.shape
    gray = torch.tensor([True, False] * 3)
    sol = torch.tensor([False, True] * 3)
    out = A.apply_view(images[..., :h], _params(n, h, h, boxes=torch.tensor([[0.0, 0.0, h, h]] * n),
                                                gray=gray, solarize=sol), _spec(h))
    x = images[..., :h].float() / 255
    for i in range(n):
        ref = TF.rgb_to_grayscale(x[i], 3) if gray[i] else x[i]
        ref = torch.where(ref >= 0.5, 1 - ref, ref) if sol[i] else ref
        # torchvision weighs red 0.2989, PIL 0.299: 1e-4 apart
        torch.testing.assert_close(out[i], ref, atol=2e-4, rtol=0)


def test_gaussian_blur_matches_torchvision_per_sample(images):
    x = images.float() / 255
    sigma = torch.tensor([0.3, 0.9, 1.5, 2.0, 0.1, 1.0])
    out = A.gaussian_blur(x, sigma, kernel_size=7)
    for i in range(x.shape[0]):
        ref = TF.gaussian_blur(x[i:i + 1], [7, 7], [sigma[i].item()] * 2)[0]
        torch.testing.assert_close(out[i], ref, atol=1e-5, rtol=0)


def test_sampled_crops_respect_scale_ratio_and_bounds():
    spec = A.ViewSpec(size=32, scale=(0.2, 0.6), ratio=(0.75, 4 / 3))
    g = torch.Generator().manual_seed(1)
    p = A.sample_params(spec, 4000, 100, 120, g, "cpu")
    x0, y0, x1, y1 = p.boxes.unbind(1)
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 120).all() and (y1 <= 100).all()
    area = (x1 - x0) * (y1 - y0) / (100 * 120)
    assert area.min() > 0.19 and area.max() < 0.61  # rounding of w, h allows a little slack
    ratio = (x1 - x0) / (y1 - y0)
    assert ratio.min() > 0.73 and ratio.max() < 1.37
    # per-sample independence: crops differ, and the flip rate is near its probability
    assert len({tuple(b) for b in p.boxes.tolist()}) > 3000
    assert abs(p.flip.float().mean().item() - 0.5) < 0.05
    assert abs(p.gray.float().mean().item() - spec.gray_p) < 0.03


def test_fallback_crop_when_no_try_fits():
    spec = A.ViewSpec(size=8, scale=(2.0, 3.0))  # never fits: every sample takes the central crop
    p = A.sample_params(spec, 5, 30, 60, torch.Generator().manual_seed(0), "cpu")
    # ratio 2 > 4/3, so torchvision's fallback is a centred 40x30 crop
    assert p.boxes.tolist() == [[10.0, 0.0, 50.0, 30.0]] * 5


def test_views_are_a_function_of_the_generator(images):
    spec = A.ViewSpec(size=24)
    a, _ = A.make_views(images, spec, torch.Generator().manual_seed(5))
    b, _ = A.make_views(images, spec, torch.Generator().manual_seed(5))
    c, _ = A.make_views(images, spec, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (6, 3, 24, 24) and math.isfinite(a.abs().max().item())
