"""Collect the result records into tables and a report.

``python -m evaluation.collector [--runs results/runs] [--out results]`` reads every
record under ``--runs`` and writes, atomically, into ``--out``:

- ``measured.csv``  every record, one row each, protocol as compact JSON;
- ``<paper>.csv``   the published rows of each paper with the measurement that
  reproduces them (``measured_value, measured_scale, measured_run_id, delta``);
- ``REPORT.md``     counts per paper, the full-scale reproductions, all records.

A record reproduces a published row when its ``protocol["reproduces"]`` (a mapping, or
a list of mappings) names the row's paper, table, method and variant and the record's
task, dataset and metric equal the row's. Any other published column named in the
mapping (``backbone``, ``pretrain_data``, ``epochs``, ``batch_size``) must match too;
that is how a record picks one row where a table prints several (e.g. one per epoch
budget). A record may name several rows (a list), e.g. all rows of one pre-training
config; it joins those whose task, dataset and metric are its own. Reported, and joined
to nothing: a reference naming no published row at all, one leaving several candidate
rows for the record, and a record none of whose named rows has its task/dataset/metric.
Bookkeeping records (task ``pretrain``, metrics ``final_loss``/``img_per_s``) are never
joined.

Per row the chosen measurement is the latest ``full`` record, else the latest
``reduced``, else the latest ``smoke``; ``delta`` (measured - published) is given only
for ``full``. The output depends only on the records: same input, same bytes.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from evaluation.provenance import atomic_write_text
from evaluation.published import COLUMNS as PUBLISHED_COLUMNS
from evaluation.published import PAPERS, load_published
from evaluation.records import SCALES, RecordError, ResultRecord, read_records, runs_path

MEASURED_COLUMNS = tuple(f.name for f in dataclasses.fields(ResultRecord))
MATCH_COLUMNS = ("measured_value", "measured_scale", "measured_run_id", "delta")
PAPER_COLUMNS = PUBLISHED_COLUMNS + MATCH_COLUMNS
#: keys of a ``reproduces`` mapping that are always needed
REFERENCE_KEYS = ("paper", "table", "method")
#: published columns a ``reproduces`` mapping may name to select among rows
SELECTOR_KEYS = ("variant", "backbone", "pretrain_data", "epochs", "batch_size")
#: the suite's own bookkeeping, never joined to a published row
BOOKKEEPING_TASKS = frozenset({"pretrain"})
BOOKKEEPING_METRICS = frozenset({"final_loss", "img_per_s"})
SCALE_RANK = {scale: rank for rank, scale in enumerate(SCALES)}  # smoke < reduced < full
NOT_REPRODUCTION = ("**Smoke and reduced numbers are NOT reproductions.** A `smoke` run is a "
                    "tiny check that the code runs and says nothing about the method; a "
                    "`reduced` run uses fewer epochs or images than the paper (its protocol "
                    "says which). Their numbers are listed for bookkeeping only and are never "
                    "compared with the published ones: only `full` runs get a delta.")


@dataclass(frozen=True)
class Measured:
    """A record with its position in the input (ties in time are broken by it)."""
    seq: int
    record: ResultRecord

    @property
    def sort_key(self) -> tuple:
        r = self.record
        return (r.time_utc, r.task, r.run_id, r.method, r.dataset, r.metric, r.scale,
                r.value, self.seq)


@dataclass
class Unresolved:
    """A ``reproduces`` reference that matched no published row, or several."""
    measured: Measured
    reference: dict[str, Any]
    candidates: int
    reason: str


@dataclass
class Collection:
    records: list[Measured]
    published: Any  # pandas.DataFrame
    #: published row index -> every record reproducing it
    matches: dict[int, list[Measured]] = field(default_factory=dict)
    unresolved: list[Unresolved] = field(default_factory=list)

    def chosen(self, row: int) -> Measured | None:
        """Latest full, else latest reduced, else latest smoke record of a row."""
        candidates = self.matches.get(row)
        if not candidates:
            return None
        return max(candidates, key=lambda m: (SCALE_RANK[m.record.scale],
                                              m.record.time_utc, m.seq))


# ----------------------------------------------------------------------------- joining

def references(record: ResultRecord) -> list[dict[str, Any]]:
    """The ``reproduces`` mappings of a record (none, one or several)."""
    ref = record.protocol.get("reproduces") if isinstance(record.protocol, dict) else None
    if ref is None or ref == {} or ref == []:
        return []
    return list(ref) if isinstance(ref, list) else [ref]


def _text(value: Any) -> str:
    """A reference value as the published CSV spells it (200 and 200.0 -> "200")."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _offered(known, ref: dict[str, Any]) -> list[tuple[str, str, str]]:
    named = known
    for column in REFERENCE_KEYS + SELECTOR_KEYS:
        if column in ref or column == "variant":
            named = named[named[column] == _text(ref.get(column))]
    return list(zip(named["task"], named["dataset"], named["metric"]))


def collect_records(records: Iterable[ResultRecord], published=None) -> Collection:
    """Join records to published rows (see the module docstring for the rules)."""
    if published is None:
        published = load_published()
    measured = sorted((Measured(seq, r) for seq, r in enumerate(records)),
                      key=lambda m: m.sort_key)
    collection = Collection(records=measured, published=published)
    known = published[published["metric_known"]] if "metric_known" in published else published
    for m in measured:
        r = m.record
        if r.task in BOOKKEEPING_TASKS or r.metric in BOOKKEEPING_METRICS:
            continue  # the suite's own bookkeeping: no published counterpart
        refs = references(r)
        rows: set[int] = set()
        problems: list[Unresolved] = []
        for ref in refs:
            if not isinstance(ref, dict):
                problems.append(Unresolved(m, {"reproduces": ref}, 0, "not a mapping"))
                continue
            missing = [k for k in REFERENCE_KEYS if not _text(ref.get(k))]
            if missing:
                problems.append(Unresolved(m, ref, 0, f"missing {', '.join(missing)}"))
                continue
            criteria = {k: _text(ref.get(k)) for k in REFERENCE_KEYS}
            criteria["variant"] = _text(ref.get("variant"))
            criteria.update({k: _text(ref[k]) for k in SELECTOR_KEYS if k in ref})
            named = known
            for column, value in criteria.items():
                named = named[named[column] == value]
            if named.empty:
                problems.append(Unresolved(m, ref, 0, "names no published row"))
                continue
            selected = named[(named["task"] == r.task) & (named["dataset"] == r.dataset)
                             & (named["metric"] == r.metric)]
            if len(selected) == 1:
                rows.add(int(selected.index[0]))
            elif len(selected) > 1:
                differing = [c for c in SELECTOR_KEYS if selected[c].nunique() > 1]
                problems.append(Unresolved(
                    m, ref, len(selected),
                    f"{len(selected)} published rows match; add "
                    f"{' / '.join(differing) or 'a distinguishing key'} to `reproduces`"))
        if refs and not rows and not problems:
            # every reference names existing rows, but none has this task/dataset/metric
            offered = sorted({f"{t}/{d}/{k}" for ref in refs for t, d, k in _offered(known, ref)})
            problems.append(Unresolved(
                m, refs[0] if len(refs) == 1 else {"reproduces": refs}, 0,
                f"the named rows have no {r.task}/{r.dataset}/{r.metric}; they have: "
                + ", ".join(offered[:8]) + (" ..." if len(offered) > 8 else "")))
        for row in sorted(rows):
            collection.matches.setdefault(row, []).append(m)
        collection.unresolved.extend(problems)
    return collection


# ---------------------------------------------------------------------------- formatting

def _num(value: float) -> str:
    return repr(float(value))


def _delta(measured: float, published: float) -> float:
    return float(round(float(measured) - float(published), 6)) + 0.0  # + 0.0: no "-0.0"


def _csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def measured_csv(collection: Collection) -> str:
    rows = []
    for m in collection.records:
        row = []
        for name in MEASURED_COLUMNS:
            value = getattr(m.record, name)
            if name == "protocol":
                row.append(_json(value))
            elif isinstance(value, float):
                row.append(_num(value))
            else:
                row.append(str(value))
        rows.append(row)
    return _csv(MEASURED_COLUMNS, rows)


def paper_csv(collection: Collection, paper: str) -> str:
    published = collection.published
    rows = []
    for index, row in published[published["paper"] == paper].iterrows():
        out = [row["value_text"] if c == "value" and "value_text" in row else str(row[c])
               for c in PUBLISHED_COLUMNS]
        chosen = collection.chosen(int(index))
        if chosen is None:
            out += ["", "", "", ""]
        else:
            r = chosen.record
            delta = _num(_delta(r.value, row["value"])) if r.scale == "full" else ""
            out += [_num(r.value), r.scale, r.run_id, delta]
        rows.append(out)
    return _csv(PAPER_COLUMNS, rows)


def _cell(value: Any) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return text if text else " "


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _short(value: float) -> str:
    return format(float(value), ".6g")


def _commit(commit: str) -> str:
    sha, plus, rest = commit.partition("+")
    return (sha[:10] if len(sha) == 40 else sha) + plus + rest


def _ref_text(record: ResultRecord) -> str:
    parts = []
    for ref in references(record):
        if isinstance(ref, dict):
            parts.append(" / ".join(_text(ref.get(k)) for k in ("paper", "table", "method",
                                                                  "variant") if ref.get(k)))
        else:
            parts.append(str(ref))
    return "; ".join(parts)


def report_md(collection: Collection) -> str:
    published = collection.published
    lines = ["# Results report", "", NOT_REPRODUCTION, "",
             f"Collected by `python -m evaluation.collector` from {len(collection.records)} "
             "result record(s). Published rows come from `evaluation/published/`; "
             "`results/<paper>.csv` lists every published row with the measurement chosen "
             "for it (latest `full`, else latest `reduced`, else latest `smoke`).", ""]

    lines += ["## Coverage per paper", "",
              "Published rows of each paper, and how many of them have at least one "
              "record of each scale.", ""]
    coverage = []
    for paper in PAPERS:
        rows = published.index[published["paper"] == paper]
        counts = {scale: 0 for scale in SCALES}
        for index in rows:
            for scale in {m.record.scale for m in collection.matches.get(int(index), [])}:
                counts[scale] += 1
        coverage.append([paper, len(rows), counts["full"], counts["reduced"], counts["smoke"]])
    lines += _table(["paper", "published rows", "full", "reduced", "smoke"], coverage)
    lines.append("")

    lines += ["## Full-scale reproductions", "",
              "Rows whose chosen measurement is a `full` run; delta = measured - published.",
              ""]
    full = []
    for index, row in published.iterrows():
        chosen = collection.chosen(int(index))
        if chosen is None or chosen.record.scale != "full":
            continue
        r = chosen.record
        full.append([row["paper"], row["table"], row["method"], row["variant"], row["task"],
                     row["dataset"], row["metric"], row["value_text"], _short(r.value),
                     _short(_delta(r.value, row["value"])), r.run_id])
    if full:
        lines += _table(["paper", "table", "method", "variant", "task", "dataset", "metric",
                         "published", "measured", "delta", "run"], full)
    else:
        lines.append("None yet: no `full` record reproduces a published row.")
    lines.append("")

    if collection.unresolved:
        lines += ["## References that did not resolve", "",
                  "These records name published rows in `protocol.reproduces` that match "
                  "no row or several; they are joined to none.", ""]
        lines += _table(["run", "method", "task", "dataset", "metric", "scale", "reproduces",
                         "problem"],
                        [[u.measured.record.run_id, u.measured.record.method,
                          u.measured.record.task, u.measured.record.dataset,
                          u.measured.record.metric, u.measured.record.scale,
                          _json(u.reference), u.reason] for u in collection.unresolved])
        lines.append("")

    lines += ["## All measured records", "",
              "Every record, oldest first. Scale `smoke`/`reduced`: not a reproduction.", ""]
    if collection.records:
        lines += _table(["method", "task", "dataset", "metric", "value", "scale", "device",
                         "date", "commit", "run", "reproduces"],
                        [[r.method, r.task, r.dataset, r.metric, _short(r.value), r.scale,
                          r.device, r.time_utc[:10], _commit(r.git_commit), r.run_id,
                          _ref_text(r)]
                         for r in (m.record for m in collection.records)])
    else:
        lines.append("No records yet.")
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ driver

def collect(runs_dir: str | Path | None = None, out_dir: str | Path | None = None,
            published=None) -> dict[str, Path]:
    """Read the records under ``runs_dir`` and write the tables and report to ``out_dir``.

    Returns the written paths by name (``measured``, ``report``, and each paper).
    Raises :class:`evaluation.records.RecordError` on a malformed record.
    """
    runs = runs_path(runs_dir)
    out = Path(out_dir) if out_dir is not None else runs_path().parent
    collection = collect_records(read_records(runs), published)
    outputs = {"measured": (out / "measured.csv", measured_csv(collection))}
    for paper in PAPERS:
        outputs[paper] = (out / f"{paper}.csv", paper_csv(collection, paper))
    outputs["report"] = (out / "REPORT.md", report_md(collection))
    for path, text in outputs.values():
        atomic_write_text(path, text)
    return {name: path for name, (path, _) in outputs.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.collector",
        description="Collect result records into results/measured.csv, "
                    "results/<paper>.csv and results/REPORT.md.")
    parser.add_argument("--runs", default=None,
                        help="folder of <task>.jsonl record files (default: "
                             "$SSL_REPRO_RESULTS/runs or results/runs of the checkout)")
    parser.add_argument("--out", default=None,
                        help="folder for the tables and report (default: "
                             "$SSL_REPRO_RESULTS or results/ of the checkout)")
    args = parser.parse_args(argv)
    try:
        written = collect(args.runs, args.out)
    except RecordError as err:
        print(f"collector: {err}", file=sys.stderr)
        return 2
    for path in written.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
