"""Pieces several methods share: projection MLPs, the EMA (momentum) update, the memory queue."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from pretrain.distributed import gather, rank, world_size


def mlp(in_dim: int, hidden_dim: int, out_dim: int, batch_norm: bool = False, *, bias: bool = True,
        spatial: bool = False, hidden_layers: int = 1) -> nn.Sequential:
    """Linear -> [BN] -> ReLU -> Linear (MoCo v2 head without BN; BYOL/ReSSL heads with).

    ``hidden_layers`` Linear-[BN]-ReLU blocks precede the output Linear; ``bias`` is every Linear's
    bias; ``spatial`` makes it the same MLP on every pixel of a (N, C, H, W) map: 1x1 convolutions
    and BatchNorm2d (PCD's projector)."""
    linear = (lambda i, o: nn.Conv2d(i, o, kernel_size=1, bias=bias)) if spatial else (
        lambda i, o: nn.Linear(i, o, bias=bias))
    norm = nn.BatchNorm2d if spatial else nn.BatchNorm1d
    layers: list[nn.Module] = []
    for i in range(hidden_layers):
        layers.append(linear(in_dim if i == 0 else hidden_dim, hidden_dim))
        if batch_norm:
            layers.append(norm(hidden_dim))
        layers.append(nn.ReLU(inplace=True))
    layers.append(linear(hidden_dim, out_dim))
    return nn.Sequential(*layers)


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float, buffers: bool = False) -> None:
    """theta_target <- m * theta_target + (1 - m) * theta_online over parameters. Buffers
    (BN running statistics) are left alone: the target network keeps its own, as in
    MoCo's and BYOL's reference code. ``buffers=True`` is EMAN (Cai et al. 2021): the
    floating-point buffers (BN running mean/var) are averaged the same way and integer
    ones (``num_batches_tracked``) copied, for a target network run in eval mode."""
    online_params = [p.detach() for p in online.parameters()]
    target_params = list(target.parameters())
    torch._foreach_mul_(target_params, m)
    torch._foreach_add_(target_params, online_params, alpha=1 - m)
    if buffers:
        for b_online, b_target in zip(online.buffers(), target.buffers()):
            if b_target.is_floating_point():
                b_target.mul_(m).add_(b_online, alpha=1 - m)
            else:
                b_target.copy_(b_online)


def momentum_copy(online: nn.Module) -> nn.Module:
    """The EMA (target / key) twin of ``online``: same initial weights, no gradient."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


class MemoryQueue(nn.Module):
    """FIFO memory of the last ``size`` embeddings (MoCo's queue, ReSSL's/CGH's memory buffer).

    ``push`` writes the embeddings of every process (all-gathered, in rank order) over the
    oldest entries, wrapping around the end. Starts as random unit vectors, as MoCo does.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("embeddings", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        keys = gather(keys.detach())
        size = self.embeddings.shape[0]
        idx = (self.ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.embeddings[idx] = keys.to(self.embeddings.dtype)
        self.ptr.copy_((self.ptr + keys.shape[0]) % size)

    def forward(self) -> torch.Tensor:
        """The memory as it is now (a copy, so a later push cannot change a loss's inputs)."""
        return self.embeddings.clone()


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are computed over ``splits`` separate groups of
    the batch (samples i, i+splits, i+2·splits, ... form a group): on one device it behaves
    like BN on ``splits`` GPUs. Parameters, buffers and state_dict keys are those of
    BatchNorm2d; running statistics are the mean over the groups. Eval mode is plain BN."""

    def __init__(self, num_features: int, splits: int, **kwargs):
        super().__init__(num_features, **kwargs)
        self.splits = splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if not self.training or self.splits == 1:
            return super().forward(x)
        if n % self.splits:
            raise ValueError(f"batch of {n} cannot be split into {self.splits} BN groups")
        mean = self.running_mean.repeat(self.splits)
        var = self.running_var.repeat(self.splits)
        y = F.batch_norm(x.reshape(n // self.splits, c * self.splits, h, w), mean, var,
                         self.weight.repeat(self.splits), self.bias.repeat(self.splits), True,
                         self.momentum, self.eps)
        with torch.no_grad():
            self.running_mean.copy_(mean.view(self.splits, c).mean(0))
            self.running_var.copy_(var.view(self.splits, c).mean(0))
            self.num_batches_tracked += 1
        # back in the input's memory layout: the reshape above copies a channels_last input into
        # NCHW, and the next layers (max-pool above all) run several times slower on NCHW there
        layout = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
                  else torch.contiguous_format)
        return y.view(n, c, h, w).contiguous(memory_format=layout)


def split_batch_norm(module: nn.Module, splits: int) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` (in place) by a SplitBatchNorm2d with the same
    weights and statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, SplitBatchNorm2d):
            split = SplitBatchNorm2d(child.num_features, splits, eps=child.eps, momentum=child.momentum,
                                     affine=child.affine, track_running_stats=child.track_running_stats)
            split.load_state_dict(child.state_dict())
            split.train(child.training)
            setattr(module, name, split.to(child.weight.device))
        else:
            split_batch_norm(child, splits)
    return module


def use_shuffle_bn(bn: str, encoder: nn.Module, splits: int) -> bool:
    """A method's ``bn`` setting: "global" (per-process BN, or SyncBN with ``train.sync_bn``)
    or "shuffle" (MoCo's shuffle-BN). For "shuffle" on ONE process the encoder's BN layers
    become ``splits`` groups, emulating ``splits`` GPUs (call it before the teacher/key copy is
    made); with several processes each process is one BN group and ``splits`` is ignored: the
    shuffle crosses the processes, as in the official MoCo, ReSSL and CGH code (CGH's
    ``bn_splits = 1 if distributed else 8``). Returns whether the teacher/key pass runs on a
    shuffled batch (``batch_shuffled``)."""
    if bn not in ("global", "shuffle"):
        raise ValueError(f"bn must be 'global' or 'shuffle', got {bn!r}")
    if bn == "shuffle" and world_size() == 1 and splits > 1:
        split_batch_norm(encoder, splits)
    return bn == "shuffle"


@torch.no_grad()
def batch_shuffled(fn, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``fn(x)`` computed on a randomly shuffled global batch and returned in the original
    order: MoCo's shuffle-BN for a network without gradient. Under DDP the global batch is
    gathered, permuted (the same permutation on every process: ``generator`` is seeded
    identically on all of them) and each process runs its slice, so BN statistics mix
    samples of different processes; on one process the key network's SplitBatchNorm2d
    groups do the same job."""
    n = x.shape[0]
    everything = gather(x)
    device = generator.device if generator is not None else x.device
    perm = torch.randperm(everything.shape[0], generator=generator, device=device).to(x.device)
    mine = slice(rank() * n, (rank() + 1) * n)
    out = gather(fn(everything[perm[mine]]))
    return out[torch.argsort(perm)][mine]


class StepContext:
    """Mixin for methods that need the step's context: the engine calls
    ``begin_step(epoch, generator)`` before each step with the training progress in
    (fractional) epochs and the step's random generator (identical on every process, so a
    shuffle-BN permutation is the same everywhere)."""

    _epoch: float = 0.0
    _generator: torch.Generator | None = None

    def begin_step(self, epoch: float, generator: torch.Generator | None) -> None:
        self._epoch, self._generator = epoch, generator


class InfoNCEWarmup(StepContext):
    """Mixin for methods that warm up with InfoNCE (ReSSL Eq. 7, CGH): ``alpha()`` is the
    weight of the method's own loss, epoch / ``infonce_warmup_epochs`` (= step / warm-up
    steps) up to 1."""

    infonce_warmup_epochs: float = 0.0

    def alpha(self) -> float:
        if self.infonce_warmup_epochs <= 0:
            return 1.0
        return min(1.0, self._epoch / self.infonce_warmup_epochs)
