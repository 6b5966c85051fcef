"""One MoCo v2 (per-process or shuffle-BN), ReSSL or CGH (shuffle-BN) or LEWEL_M step under torchrun (launched by test_distributed.py);
writes grads and the queue/memory."""
import os
import sys

import torch

from pretrain import distributed
from pretrain.data.augment import make_views
from pretrain.methods.cgh import CGH
from pretrain.methods.lewel import LEWEL
from pretrain.methods.mocov2 import MoCoV2
from pretrain.methods.ressl import ReSSL

BATCH, SIZE = 8, 32


def batch():
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (BATCH, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)


def build(method: str):
    """Shuffle-BN methods are built with the default ``bn_splits`` (8): under DDP each process
    must be one BN group (the authors' rule), on one process the batch is split in 8."""
    if method.startswith("lewel_m"):  # LEWEL_M: the aligned loss's in-batch negatives span the processes
        return LEWEL("resnet18", stem="cifar", base="moco", dim=16, hidden_dim=32, groups=2, queue_size=24,
                     bn="shuffle" if method.endswith("shuffle_bn") else "global",
                     views=[{"size": SIZE}])
    if method.startswith("mocov2"):  # mocov2_shuffle_bn: keys computed on a batch shuffled across processes
        bn = "shuffle" if method == "mocov2_shuffle_bn" else "global"
        return MoCoV2("resnet18", stem="cifar", dim=16, hidden_dim=32, queue_size=24, view={"size": SIZE}, bn=bn)
    if method == "cgh_shuffle_bn":  # the teacher's two contexts computed on a batch shuffled across processes
        return CGH("resnet18", stem="cifar", dim=16, hidden_dim=32, memory=24, bn="shuffle", reduction="mean",
                   infonce_warmup_epochs=1, teacher_view={"size": SIZE}, student_views=[{"size": SIZE}])
    # ReSSL with shuffle-BN: the teacher runs on a batch shuffled across the processes
    return ReSSL("resnet18", stem="cifar", dim=16, hidden_dim=32, memory=24, bn="shuffle",
                 predictor=False, infonce_warmup_epochs=1, teacher_view={"size": SIZE},
                 student_views=[{"size": SIZE}])


def bn_groups(model) -> list[int]:
    """The number of BN groups of every batch-norm layer (1 for a plain BatchNorm2d)."""
    return sorted({getattr(m, "splits", 1) for m in model.modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)})


def step(rank: int, world: int, method: str = "mocov2"):
    """One step on this process's share of the batch; returns grads, queue, its pointer and
    the BN group counts of the model as built."""
    torch.manual_seed(0)
    model = build(method)
    groups = bn_groups(model)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    local = BATCH // world
    images = batch()[rank * local:(rank + 1) * local]
    g = torch.Generator().manual_seed(7)
    views = [make_views(images, spec, g, total=BATCH, offset=rank * local)[0] for spec in model.views]
    if hasattr(model, "begin_step"):
        model.begin_step(0.5, g)  # mid warm-up: both the relation loss and InfoNCE contribute
    loss, _ = ddp(views)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    queue = model.memory if method.startswith(("ressl", "cgh")) else model.queue
    return grads, queue(), int(queue.ptr), groups


if __name__ == "__main__":
    torch.set_num_threads(1)
    rank, world, _ = distributed.setup()
    torch.save(step(rank, world, sys.argv[2]), os.path.join(sys.argv[1], f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()
