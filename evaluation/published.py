"""The published numbers of the five reproduced papers, as one DataFrame.

The tables live in ``evaluation/published/<paper>.csv`` (one row per printed result
cell; see the README there). :func:`load_published` reads them, checks that every row
speaks the vocabulary of :mod:`evaluation.records` (so a measured record can be joined
to it) and returns them with the value parsed as a float.

A few cells are not absolute results but printed *differences*; their metric is outside
``records.METRICS`` on purpose. Such metrics must be listed in :data:`FLAGGED_METRICS`
(with the reason); their rows are kept, marked ``metric_known=False``, and can never be
matched by a measured record. Any other unknown task or metric is an error.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import pandas as pd

from evaluation.records import METRICS, TASKS

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
PAPERS = ("cgh", "lewel", "pcd", "ressl", "revisiting")
COLUMNS = ("paper", "table", "method", "variant", "backbone", "pretrain_data", "epochs",
           "batch_size", "task", "dataset", "metric", "value", "note")
#: columns that must never be empty
REQUIRED = ("paper", "table", "method", "task", "dataset", "metric", "value")
#: columns added by :func:`load_published`
EXTRA_COLUMNS = ("value_text", "metric_known", "source_line")
#: metrics allowed in the published tables although no record can carry them
FLAGGED_METRICS = {
    "mIoU_diff_vs_IN-118K": "a printed difference to the IN-118K-pretrained model, "
                            "not an absolute mIoU; not comparable with a measurement",
}


class PublishedError(ValueError):
    """A published table that is missing, malformed or outside the vocabulary."""


def load_published(paper: str | None = None, *,
                   directory: str | Path | None = None) -> pd.DataFrame:
    """Published rows of one paper (``"ressl"``, ...) or of all five (``None``).

    Every column is a string (empty where the paper prints nothing) except ``value``
    (float). Extra columns: ``value_text`` (the value exactly as in the CSV),
    ``metric_known`` (False for the rows whose metric is in :data:`FLAGGED_METRICS`)
    and ``source_line`` (line number in the CSV file, header = line 1).
    """
    if paper is not None and paper not in PAPERS:
        raise PublishedError(f"unknown paper {paper!r}; expected one of {PAPERS}")
    directory = Path(directory) if directory is not None else PUBLISHED_DIR
    papers = PAPERS if paper is None else (paper,)
    frames = [_read_paper(str(directory), name) for name in papers]
    return pd.concat(frames, ignore_index=True).copy()


@functools.lru_cache(maxsize=32)
def _read_paper(directory: str, paper: str) -> pd.DataFrame:
    path = Path(directory) / f"{paper}.csv"
    if not path.is_file():
        raise PublishedError(f"published table not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    if tuple(frame.columns) != COLUMNS:
        raise PublishedError(f"{path}: columns {list(frame.columns)} != {list(COLUMNS)}")
    values = []
    for index, row in frame.iterrows():
        where = f"{path}:{index + 2}"
        for column in REQUIRED:
            if not row[column].strip():
                raise PublishedError(f"{where}: empty {column!r}")
        if row["paper"] != paper:
            raise PublishedError(f"{where}: paper {row['paper']!r} in the file of {paper!r}")
        if row["task"] not in TASKS:
            raise PublishedError(f"{where}: unknown task {row['task']!r}")
        if row["metric"] not in METRICS and row["metric"] not in FLAGGED_METRICS:
            raise PublishedError(f"{where}: unknown metric {row['metric']!r}; add it to "
                                 "records.METRICS or, if it is not a measurable result, "
                                 "to published.FLAGGED_METRICS")
        try:
            value = float(row["value"])
        except ValueError:
            raise PublishedError(f"{where}: value {row['value']!r} is not a number") from None
        if not math.isfinite(value):
            raise PublishedError(f"{where}: value {row['value']!r} is not finite")
        values.append(value)
    frame["value_text"] = frame["value"]
    frame["value"] = pd.Series(values, index=frame.index, dtype="float64")
    frame["metric_known"] = frame["metric"].isin(METRICS)
    frame["source_line"] = frame.index + 2
    return frame
