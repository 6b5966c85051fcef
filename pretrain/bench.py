"""Throughput of a method's full training step against the bare backbone (the ceiling).

    python -m pretrain.bench --method mocov2 --arch resnet50 --size 224 --batch 256

Measures, in one run on the current device: (1) the engine's whole step -- batched view
augmentation from a uint8 batch already on the device, forward, loss, backward,
optimiser step, EMA update -- and (2) one forward+backward of the bare backbone on a
pre-made batch. Prints img/s of both and their ratio. No data loading is timed (the
uint8 batch is made once); this is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from pretrain.config import apply_overrides
from pretrain.data.augment import make_views
from pretrain.engine import METHODS, build_method
from pretrain.optim import build_optimizer


def _timed(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="mocov2", choices=sorted(METHODS))
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--stem", default="imagenet", choices=["imagenet", "cifar"])
    parser.add_argument("--size", type=int, default=224, help="view side")
    parser.add_argument("--input-size", type=int, default=None, help="side of the uint8 input batch (default: size * 8/7)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile the method")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. method.queue_size=4096")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    config = apply_overrides({"method": {"name": args.method}, "model": {"arch": args.arch, "stem": args.stem},
                              "views": {name: {"size": args.size} for name in ("default", "teacher", "student")}},
                             args.overrides)
    method = build_method(config).to(device).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(method, {"name": "sgd", "weight_decay": 1e-4}, 0.01)
    step_fn = torch.compile(method) if args.compile else method
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    side = args.input_size or round(args.size * 8 / 7)
    images = torch.randint(0, 256, (args.batch, 3, side, side), dtype=torch.uint8, device=device)
    g = torch.Generator(device=device).manual_seed(0)

    def train_step():
        views = [make_views(images, spec, g)[0].contiguous(memory_format=torch.channels_last) for spec in method.views]
        if hasattr(method, "begin_step"):
            method.begin_step(0.0, g)
        with autocast():
            loss, _ = step_fn(views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if hasattr(method, "update_momentum"):
            method.update_momentum(0.99)

    backbone = method.backbone
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=torch.channels_last)

    def bare_step():
        with autocast():
            out = backbone(x)
        out.float().sum().backward()

    t_step = _timed(train_step, args.steps, args.warmup, device)
    t_bare = _timed(bare_step, args.steps, args.warmup, device)
    result = {"step_img_s": args.batch / t_step, "bare_fwd_bwd_img_s": args.batch / t_bare,
              "ratio": t_bare / t_step}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {name} | {args.method} {args.arch} {args.size}px batch {args.batch} "
          f"{'compiled' if args.compile else 'eager'} {'bf16' if device.type == 'cuda' else 'fp32'}")
    print(f"train step: {result['step_img_s']:.1f} img/s | bare backbone fwd+bwd: "
          f"{result['bare_fwd_bwd_img_s']:.1f} img/s | ratio {result['ratio']:.3f}")
    return result


if __name__ == "__main__":
    main()
