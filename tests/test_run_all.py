"""docker/run_all.sh: the resumable steps of the reduced/full tiers (no training is run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "ressl.cifar10_pred_taus0.1_taut0.04"  # ReSSL Table 1's best CIFAR-10 row


def _bash(script: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PY": sys.executable,
                               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **env})


def test_run_step_runs_once_then_skips_and_continues_after_a_failure(tmp_path):
    logs = tmp_path / "logs"
    script = ('source docker/run_all.sh; '
              'run_step a "$LOGS/a.done" "" "echo ran-a"; '
              'run_step a "$LOGS/a.done" "" "echo ran-a"; '
              'run_step bad "$LOGS/bad.done" "" "echo oops; exit 3"; '
              'run_step c "$LOGS/c.done" "/no/such/dataset" "echo ran-c"; '
              'run_step d "$LOGS/d.done" "" "echo ran-d"; summary')
    result = _bash(script, LOGS=str(logs))
    assert result.returncode == 1  # summary reports the failure
    assert result.stdout.count("ran-a") == 1 and "[skip] a: finished" in result.stdout
    assert "[failed] bad (exit 3)" in result.stderr and "oops" in (logs / "bad.log").read_text()
    assert not (logs / "bad.done").exists()
    assert "[missing] c: expected /no/such/dataset" in result.stderr and "ran-c" not in result.stdout
    assert "ran-d" in result.stdout and (logs / "d.done").exists()  # the rest continued
    assert "FAILED: bad" in result.stdout and "c (missing /no/such/dataset)" in result.stdout
    again = _bash(script, LOGS=str(logs))
    assert "ran-a" not in again.stdout and "ran-d" not in again.stdout and "oops" in again.stdout


def test_full_tier_dry_run_skips_finished_steps_and_names_missing_data(tmp_path):
    data, logs, runs = tmp_path / "data", tmp_path / "logs", tmp_path / "runs"
    (data / "cifar-10-batches-py").mkdir(parents=True)
    backbone = runs / "ressl/cifar10_pred_taus0.1_taut0.04/backbone.pth"
    backbone.parent.mkdir(parents=True)
    backbone.write_bytes(b"finished pretraining")
    logs.mkdir()
    (logs / f"{CONFIG}.linear-ressl_small-cifar10.done").write_text("2026-01-01T00:00:00Z\n")
    result = _bash("bash docker/run_all.sh", SCALE="full", DRY_RUN="1", TABLES="ressl:Table 1", GPUS="2",
                   DATA_ROOT=str(data), LOGS=str(logs), RUN_ROOT=str(runs))
    assert result.returncode == 0, result.stderr
    out, err = result.stdout, result.stderr
    assert f"[skip] {CONFIG}.pretrain: finished ({backbone} exists)" in out
    assert f"[skip] {CONFIG}.linear-ressl_small-cifar10: finished" in out
    other = "ressl.cifar10_pred_taus0.1_taut0.03"
    assert (f"[would run] {other}.pretrain: torchrun --nproc_per_node 2 -m pretrain --config "
            f"pretrain/configs/ressl/cifar10_pred_taus0.1_taut0.03.yaml --resume auto "
            f"data.root={data}/cifar-10-batches-py") in out
    # its evaluation waits for the backbone; STL-10 is not under DATA_ROOT: named, skipped
    assert f"[missing] {other}.linear-ressl_small-cifar10: expected {runs}/ressl/cifar10_pred_taus0.1_taut0.03" in err
    assert f"[missing] ressl.stl10_pred_taus0.1_taut0.04.pretrain: expected {data}/stl10_binary" in err
    assert not list(logs.glob("*.log"))  # a dry run runs nothing
