"""Result records: the one way a harness reports a number.

Every record is one JSON line in ``<runs>/<task>.jsonl``: ``results/local/runs`` for a user's
runs, ``results/runs`` for the project's committed reference records. The vocabulary of
``task`` and ``metric`` is that of the published tables (``evaluation/published``), so
the collector can join a measured number to the published one. ``scale`` says how far
the run is from the paper's protocol and is mandatory:

- ``smoke``   tiny run for CI; says nothing about the method,
- ``reduced`` fewer epochs/images than the paper (``protocol`` says which),
- ``full``    the paper's protocol.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from evaluation.provenance import (REPO_ROOT, atomic_write_text, device_description,
                                   git_commit, sha256_file, utc_now)

TASKS = frozenset({
    "linear_cls", "transfer_linear", "ablation", "det_voc", "det_coco", "inst_seg_coco",
    "sem_seg", "video_seg", "segment_retrieval", "depth", "knn_cls", "semi_sup_1pct",
    "semi_sup_10pct", "low_shot", "cost",
    # the suite's own bookkeeping (no published counterpart)
    "pretrain",
})
METRICS = frozenset({
    "top1", "top5", "AP", "AP50", "AP75", "AP_mask", "AP50_mask", "AP75_mask", "mIoU",
    "J_mean", "F_mean", "JF_mean", "rmse", "mAP", "relative_time", "time_per_epoch_s",
    "mean_per_class_acc", "mean_acc",
    # pretraining bookkeeping
    "final_loss", "img_per_s",
})
SCALES = ("smoke", "reduced", "full")
#: the project's own reference records (committed); written only with SSL_REPRO_RESULTS=results
DEFAULT_RUNS_DIR = REPO_ROOT / "results" / "runs"
#: where a run writes without SSL_REPRO_RESULTS: a user's records, not committed, never mixed into
#: the reference records (the collector reads both)
LOCAL_RUNS_DIR = REPO_ROOT / "results" / "local" / "runs"


class RecordError(ValueError):
    """A result record that would be ambiguous or dishonest."""


@dataclass
class ResultRecord:
    method: str
    task: str
    dataset: str
    metric: str
    value: float
    scale: str
    checkpoint: str = ""
    checkpoint_sha256: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    wall_time_s: float = 0.0
    run_id: str = ""
    time_utc: str = ""
    git_commit: str = ""

    def validate(self) -> None:
        if self.task not in TASKS:
            raise RecordError(f"unknown task {self.task!r}; expected one of {sorted(TASKS)}")
        if self.metric not in METRICS:
            raise RecordError(f"unknown metric {self.metric!r}; expected one of {sorted(METRICS)}")
        if self.scale not in SCALES:
            raise RecordError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            raise RecordError(f"value of {self.task}/{self.metric} is not a finite number: {self.value!r}")
        if self.scale == "reduced" and not self.protocol:
            raise RecordError("a 'reduced' record must say in `protocol` what was reduced")
        json.dumps(self.protocol)  # must be JSON-serialisable


def append_record(*, method: str, task: str, dataset: str, metric: str, value: float,
                  scale: str, checkpoint: str | os.PathLike | None = None,
                  protocol: dict[str, Any] | None = None, device: str | None = None,
                  wall_time_s: float = 0.0, run_id: str | None = None,
                  runs_dir: str | os.PathLike | None = None) -> ResultRecord:
    """Validate a record, fill in provenance and append it to ``<runs_dir>/<task>.jsonl``.

    The file is rewritten atomically under an exclusive lock, so concurrent harnesses
    and interrupted writes never leave a torn line. ``runs_dir`` defaults to
    ``$SSL_REPRO_RESULTS/runs`` or ``results/local/runs`` of the checkout (never the committed
    reference records of ``results/runs`` unless ``SSL_REPRO_RESULTS`` names ``results``).
    """
    ckpt = str(checkpoint) if checkpoint else ""
    record = ResultRecord(
        method=method, task=task, dataset=dataset, metric=metric, value=float(value),
        scale=scale, checkpoint=ckpt,
        checkpoint_sha256=sha256_file(ckpt) if ckpt and Path(ckpt).is_file() else "",
        protocol=dict(protocol or {}), device=device_description(device),
        wall_time_s=round(float(wall_time_s), 3), run_id=run_id or uuid.uuid4().hex[:12],
        time_utc=utc_now(), git_commit=git_commit())
    record.validate()
    _append(runs_path(runs_dir) / f"{task}.jsonl", [record])
    return record


def _line(record: ResultRecord) -> str:
    return json.dumps(asdict(record), sort_keys=True)


def _append(path: Path, new: list[ResultRecord]) -> int:
    """Append the records not already in ``path`` (same fields) under its lock, atomically;
    returns how many were appended."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = path.read_text() if path.exists() else ""
        have = {json.dumps(json.loads(line), sort_keys=True) for line in old.splitlines() if line.strip()}
        lines = [_line(r) for r in new if _line(r) not in have]
        if lines:
            if old and not old.endswith("\n"):
                old += "\n"
            atomic_write_text(path, old + "".join(line + "\n" for line in lines))
    return len(lines)


def merge_records(source: str | os.PathLike, into: str | os.PathLike) -> int:
    """Append the records under ``source`` to the files of the same name under ``into``,
    skipping those ``into`` already holds (identical records): merging twice appends nothing.
    ``docker/run_all.sh`` runs each step with its own records folder and merges it into the
    user's records when the step has finished. Returns the number of records appended."""
    by_file: dict[str, list[ResultRecord]] = {}
    for path in sorted(Path(source).glob("*.jsonl")):
        by_file[path.name] = list(read_records(source, only=path.name))
    return sum(_append(Path(into) / name, found) for name, found in by_file.items())


def runs_path(runs_dir: str | os.PathLike | None = None) -> Path:
    if runs_dir is not None:
        return Path(runs_dir)
    if "SSL_REPRO_RESULTS" in os.environ:
        return Path(os.environ["SSL_REPRO_RESULTS"]) / "runs"
    return LOCAL_RUNS_DIR


def read_records(runs_dir: str | os.PathLike | None = None, only: str = "*.jsonl") -> Iterator[ResultRecord]:
    """Every record under ``runs_dir`` (in the files matching ``only``); a malformed line is an
    error naming file and line."""
    for path in sorted(runs_path(runs_dir).glob(only)):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = ResultRecord(**json.loads(line))
                record.validate()
            except (TypeError, ValueError) as err:
                raise RecordError(f"{path}:{lineno}: bad result record: {err}") from err
            yield record


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m evaluation.records",
                                     description="Merge a folder of result records into another "
                                     "(records already there are not appended again).")
    parser.add_argument("--merge", required=True, metavar="SOURCE", help="folder of <task>.jsonl files")
    parser.add_argument("--into", required=True, metavar="RUNS", help="records folder to append them to")
    args = parser.parse_args(argv)
    print(f"{merge_records(args.merge, args.into)} record(s) merged from {args.merge} into {args.into}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
