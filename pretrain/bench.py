"""Throughput of a method's full training step against the bare backbone (the ceiling).

    python -m pretrain.bench --method mocov2 --arch resnet50 --size 224 --batch 256

Measures, in one run on the current device:

1. the engine's whole step -- batched view augmentation from a uint8 batch already on the
   device, forward, loss, backward, optimiser step, EMA update;
2. the ceiling: the same backbone passes with nothing else. Forward hooks record every
   pass a step makes through a backbone (input shape; with gradient or not: a student's
   forward+backward, a teacher's / key encoder's forward), and the ceiling is the bare
   backbone timed on pre-made batches of those shapes, once per recorded pass. For MoCo
   v2 that is 1 forward+backward + 1 forward (the "MoCo-style" ceiling of
   ../shared/MEASURED.md), for BYOL 2 + 2, for ReSSL/CGH 1 forward + one forward+backward
   per student crop. The ratio step/ceiling is then the share of the step that is not
   augmentation, heads, losses, optimiser or EMA overhead;
3. for reference, one bare forward+backward of the first view's shape.
4. with ``--baseline M``, the whole step of method M built from the same config, so a
   method's cost relative to the one it extends is measured under the same load
   (``--method lewel --baseline mocov2``; ``method.base=byol --baseline byol``);
5. with ``--flops``, the floating-point operations of one whole step (and of the baseline's),
   counted by ``torch.utils.flop_counter`` (matrix products and convolutions, forward and
   backward): a cost ratio that does not depend on the device, to set beside the timed one
   when the timing is taken on a CPU and the paper's on GPUs.

The step and each ceiling pass are timed in turn, ``--rounds`` times (``--steps`` calls each),
so both see the same machine load; the reported ratio is the median over rounds.
Prints img/s of each and the ratio. No data loading is timed (the uint8 batch is made
once); this is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

from pretrain.config import apply_overrides
from pretrain.data.augment import make_view_set
from pretrain.engine import METHODS, build_method
from pretrain.optim import build_optimizer


def interleaved_timings(fns: dict, rounds: int, steps: int, warmup: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in ``rounds`` rounds that each time
    ``steps`` consecutive calls of every function in turn. Interleaving puts the step and its
    ceiling under the same machine load: on a shared machine, timings taken minutes apart
    drift by more than the overhead being measured."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / steps)
    return times


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="mocov2", choices=sorted(METHODS))
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--stem", default="imagenet", choices=["imagenet", "cifar"])
    parser.add_argument("--size", type=int, default=224, help="view side")
    parser.add_argument("--input-size", type=int, default=None, help="side of the uint8 input batch (default: size * 8/7)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of interleaved timing (step, then each ceiling pass); the median is reported")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile the method")
    parser.add_argument("--baseline", default=None, choices=sorted(METHODS),
                        help="also time this method's step (same config and overrides; keys it does not "
                             "read are ignored) in the same rounds and report step time / its step time")
    parser.add_argument("--flops", action="store_true",
                        help="also count the FLOPs of one step (and of the baseline's step) with torch.utils.flop_counter")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. method.queue_size=4096")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    config = apply_overrides({"method": {"name": args.method}, "model": {"arch": args.arch, "stem": args.stem},
                              "views": {name: {"size": args.size} for name in ("default", "teacher", "student")}},
                             args.overrides)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext
    side = args.input_size or round(args.size * 8 / 7)
    images = torch.randint(0, 256, (args.batch, 3, side, side), dtype=torch.uint8, device=device)
    g = torch.Generator(device=device).manual_seed(0)

    def make_step(config: dict):
        """(method, its whole training step as a function of the callable that runs the method)."""
        method = build_method(config).to(device).to(memory_format=torch.channels_last)
        optimizer = build_optimizer(method, {"name": "sgd", "weight_decay": 1e-4}, 0.01)

        def step(fn):
            views = [v.contiguous(memory_format=torch.channels_last) for v, _ in make_view_set(images, method.views, g)]
            if hasattr(method, "begin_step"):
                method.begin_step(0.0, g)
            with autocast():
                loss, _ = fn(views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if hasattr(method, "update_momentum"):
                method.update_momentum(0.99)
        return method, step

    def compiled(method, step):
        fn = torch.compile(method) if args.compile else method
        return lambda: step(fn)

    method, step = make_step(config)
    train_step = compiled(method, step)
    others = {}
    if args.baseline:  # the same config with another method, e.g. LEWEL_M against MoCo v2
        others["baseline"] = compiled(*make_step({**config, "method": {**config["method"], "name": args.baseline}}))
    flops = {name: step_flops(fn) for name, fn in {"step": train_step, **others}.items()} if args.flops else {}

    passes = backbone_passes(method, lambda: step(method))  # eager: hooks see every pass
    backbone = method.backbone

    def bare(shape: tuple[int, ...], grad: bool):
        x = torch.randn(shape, device=device).contiguous(memory_format=torch.channels_last)

        def run():
            with torch.set_grad_enabled(grad), autocast():
                out = backbone(x)
            if grad:
                out.float().sum().backward()
        return run

    first = (args.batch, 3, args.size, args.size)
    shapes = sorted(set(passes) | {(first, True)})
    fns = {"step": train_step, **others, **{shape: bare(*shape) for shape in shapes}}
    times = interleaved_timings(fns, args.rounds, args.steps, args.warmup, device)
    ceiling = [sum(times[p][r] for p in passes) for r in range(args.rounds)]
    t_step, t_ceiling, t_bare = (statistics.median(t) for t in (times["step"], ceiling, times[(first, True)]))
    result = {"step_img_s": args.batch / t_step, "ceiling_img_s": args.batch / t_ceiling,
              "ratio": statistics.median(c / s for c, s in zip(ceiling, times["step"])),
              "ratio_rounds": [c / s for c, s in zip(ceiling, times["step"])],
              "bare_fwd_bwd_img_s": args.batch / t_bare,
              "ratio_to_bare_fwd_bwd": statistics.median(b / s for b, s in zip(times[(first, True)], times["step"])),
              "passes": [f"{'fwd+bwd' if grad else 'fwd'} {shape[-1]}px" for shape, grad in passes]}
    if args.baseline:  # per-step time relative to the baseline method's step, median over rounds
        result["time_vs_baseline"] = statistics.median(s / b for s, b in zip(times["step"], times["baseline"]))
        result["time_vs_baseline_rounds"] = [s / b for s, b in zip(times["step"], times["baseline"])]
    if flops:
        result["step_gflops"] = flops["step"] / 1e9
        if args.baseline:
            result["baseline_gflops"] = flops["baseline"] / 1e9
            result["flops_vs_baseline"] = flops["step"] / flops["baseline"]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device {name} | {args.method} {args.arch} {args.size}px batch {args.batch} "
          f"{'compiled' if args.compile else 'eager'} {'bf16' if device.type == 'cuda' else 'fp32'}")
    print(f"backbone passes per step: {', '.join(result['passes'])}")
    print(f"train step: {result['step_img_s']:.1f} img/s | ceiling (those passes alone): "
          f"{result['ceiling_img_s']:.1f} img/s | ratio {result['ratio']:.3f} (median of rounds: "
          f"{', '.join(f'{r:.3f}' for r in result['ratio_rounds'])})")
    print(f"bare backbone fwd+bwd: {result['bare_fwd_bwd_img_s']:.1f} img/s | ratio to it "
          f"{result['ratio_to_bare_fwd_bwd']:.3f}")
    if args.baseline:
        print(f"step time / {args.baseline} step time: {result['time_vs_baseline']:.3f} (median of rounds: "
              f"{', '.join(f'{r:.3f}' for r in result['time_vs_baseline_rounds'])})")
    if flops:
        print(f"FLOPs per step: {result['step_gflops']:.2f} G" + (
            f" | {args.baseline}: {result['baseline_gflops']:.2f} G | ratio {result['flops_vs_baseline']:.3f}"
            if args.baseline else ""))
    return result


def step_flops(step) -> float:
    """FLOPs of one call of ``step`` (forward, backward, optimiser), as counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def backbone_passes(method: torch.nn.Module, step) -> list[tuple[tuple[int, ...], bool]]:
    """(input shape, with gradient) of every backbone pass one call of ``step`` makes, seen
    by hooks on the first convolution of each backbone-type module of the method (the
    exported backbone's class, which the student, teacher and key encoders share; the first
    convolution also sees passes through ``forward_stages``, as CGH's hypercolumn makes)."""
    kind = type(method.backbone)
    passes: list[tuple[tuple[int, ...], bool]] = []

    def record(conv, inputs):
        passes.append((tuple(inputs[0].shape), torch.is_grad_enabled() and conv.weight.requires_grad))

    stems = [next(c for c in m.modules() if isinstance(c, torch.nn.Conv2d))
             for m in method.modules() if isinstance(m, kind)]
    handles = [conv.register_forward_pre_hook(record) for conv in stems]
    try:
        step()
    finally:
        for handle in handles:
            handle.remove()
    if not passes:
        raise RuntimeError(f"{type(method).__name__}: no pass through a {kind.__name__} was seen in a step")
    return passes


if __name__ == "__main__":
    main()
