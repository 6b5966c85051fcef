"""Batched MoCo v2 views: the suite's pretrain.data.augment against kornia.augmentation.

    pip install kornia && python benchmarks/augment_kornia.py [--device cuda]

Same pipeline on both sides (random resized crop 0.2-1, flip, jitter 0.4/0.4/0.4/0.1 p 0.8,
grayscale 0.2, blur p 0.5, normalisation) on a uint8 batch already on the device; prints
ms per batch and the ratio. kornia is not a dependency of the suite (this measurement is
why: see the engine issue's note).
"""
import argparse
import sys

import torch

from pretrain.bench import interleaved_timings
from pretrain.data.augment import ViewSpec, make_views

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
device = torch.device(parser.parse_args().device)
try:
    import kornia.augmentation as K
except ImportError:
    sys.exit("this benchmark needs kornia: pip install kornia")

torch.manual_seed(0)


for batch, side, out in ((256, 36, 32), (64, 256, 224)):
    imgs = torch.randint(0, 256, (batch, 3, side, side), dtype=torch.uint8, device=device)
    spec = ViewSpec(size=out, blur_p=0.5)
    g = torch.Generator(device=device).manual_seed(0)
    aug = K.AugmentationSequential(
        K.RandomResizedCrop((out, out), scale=(0.2, 1.0)), K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8), K.RandomGrayscale(p=0.2),
        K.RandomGaussianBlur((max(3, int(0.1 * out) // 2 * 2 + 1),) * 2, (0.1, 2.0), p=0.5),
        K.Normalize(mean=torch.tensor([0.485, 0.456, 0.406]), std=torch.tensor([0.229, 0.224, 0.225]))).to(device)
    times = interleaved_timings({"suite": lambda: make_views(imgs, spec, g),
                                 "kornia": lambda: aug(imgs.float() / 255)}, 1, 5, 1, device)
    ours, kor = times["suite"][0], times["kornia"][0]
    print(f"{device} batch {batch} {side}->{out}px: suite {ours*1000:.0f} ms ({batch/ours:.0f} img/s) | kornia {kor*1000:.0f} ms ({batch/kor:.0f} img/s) | kornia/suite {kor/ours:.2f}")
