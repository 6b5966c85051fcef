"""pretrain.data.loading.InMemoryImages: the decoded items, once, identical to decoding each time."""
import numpy as np
import pytest
import torch
from PIL import Image

from pretrain.data.loading import InMemoryImages, UInt8Images, open_dataset


def _images(n=5):
    rng = np.random.default_rng(0)
    return [(Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 30, 3), dtype=np.uint8)), i % 3) for i in range(n)]


@pytest.mark.parametrize("keep_aspect", [False, True])
def test_cached_items_equal_decoded_items(keep_aspect):
    decoded = UInt8Images(_images(), 16, keep_aspect=keep_aspect)
    cached = InMemoryImages(decoded, progress=False)
    assert len(cached) == len(decoded) == 5
    for i in range(len(decoded)):
        want, got = decoded[i], cached[i]
        assert len(got) == len(want) and got[1] == want[1] and isinstance(got[1], int)
        assert got[0].dtype == torch.uint8 and torch.equal(got[0], want[0])
        if keep_aspect:
            assert torch.equal(got[2], want[2])


def test_generated_imagefolder_cached(generated):
    decoded = UInt8Images(open_dataset("imagefolder", generated["imagefolder"], "val"), 32)
    cached = InMemoryImages(decoded, progress=False)
    assert cached.images.shape == (len(decoded), 3, 32, 32)
    assert all(torch.equal(cached[i][0], decoded[i][0]) for i in (0, len(decoded) - 1))


def test_a_dataset_over_the_limit_is_refused_by_name():
    with pytest.raises(ValueError, match=r"data\.cache: 5 images of 16 px .* set data\.cache: false"):
        InMemoryImages(UInt8Images(_images(), 16), "data.cache", progress=False, limit_bytes=1000)
