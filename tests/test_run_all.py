"""docker/run_all.sh: the resumable steps of the reduced/full tiers (no training is run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pretrain.config import load_config

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


# --------------------------------------------------------------------------- smoke tier
RECORD = ('{py} -c "from evaluation.records import append_record; '
          "append_record(method='m', task='knn_cls', dataset='d', metric='top1', value=1.0, scale='smoke')\"")


def test_smoke_step_runs_once_and_records_go_to_the_user_folder(tmp_path):
    """A finished step is skipped (no duplicate record); a retrained input checkpoint or a changed
    command runs it again; records land in RESULTS/runs, never in the reference results/runs."""
    results, steps, ckpt = tmp_path / "local", tmp_path / "steps", tmp_path / "backbone.pth"
    ckpt.write_bytes(b"weights")
    reference = sorted((REPO / "results/runs").glob("*.jsonl"))
    before = {p: p.read_bytes() for p in reference}
    record = RECORD.format(py=sys.executable)
    script = (f'source docker/run_all.sh; STEPS={steps}; mkdir -p $STEPS; : > $STEPS/this_run.tsv; '
              f'once knn-m "{ckpt}" {record}; once knn-m "{ckpt}" {record}; '
              f'once bad "" false; once later "/no/such.pth" {record}; cat $STEPS/this_run.tsv')
    result = _bash(script, RESULTS=str(results))
    assert result.returncode == 0, result.stderr
    lines = (results / "runs/knn_cls.jsonl").read_text().splitlines()
    assert len(lines) == 1 and (steps / "knn-m/wall_s").exists()
    assert "[skip] knn-m: finished by an earlier run" in result.stdout
    assert "knn-m\tran\nknn-m\tskipped\nbad\tfailed\nlater\tmissing input" in result.stdout
    assert "[failed] bad (exit 1)" in result.stderr and not (steps / "bad/wall_s").exists()
    again = _bash(script, RESULTS=str(results))
    assert len((results / "runs/knn_cls.jsonl").read_text().splitlines()) == 1, again.stdout
    os.utime(ckpt, (1, 1))  # retrained: the step's input changed
    _bash(script, RESULTS=str(results))
    assert len((results / "runs/knn_cls.jsonl").read_text().splitlines()) == 2
    assert {p: p.read_bytes() for p in sorted((REPO / "results/runs").glob("*.jsonl"))} == before


def test_user_records_default_to_an_ignored_folder():
    result = _bash('unset RESULTS; source docker/run_all.sh; echo "$SSL_REPRO_RESULTS"')
    assert result.stdout.strip() == str(REPO / "results/local")
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/local/runs/knn_cls.jsonl"], cwd=REPO)
    assert ignored.returncode == 0  # a user's records are never committed by accident


def test_smoke_methods_come_from_the_smoke_configs():
    every = _bash("source docker/run_all.sh; smoke_methods all").stdout.split()
    default = _bash("source docker/run_all.sh; smoke_methods").stdout.split()
    variants = _bash('source docker/run_all.sh; echo "$SMOKE_VARIANTS"').stdout.split()
    configs = sorted(p.name[:-len("_smoke.yaml")] for p in (REPO / "pretrain/configs").glob("*_smoke.yaml"))
    assert sorted(every) == configs and every[0] == default[0] == "mocov2"
    assert variants and set(variants) <= set(configs)
    assert sorted(default) == sorted(set(configs) - set(variants))  # every method, one config each by default
    # after MoCo v2, the longest first (optim.max_steps), so the side-by-side slots end together
    steps = [load_config(REPO / f"pretrain/configs/{m}_smoke.yaml")["optim"]["max_steps"] for m in every[1:]]
    assert steps == sorted(steps, reverse=True)


def test_side_by_side_runs_at_most_smoke_jobs_commands_at_once(tmp_path):
    log = tmp_path / "log"
    script = (f'source docker/run_all.sh; '
              f'job() {{ echo "start $1" >> {log}; sleep 0.5; echo "end $1" >> {log}; }}; '
              f'for i in 1 2 3 4; do side_by_side job $i; done; wait; echo all-done')
    for jobs, most in (("1", 1), ("2", 2)):
        log.unlink(missing_ok=True)
        assert _bash(script, SMOKE_JOBS=jobs).stdout.strip() == "all-done"
        running = peak = 0
        for line in log.read_text().splitlines():
            running += 1 if line.startswith("start") else -1
            peak = max(peak, running)
        assert peak == most and log.read_text().count("end") == 4
