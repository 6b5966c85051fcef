"""One code path for 1 and N processes (torchrun / SLURM env vars; nccl on GPU, gloo on CPU).

    torchrun --nproc_per_node 8 -m pretrain --config ...                      # one machine
    torchrun --nnodes 2 --node_rank R --rdzv_backend c10d \\
             --rdzv_endpoint HOST:29500 --nproc_per_node 8 -m pretrain ...     # several machines
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup() -> tuple[int, int, int]:
    """Initialise the process group when launched with WORLD_SIZE > 1; returns
    (rank, world_size, local_rank). A single process needs no launcher."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return rank(), world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


@torch.no_grad()
def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every rank in rank order (no gradient): queue updates."""
    if world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every rank, with gradients flowing back to each rank's
    part (in-batch negatives across devices)."""
    if world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()))


@torch.no_grad()
def mean(x: torch.Tensor) -> float:
    """Mean of a scalar over all processes (every process gets the same value, so a
    NaN on any process stops all of them together)."""
    if world_size() == 1:
        return float(x)
    y = x.detach().float().clone()
    dist.all_reduce(y)
    return float(y) / world_size()
