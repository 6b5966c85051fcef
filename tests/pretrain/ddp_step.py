"""One MoCo v2 step under torchrun (launched by test_distributed.py); writes grads and queue."""
import os
import sys

import torch

from pretrain import distributed
from pretrain.data.augment import make_views
from pretrain.methods.mocov2 import MoCoV2

BATCH, SIZE = 8, 32


def batch():
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (BATCH, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)


def step(rank: int, world: int):
    """One MoCo step on this process's share of the batch; returns grads and queue."""
    torch.manual_seed(0)
    model = MoCoV2("resnet18", stem="cifar", dim=16, hidden_dim=32, queue_size=24, view={"size": SIZE})
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    ddp = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    local = BATCH // world
    images = batch()[rank * local:(rank + 1) * local]
    g = torch.Generator().manual_seed(7)
    views = [make_views(images, spec, g, total=BATCH, offset=rank * local)[0] for spec in model.views]
    loss, _ = ddp(views)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return grads, model.queue(), int(model.queue.ptr)


if __name__ == "__main__":
    torch.set_num_threads(1)
    rank, world, _ = distributed.setup()
    torch.save(step(rank, world), os.path.join(sys.argv[1], f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()
