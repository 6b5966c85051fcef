"""The SLURM launcher, run through submitit's local executor with two tasks (gloo)."""
import csv

from evaluation.records import read_records
from pretrain import submit


def test_local_executor_runs_two_process_training(generated, tmp_path):
    out = tmp_path / "run"
    results = submit.main([
        "--config", "mocov2_smoke.yaml", "--local", "--tasks", "2", "--wait", "--cpus-per-task", "1",
        "--timeout-min", "10", f"data.root={generated['imagefolder']}", f"train.out_dir={out}", "monitor=null",
        "optim.batch_size=16", "optim.max_steps=2", "method.queue_size=64", "method.hidden_dim=32",
        "train.quiet=true"])
    assert results == [str(out / "backbone.pth")] * 2  # both tasks return the exported backbone
    with open(out / "log.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["1", "2"]
    logs = sorted(p.name for p in (out / "submitit").glob("*_log.out"))
    assert len(logs) == 2  # one log per task
    records = [r for r in read_records() if r.task == "pretrain"]
    assert len(records) == 1 and records[0].protocol["processes"] == 2
