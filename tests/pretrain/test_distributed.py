"""Two CPU processes (gloo, launched with torchrun) give the same gradients and queue as
one process with the full batch, for MoCo v2's queue (per-process BN and shuffle-BN), LEWEL_M
(queue, and the aligned loss's in-batch negatives gathered from both processes), and for
ReSSL's and CGH's memory with the teacher's batch shuffled across processes (shuffle-BN). Batch-norm layers are put in eval mode: with
per-process BN statistics the two set-ups differ by design (SyncBN is GPU-only)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_step.py")


def _load_worker():
    spec = importlib.util.spec_from_file_location("ddp_step", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", ["mocov2", "mocov2_shuffle_bn", "ressl_shuffle_bn", "cgh_shuffle_bn",
                                    "lewel_m", "lewel_m_shuffle_bn"])  # LEWEL_M: in-batch negatives of both
def test_two_gloo_processes_match_one_process(tmp_path, method):
    # --log-dir inside tmp_path: by default torchrun makes a new /tmp/torchelastic_* per run, never removed
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "--log-dir", str(tmp_path / "torchrun"), str(WORKER), str(tmp_path), method],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    worker = _load_worker()
    ref_grads, ref_queue, ref_ptr, ref_groups = worker.step(0, 1, method)
    shuffle_bn = method.endswith("shuffle_bn")
    # bn_splits (default 8) splits BN on one process only; under DDP each process is one group
    assert max(ref_groups) == (8 if shuffle_bn else 1)
    for rank in range(2):
        grads, queue, ptr, groups = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert groups == [1], groups
        assert grads.keys() == ref_grads.keys() and len(grads) > 0
        for name in ref_grads:
            torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)
        # every process enqueued the keys of the whole global batch, in rank order
        assert ptr == ref_ptr == worker.BATCH
        torch.testing.assert_close(queue, ref_queue, rtol=1e-5, atol=1e-6)
