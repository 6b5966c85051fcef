"""Batched RandAugment (CLSA's stronger augmentation) against PIL, op by op.

The reference is the PIL operation the FixMatch/CLSA pool names (ImageOps, ImageEnhance,
Image.rotate / Image.transform with NEAREST), applied to one image at a time."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from pretrain.data import augment as A

OPS = [name for name, _, _ in A.RANDAUGMENT_OPS]


def _pil_reference(img: Image.Image, name: str, level: int, sign: int) -> Image.Image:
    """FixMatch pool semantics written out with PIL: level v in 1..9, PARAMETER_MAX 10."""
    f = level * 0.9 / 10 + 0.05
    w, h = img.size
    if name == "identity":
        return img
    if name == "autocontrast":
        return ImageOps.autocontrast(img)
    if name == "equalize":
        return ImageOps.equalize(img)
    if name == "brightness":
        return ImageEnhance.Brightness(img).enhance(f)
    if name == "color":
        return ImageEnhance.Color(img).enhance(f)
    if name == "contrast":
        return ImageEnhance.Contrast(img).enhance(f)
    if name == "sharpness":
        return ImageEnhance.Sharpness(img).enhance(f)
    if name == "posterize":
        return ImageOps.posterize(img, int(level * 4 / 10) + 4)
    if name == "solarize":
        return ImageOps.solarize(img, 256 - int(level * 256 / 10))
    if name == "rotate":
        return img.rotate(sign * int(level * 30 / 10))
    if name == "shear_x":
        return img.transform(img.size, Image.AFFINE, (1, sign * level * 0.3 / 10, 0, 0, 1, 0))
    if name == "shear_y":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, sign * level * 0.3 / 10, 1, 0))
    if name == "translate_x":
        return img.transform(img.size, Image.AFFINE, (1, 0, int(sign * level * 0.3 / 10 * w), 0, 1, 0))
    if name == "translate_y":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, int(sign * level * 0.3 / 10 * h)))
    raise AssertionError(name)


@pytest.fixture(scope="module")
def images():
    """Smooth random images (upsampled noise), so geometric ops move visible structure."""
    g = torch.Generator().manual_seed(0)
    low = torch.rand(6, 3, 6, 7, generator=g)
    x = torch.nn.functional.interpolate(low, size=(36, 44), mode="bilinear", align_corners=False)
    return torch.round(x * 200 + 20).to(torch.uint8)


@pytest.mark.parametrize("name", OPS)
def test_each_op_matches_pil_per_sample(images, name):
    n = images.shape[0]
    k = OPS.index(name)
    level = torch.tensor([1, 3, 5, 7, 9, 4])
    sign = torch.tensor([1, -1, 1, -1, 1, -1])
    randaug = torch.stack([torch.full((n,), k), level, sign], 1)[:, None]
    out = A.rand_augment(images.float() / 255, randaug)
    out8 = torch.round(out * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i in range(n):
        pil = Image.fromarray(images[i].permute(1, 2, 0).numpy())
        ref = np.asarray(_pil_reference(pil, name, int(level[i]), int(sign[i])))
        diff = np.abs(out8[i].astype(int) - ref.astype(int))
        # float blends vs PIL's 8-bit arithmetic: off by at most a couple of levels; nearest
        # sampling may pick the neighbouring pixel where a coordinate lands on a boundary
        assert (diff <= 2).mean() >= 0.99, (name, i, diff.max(), (diff > 2).mean())


def test_level_zero_means_not_applied_and_rounds_compose(images):
    x = images.float() / 255
    k_solarize, k_rotate = OPS.index("solarize"), OPS.index("rotate")
    off = torch.tensor([[k_solarize, 0, 1], [k_rotate, 0, -1]]).expand(6, 2, 3)
    torch.testing.assert_close(A.rand_augment(x, off), x)
    on = torch.tensor([[k_solarize, 9, 1], [k_rotate, 9, -1]]).expand(6, 2, 3)
    first = A.rand_augment(x, on[:, :1])
    torch.testing.assert_close(A.rand_augment(x, on), A.rand_augment(first, on[:, 1:]))


def test_sampled_draws_follow_the_pool_and_leave_other_views_unchanged():
    g = torch.Generator().manual_seed(1)
    spec = A.ViewSpec(size=32, randaugment=5, randaugment_magnitude=10)
    p = A.sample_params(spec, 4000, 40, 40, g, "cpu")
    op, level, sign = p.randaug.unbind(2)
    assert p.randaug.shape == (4000, 5, 3)
    assert set(op.unique().tolist()) == set(range(14))
    applied = level > 0
    assert 0.47 < applied.float().mean() < 0.53
    assert set(level[applied].unique().tolist()) == set(range(1, 10))
    assert set(sign.unique().tolist()) == {-1, 1}
    # the draws come after every other parameter: the rest of the view is as without RandAugment
    q = A.sample_params(A.ViewSpec(size=32), 4000, 40, 40, torch.Generator().manual_seed(1), "cpu")
    assert q.randaug is None
    torch.testing.assert_close(p.boxes, q.boxes)
    torch.testing.assert_close(p.jitter, q.jitter)


def test_make_views_slices_randaug_for_data_parallel(images):
    spec = A.ViewSpec(size=24, randaugment=3)
    full, p_full = A.make_views(images, spec, torch.Generator().manual_seed(2))
    half, p_half = A.make_views(images[3:], spec, torch.Generator().manual_seed(2), total=6, offset=3)
    torch.testing.assert_close(p_half.randaug, p_full.randaug[3:])
    torch.testing.assert_close(half, full[3:])
