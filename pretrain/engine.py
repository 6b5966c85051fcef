"""The one training loop for every method.

A method is an ``nn.Module`` with ``views`` (a list of ``ViewSpec``), a ``forward(views)``
returning ``(loss, logs)``, a ``backbone`` property (the network that is exported) and,
for EMA methods, ``update_momentum(m)``; methods that need the training progress or the
step's random generator (InfoNCE warm-up, shuffle-BN) define ``begin_step(epoch, generator)``;
methods whose evaluation needs more than the backbone (CGH's hypercolumn head) define
``export_extra()``, a dict stored in the exported backbone file.
The engine owns data, augmentation, optimiser,
schedules, mixed precision, checkpoints (atomic; exact resume), logging and the final
backbone export + result record.
"""
from __future__ import annotations

import csv
import importlib
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from evaluation.records import append_record
from pretrain import checkpoint as ckpt
from pretrain import distributed
from pretrain.config import ConfigError, dump_config
from pretrain.optim import build_optimizer
from pretrain.data.augment import make_view_set
from pretrain.data.loading import InMemoryImages, UInt8Images, batch_loader, epoch_batches, open_dataset
from pretrain.features import knn_accuracy
from pretrain.schedules import cosine_with_warmup, momentum_schedule

log = logging.getLogger("pretrain")
METHODS = {name: f"pretrain.methods.{name}" for name in ("mocov2", "byol", "ressl", "cgh", "revisiting", "pcd", "lewel")}
CHECKPOINT = "checkpoint.pth"
BACKBONE = "backbone.pth"


class NonFiniteLoss(FloatingPointError):
    pass


def build_method(config: dict[str, Any]) -> nn.Module:
    name = config["method"]["name"]
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    model = config["model"]
    return importlib.import_module(METHODS[name]).build(config, model["arch"], model.get("stem", "imagenet"))


def train(config: dict[str, Any], resume: str | None = None) -> Path:
    """Run (or resume) one pretraining experiment; returns the exported backbone path."""
    t_cfg, o_cfg, d_cfg = config["train"], config["optim"], config["data"]
    out = Path(t_cfg["out_dir"])
    rank, world, local_rank = distributed.setup()
    main_process = rank == 0
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(dump_config(config))
    seed = int(t_cfg.get("seed", 0))
    default_device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(t_cfg.get("device") or default_device)
    torch.manual_seed(seed)
    if t_cfg.get("deterministic", False):
        torch.use_deterministic_algorithms(True)

    core = build_method(config).to(device)  # the method itself; `method` may wrap it in DDP
    ema = config.get("ema")
    if hasattr(core, "update_momentum") and not ema:
        raise ConfigError(
            f"{config.get('name', 'config')}: method {config['method']['name']!r} updates an EMA "
            f"(momentum) teacher but the config has no `ema` block; state it, e.g. `ema: {{schedule: "
            f"constant, base: 0.999}}` (MoCo v2, ReSSL NeurIPS, CGH) or `ema: {{schedule: cosine, base: "
            f"0.996}}` (BYOL, ReSSL TPAMI: 0.996 -> 1)")
    if t_cfg.get("sync_bn", False):
        core = nn.SyncBatchNorm.convert_sync_batchnorm(core)
    channels_last = t_cfg.get("channels_last", True)  # faster on GPU and on CPU (oneDNN) alike
    if channels_last:
        core = core.to(memory_format=torch.channels_last)
    if t_cfg.get("compile", False):  # torch.compile in place: state_dict keys stay the same
        core.compile()
    method = core
    if world > 1:
        method = nn.parallel.DistributedDataParallel(
            core, device_ids=[device.index] if device.type == "cuda" else None)
    reader = open_dataset(d_cfg["kind"], d_cfg["root"], d_cfg.get("split", "train"),
                          **d_cfg.get("reader_args", {}))
    dataset = UInt8Images(reader, d_cfg["image_size"], keep_aspect=d_cfg.get("keep_aspect", False))
    if d_cfg.get("cache", False):  # small data: decode every image once, not at every step
        dataset = InMemoryImages(dataset, "data.cache", progress=not t_cfg.get("quiet", False) and main_process)
    batch_size = int(o_cfg["batch_size"])  # global, over all processes
    if batch_size % world:
        raise ValueError(f"optim.batch_size {batch_size} is not divisible by the {world} processes")
    local_batch = batch_size // world
    if len(dataset) < batch_size:
        raise ValueError(f"dataset {d_cfg['root']} has {len(dataset)} images, fewer than one "
                         f"batch ({batch_size})")
    steps_per_epoch = len(dataset) // batch_size
    total_steps = int(o_cfg.get("max_steps") or o_cfg["epochs"] * steps_per_epoch)
    lr = o_cfg["base_lr"] * batch_size / o_cfg.get("lr_reference_batch", 256)
    lrs = cosine_with_warmup(lr, total_steps, int(o_cfg.get("warmup_epochs", 0) * steps_per_epoch),
                             final=o_cfg.get("final_lr", 0.0))
    momenta = (momentum_schedule(ema["schedule"], ema["base"], total_steps) if ema
               else [float("nan")] * total_steps)  # no EMA teacher: logged as nan
    optimizer = build_optimizer(core, o_cfg, lr)
    use_amp = device.type == "cuda" and t_cfg.get("amp", True)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else nullcontext

    step = 0
    ckpt_path = out / CHECKPOINT
    source = ckpt_path if resume == "auto" else Path(resume) if resume else None
    if source is not None and (resume != "auto" or source.exists()):
        state = ckpt.load(source)
        ckpt.load_state_strict(core, state["models"]["method"], str(source))
        optimizer.load_state_dict(state["optimizer"])
        ckpt.set_rng_state(state["rng"])
        step = int(state["step"])
        log.info("resumed from %s at step %d", source, step)
    log_rows = _CsvLog(out / "log.csv", step) if main_process else None
    tensorboard = (_tensorboard(out / "tb", purge_step=step)
                   if main_process and t_cfg.get("tensorboard", True) else None)

    def export_extra() -> dict[str, Any]:
        return core.export_extra() if hasattr(core, "export_extra") else {}

    def save_checkpoint(at_step: int) -> None:
        if not main_process:
            return
        payload = ckpt.backbone_payload(core.backbone, method=config["method"]["name"],
                                        source_run=str(out), extra={**ckpt.run_metadata(config), **export_extra()})
        ckpt.save(ckpt.training_checkpoint(
            models={"method": core}, optimizer=optimizer, scaler=None, state={},
            epoch=at_step // steps_per_epoch, step=at_step, config=config, backbone=payload),
            ckpt_path)

    monitor = _KnnMonitor(config, out, step) if main_process and config.get("monitor") else None
    g = torch.Generator(device=device)
    every = int(t_cfg.get("checkpoint_every", 0)) or total_steps
    core.train()
    start, first_step, loss_value = time.perf_counter(), step, float("nan")
    bar = tqdm(total=total_steps, initial=step, desc=config.get("name", "pretrain"),
               unit="step", dynamic_ncols=True, disable=t_cfg.get("quiet", False) or not main_process)
    while step < total_steps:
        epoch, offset = divmod(step, steps_per_epoch)
        batches = epoch_batches(len(dataset), batch_size, seed, epoch)[offset:]
        batches = [b[rank * local_batch:(rank + 1) * local_batch] for b in batches[:total_steps - step]]
        for images, _, *sizes in batch_loader(dataset, batches, int(d_cfg.get("workers", 0))):
            images = images.to(device, non_blocking=True)
            sizes = sizes[0].to(device) if sizes else None  # (height, width) of aspect-kept images
            for group in optimizer.param_groups:
                group["lr"] = float(lrs[step]) * group.get("lr_mult", 1.0)
            g.manual_seed(seed * 1_000_003 + step)
            views = [v for v, _ in make_view_set(images, core.views, g, total=batch_size,
                                                 offset=rank * local_batch, sizes=sizes)]
            if hasattr(core, "begin_step"):  # methods that need the step's progress or generator
                core.begin_step(epoch=step / steps_per_epoch, generator=g)
            if channels_last:
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            with autocast():
                loss, logs = method(views)
            loss_value = distributed.mean(loss.detach())  # same on every process
            if not math.isfinite(loss_value):
                raise NonFiniteLoss(
                    f"{config.get('name', 'run')}: loss is {loss_value} at step {step} (epoch "
                    f"{epoch}); stopping. The last good checkpoint is {ckpt_path} "
                    f"({'present' if ckpt_path.exists() else 'none written yet'}).")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if hasattr(core, "update_momentum"):
                core.update_momentum(float(momenta[step]))
            step += 1
            if log_rows is not None:
                log_rows.writerow({"step": step, "epoch": epoch, "loss": f"{loss_value:.6f}",
                               "lr": f"{lrs[step - 1]:.6g}", "momentum": f"{momenta[step - 1]:.6f}",
                               **{k: f"{v:.6g}" for k, v in logs.items()}})
            if tensorboard is not None:
                for key, value in (("loss", loss_value), ("lr", lrs[step - 1]), ("momentum", momenta[step - 1]), *logs.items()):
                    tensorboard.add_scalar(f"train/{key}", value, step)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{loss_value:.4f}", img_s=f"{(step - first_step) * batch_size / elapsed:.0f}")
            bar.update(1)
            if step % every == 0 or step == total_steps:
                save_checkpoint(step)
            if monitor is not None and ((monitor.every and step % monitor.every == 0) or step == total_steps):
                accuracy = monitor(core.backbone, step, str(device))
                if tensorboard is not None:
                    tensorboard.add_scalar("monitor/knn_top1", accuracy, step)
    bar.close()
    if tensorboard is not None:
        tensorboard.close()
    wall = time.perf_counter() - start
    backbone_path = out / BACKBONE
    if not main_process:
        return backbone_path
    ckpt.save_backbone(backbone_path, core.backbone, method=config["method"]["name"], source_run=str(out),
                       extra={**ckpt.run_metadata(config), **export_extra()})
    if step > first_step:
        append_record(method=config["method"]["name"], task="pretrain", dataset=d_cfg.get("name", d_cfg["kind"]),
                      metric="final_loss", value=loss_value, scale=config.get("scale", "smoke"),
                      checkpoint=backbone_path, device=str(device), wall_time_s=wall,
                      protocol={"config": config.get("name", ""), "steps": total_steps,
                                "batch_size": batch_size, "processes": world, "images": len(dataset),
                                "reproduces": config.get("reproduces", [])})
    log.info("wrote %s (%d steps, %.0f s)", backbone_path, step, wall)
    return backbone_path


class _KnnMonitor:
    """Weighted-kNN top-1 of the current backbone on a held-out split (``monitor`` config:
    kind/root default to the training data's; bank_split, query_split, k, temperature,
    every_steps, 0 for the last step only; cache, default data.cache; reader_args default to the
    training data's, so a class subset or a ``max_per_class`` cut applies to both splits).
    Written to ``monitor.csv`` like ``log.csv`` (``_CsvLog``); a monitor, not a result record."""

    def __init__(self, config: dict[str, Any], out: Path, resume_step: int = 0):
        m, d = config["monitor"], config["data"]
        kind, root = m.get("kind", d["kind"]), m.get("root", d["root"])
        size = m.get("image_size", d["image_size"])
        reader_args = m.get("reader_args", d.get("reader_args") or {})
        self.bank, self.queries = (UInt8Images(open_dataset(kind, root, split, **reader_args), size)
                                   for split in (m.get("bank_split", "train"), m.get("query_split", "test")))
        if m.get("cache", d.get("cache", False)):  # evaluated many times: decode once (as data.cache)
            self.bank, self.queries = (InMemoryImages(x, "monitor.cache", progress=False)
                                       for x in (self.bank, self.queries))
        self.k, self.temperature = int(m.get("k", 200)), float(m.get("temperature", 0.1))
        self.every = int(m.get("every_steps", 100))
        if self.every < 0:
            raise ValueError(f"monitor.every_steps must be >= 0 (0: the last step only), got {self.every}")
        self.rows = _CsvLog(out / "monitor.csv", resume_step, fields=["step", "knn_top1", "k", "temperature"])

    def __call__(self, backbone: nn.Module, step: int, device: str) -> float:
        accuracy = knn_accuracy(backbone, self.bank, self.queries, device, self.k, self.temperature,
                                progress=False)
        self.rows.writerow({"step": step, "knn_top1": f"{accuracy:.2f}", "k": self.k,
                            "temperature": self.temperature})
        log.info("step %d: kNN monitor top-1 %.2f%%", step, accuracy)
        return accuracy


def _tensorboard(path: Path, purge_step: int):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(path), purge_step=purge_step or None)


class _CsvLog:
    """Append-only CSV of per-step scalars (a fresh run starts a new file); on resume, rows
    past the resumed step are dropped. Columns: ``fields``, then any other keys of the first row."""

    FIELDS = ["step", "epoch", "loss", "lr", "momentum"]

    def __init__(self, path: Path, resume_step: int, fields: list[str] | None = None):
        self.path, self.base_fields = path, list(fields or self.FIELDS)
        rows = []
        if path.exists() and resume_step > 0:
            with open(path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self.fields = list(rows[0].keys()) if rows else None
        with open(path, "w", newline="") as f:
            if rows:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(rows)

    def writerow(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = self.base_fields + [k for k in row if k not in self.base_fields]
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
