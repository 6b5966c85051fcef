"""Collect the result records into the papers' tables, a report and a scatter plot.

``python -m evaluation.collector [--runs DIR ...] [--out results]`` reads every record under
the ``--runs`` folders and writes, atomically, into ``--out``. Without ``--runs`` it reads two:
``results/runs``, the project's own reference measurements (committed), and a user's new records:
``$SSL_REPRO_RESULTS/runs``, by default ``results/local/runs`` (not committed; every harness and
``python -m pretrain`` write there, so a user's run never rewrites the reference records);
REPORT.md says which record came from which. The outputs go to ``$SSL_REPRO_RESULTS``, by
default ``results/local/``; the committed tables are rebuilt with ``SSL_REPRO_RESULTS=results``.
Outputs:

- ``measured.csv``  every record, one row each, protocol as compact JSON;
- ``<paper>.csv``   the published rows of each paper with the measurement chosen for them
  (``measured_value, measured_scale, measured_run_id, measured_checkpoint_sha256,
  measured_protocol, delta``);
- ``REPORT.md``     each paper's tables rebuilt as pivots (rows x columns as in the paper),
  published and reproduced side by side; the full-scale reproductions; the records that
  match no published row (with the reason); all records;
- ``scatter.png``   published vs reproduced value of every full-scale reproduction.

**The join.** A record reproduces a published row when

1. one of the mappings in its ``protocol["reproduces"]`` (the harnesses copy them from the
   checkpoint's pretraining config) names the row: ``paper``, ``table``, ``method`` equal; the
   mapping's ``variant`` equal to the row's variant or to its *setting* part (the variant
   without the evaluation-protocol parts, e.g. "multi-crop" for "multi-crop; Mask R-CNN
   R50-C4; 1x schedule"); any other published column the mapping names (``backbone``,
   ``pretrain_data``, ``epochs``, ``batch_size``) equal;
2. the record measures what the row prints: dataset and metric equal, and the record's task
   is the row's task or, for a row of task ``ablation`` (an ablation table's cell, itself a
   linear/detection/segmentation measurement), one of :func:`measuring_tasks`;
3. the record's evaluation protocol (``protocol["protocol_label"]``) agrees with every
   protocol facet the row's variant names (:data:`FACETS`: detector, C4/FPN/DC5, schedule,
   training set, output stride, head, k of the low-shot SVM, ...), plus the paper's own
   protocol where the variant is silent (:data:`PAPER_FACETS`). A C4 record never fills an
   FPN cell; a record without a label fills no cell whose variant names a protocol.

A mapping that leaves several rows for a record, or names none, is reported and joins
nothing. Bookkeeping records (task ``pretrain``, metrics ``final_loss``/``img_per_s``) are
never joined. Records that join no row are listed in the report, never dropped.

**The choice.** A record's *effective scale* is the lower of its own and its checkpoint's
pretraining scale (``protocol["pretrain_scale"]``): a full evaluation of a smoke checkpoint
is smoke. Per row the chosen measurement is the best effective scale, then a
``mean_of_N`` aggregate over single repeats (larger N first), then the latest. ``delta``
(measured - published) is given only for ``full``; only ``full`` numbers fill the report's
"reproduced" cells as reproductions, smoke/reduced ones are marked as such.

The output depends only on the records: same input, same bytes (the PNG included).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from evaluation.provenance import atomic_write_bytes, atomic_write_text
from evaluation.published import COLUMNS as PUBLISHED_COLUMNS
from evaluation.published import PAPERS, load_published
from evaluation.records import (DEFAULT_RUNS_DIR, SCALES, RecordError, ResultRecord, read_records,
                                runs_path)

MEASURED_COLUMNS = tuple(f.name for f in dataclasses.fields(ResultRecord))
MATCH_COLUMNS = ("measured_value", "measured_scale", "measured_run_id",
                 "measured_checkpoint_sha256", "measured_protocol", "delta")
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

_DETECTION = (("detector", r"\b(Faster|Mask) R-CNN\b"), ("neck", r"\b(C4|FPN|DC5)\b"),
              ("schedule", r"\b(\d+x) schedule\b|\b(\d+k) iter\b"),
              ("train", r"\btrainval(07\+12|07)\b"))
#: measuring task -> (facet, regex) pairs: the evaluation-protocol words of the published
#: ``variant`` column. A variant part (split at "; ") holding any of them is protocol, the
#: other parts are the pretraining setting.
FACETS: dict[str, tuple[tuple[str, str], ...]] = {
    "det_coco": _DETECTION, "inst_seg_coco": _DETECTION, "det_voc": _DETECTION,
    "sem_seg": (("head", r"\b(atrous) head\b"), ("output_stride", r"\bOS (\d+)\b"),
                ("suite", r"\((\w+) protocol\)")),
    "linear_cls": (("input", r"\b(hypercolumn) as linear-classifier input\b"),),  # CGH Table 8
    "low_shot": (("k", r"^k=(\w+)$"),),
    "segment_retrieval": (("classes", r"^(\d+) classes$"),),
}
#: the paper's own protocol where its variants are silent (seeds; /work/shared/protocols.md)
PAPER_FACETS: dict[tuple[str, str], dict[str, str]] = {
    ("cgh", "det_voc"): {"detector": "Faster", "neck": "C4"},   # CGH Table 4: Faster R-CNN R50-C4
    ("lewel", "sem_seg"): {"suite": "lewel"},                    # FCN, OS 8, 20k iterations
    ("pcd", "sem_seg"): {"suite": "pcd"},                        # MoCo's Cityscapes FCN + NormRescale
    ("revisiting", "sem_seg"): {"suite": "revisiting"},          # FCN, OS 16, MoCo head
}
#: published tables whose method or harness is not in the suite yet: the report says "not
#: run" with the reason. Wiring one in = deleting its line.
NOT_IN_SUITE: dict[tuple[str, str], str] = {
    ("revisiting", "Table 9"): "NYUD depth has no harness (its cells stay not run)",
    ("revisiting", "Table S1"): "NYUD depth has no harness (its cells stay not run)",
}
#: published columns identifying a pivot row / column (``setting`` and ``protocol`` are the
#: two parts of ``variant``)
PIVOT_ROW = ("method", "setting", "backbone", "pretrain_data", "epochs", "batch_size")
PIVOT_COLUMN = ("task", "dataset", "metric", "protocol")


# ----------------------------------------------------------------------------- vocabulary

def measuring_tasks(task: str, dataset: str, metric: str) -> frozenset[str]:
    """Record tasks that can fill a published row: the row's own task; for an ``ablation``
    row (the note of each says which evaluation it is) the harness task measuring its
    dataset/metric: AP on COCO/VOC -> detection, AP_mask -> instance segmentation, mIoU ->
    semantic segmentation, top-1 -> linear classification (never kNN: no ablation table
    prints kNN), VOC07/Places -> also the linear transfer; mAP -> the VOC07 SVM (recorded
    with ``--task ablation``) or the linear transfer."""
    if task != "ablation":
        return frozenset({task})
    if metric.endswith("_mask"):
        extra = {"inst_seg_coco"}
    elif metric.startswith("AP"):
        extra = {"det_coco" if dataset == "COCO" else "det_voc"}
    elif metric == "mIoU":
        extra = {"sem_seg"}
    elif metric in ("top1", "top5"):
        extra = {"linear_cls"} | ({"transfer_linear"} if dataset in ("Places", "VOC07") else set())
    elif metric == "mAP":
        extra = {"transfer_linear"}
    else:
        extra = set()
    return frozenset({"ablation", *extra})


def primary_task(task: str, dataset: str, metric: str) -> str:
    """The harness task that measures a published row (an ablation row's evaluation)."""
    tasks = sorted(measuring_tasks(task, dataset, metric) - {"ablation"})
    return tasks[0] if tasks else task


def facets(task: str, text: str) -> dict[str, str]:
    """The protocol facets a variant or a record's protocol label names, for a task."""
    found: dict[str, str] = {}
    for part in _parts(text):
        for name, pattern in FACETS.get(task, ()):
            match = re.search(pattern, part)
            if match:
                found[name] = next(g for g in match.groups() if g is not None)
    return found


def _parts(text: str) -> list[str]:
    return [p.strip() for p in str(text).split(";") if p.strip()]


def split_variant(task: str, variant: str) -> tuple[str, str]:
    """(pretraining setting, evaluation protocol) parts of a published variant."""
    setting, protocol = [], []
    for part in _parts(variant):
        is_protocol = any(re.search(pattern, part) for _, pattern in FACETS.get(task, ()))
        (protocol if is_protocol else setting).append(part)
    return "; ".join(setting), "; ".join(protocol)


# ----------------------------------------------------------------------------- records

def effective_scale(record: ResultRecord) -> str:
    """The lower of the record's scale and its checkpoint's pretraining scale."""
    pretrain = record.protocol.get("pretrain_scale") if isinstance(record.protocol, dict) else None
    if pretrain in SCALE_RANK and SCALE_RANK[pretrain] < SCALE_RANK[record.scale]:
        return pretrain
    return record.scale


def _aggregate(record: ResultRecord) -> tuple[int, int]:
    """(1, N) for a ``mean_of_N`` record, (0, 0) for a single measurement."""
    aggregate = str(record.protocol.get("aggregate", "")) if isinstance(record.protocol, dict) else ""
    match = re.fullmatch(r"mean_of_(\d+)", aggregate)
    return (1, int(match.group(1))) if match else (0, 0)


def _label(record: ResultRecord) -> str:
    return str(record.protocol.get("protocol_label") or "") if isinstance(record.protocol, dict) else ""


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

    @property
    def scale(self) -> str:
        return effective_scale(self.record)

    @property
    def preference(self) -> tuple:
        """Best effective scale, then a mean over repeats (larger N), then the latest."""
        return (SCALE_RANK[self.scale], *_aggregate(self.record), self.record.time_utc, self.seq)


@dataclass
class Unresolved:
    """A record that joined no published row, and why."""
    measured: Measured
    reference: dict[str, Any]
    candidates: int
    reason: str


@dataclass
class Collection:
    records: list[Measured]
    published: Any  # pandas.DataFrame with the extra columns of _annotate
    #: published row index -> every record reproducing it
    matches: dict[int, list[Measured]] = field(default_factory=dict)
    #: references that did not resolve (no row, several rows, protocol mismatch)
    unresolved: list[Unresolved] = field(default_factory=list)
    #: every result record that joined no row, with the reason
    unmatched: list[Unresolved] = field(default_factory=list)
    #: (kind, folder, number of records) of each records folder read, in reading order
    sources: list[tuple[str, str, int]] = field(default_factory=list)

    def source(self, measured: Measured) -> str:
        """The kind of folder (``reference`` or ``new``) a record was read from."""
        end = 0
        for kind, _, count in self.sources:
            end += count
            if measured.seq < end:
                return kind
        return ""

    def chosen(self, row: int) -> Measured | None:
        """Best effective scale, then mean_of_N over single repeats, then the latest."""
        candidates = self.matches.get(row)
        return max(candidates, key=lambda m: m.preference) if candidates else None


# ----------------------------------------------------------------------------- joining

def references(record: ResultRecord) -> list[Any]:
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


def _annotate(published):
    """The published rows with their measuring task, setting and protocol parts."""
    published = published.copy()
    primary = [primary_task(t, d, m) for t, d, m in
               zip(published["task"], published["dataset"], published["metric"])]
    parts = [split_variant(task, variant) for task, variant in zip(primary, published["variant"])]
    published["setting"] = [s for s, _ in parts]
    published["protocol"] = [p for _, p in parts]
    return published


def _row_facets(row, task: str) -> dict[str, str]:
    return {**PAPER_FACETS.get((row["paper"], task), {}), **facets(task, row["variant"])}


def _compatible(row, record: ResultRecord) -> bool:
    have = facets(record.task, _label(record))
    return all(have.get(k) == v for k, v in _row_facets(row, record.task).items())


def named_rows(published, ref: dict[str, Any]):
    """The rows of ``published`` (annotated) that a ``reproduces`` mapping names: paper,
    table and method equal, the variant equal to the row's variant or to its setting part,
    and every other published column the mapping gives equal."""
    named = published
    for column in REFERENCE_KEYS + SELECTOR_KEYS[1:]:
        if column in REFERENCE_KEYS or column in ref:
            named = named[named[column] == _text(ref.get(column))]
    variant = _text(ref.get("variant"))
    return named[(named["variant"] == variant) | (named["setting"] == variant)]


def annotated_published(published=None):
    """The published rows (all papers by default) with their ``setting`` and ``protocol``
    (the two parts of ``variant``)."""
    return _annotate(load_published() if published is None else published)


def collect_records(records: Iterable[ResultRecord], published=None) -> Collection:
    """Join records to published rows (see the module docstring for the rules)."""
    if published is None:
        published = load_published()
    published = _annotate(published)
    measured = sorted((Measured(seq, r) for seq, r in enumerate(records)),
                      key=lambda m: m.sort_key)
    collection = Collection(records=measured, published=published)
    known = published[published["metric_known"]] if "metric_known" in published else published
    named_by_ref: dict[str, Any] = {}
    by_method = {key: rows for key, rows in known.groupby(list(REFERENCE_KEYS), sort=False)}
    for m in measured:
        r = m.record
        if r.task in BOOKKEEPING_TASKS or r.metric in BOOKKEEPING_METRICS:
            continue  # the suite's own bookkeeping: no published counterpart
        refs = references(r)
        rows: set[int] = set()
        problems: list[Unresolved] = []
        mismatches: list[Unresolved] = []
        offered: set[str] = set()
        for ref in refs:
            if not isinstance(ref, dict):
                problems.append(Unresolved(m, {"reproduces": ref}, 0, "not a mapping"))
                continue
            missing = [k for k in REFERENCE_KEYS if not _text(ref.get(k))]
            if missing:
                problems.append(Unresolved(m, ref, 0, f"missing {', '.join(missing)}"))
                continue
            key = _json(ref)
            if key not in named_by_ref:  # records of one checkpoint share their references
                candidates = by_method.get(tuple(_text(ref.get(k)) for k in REFERENCE_KEYS), known.iloc[:0])
                named_by_ref[key] = named_rows(candidates, ref)
            named = named_by_ref[key]
            if named.empty:
                problems.append(Unresolved(m, ref, 0, "names no published row"))
                continue
            measures = [r.task in measuring_tasks(t, d, k) and d == r.dataset and k == r.metric
                        for t, d, k in zip(named["task"], named["dataset"], named["metric"])]
            selected = named[measures]
            offered.update(f"{t}/{d}/{k}" for t, d, k in
                           zip(named["task"], named["dataset"], named["metric"]))
            if selected.empty:
                continue
            fitting = selected[[_compatible(row, r) for _, row in selected.iterrows()]]
            if fitting.empty:  # reported only if no other reference places the record
                mismatches.append(Unresolved(
                    m, ref, len(selected),
                    f"protocol {_label(r) or '(no protocol_label)'!r} does not fit "
                    + " / ".join(sorted({repr(v) for v in selected['variant']}))))
            elif len(fitting) == 1:
                rows.add(int(fitting.index[0]))
            else:
                differing = [c for c in SELECTOR_KEYS if fitting[c].nunique() > 1]
                problems.append(Unresolved(
                    m, ref, len(fitting),
                    f"{len(fitting)} published rows match; add "
                    f"{' / '.join(differing) or 'a distinguishing key'} to `reproduces`"))
        if not rows:
            problems.extend(mismatches)
        if refs and not rows and not problems:
            # every reference names existing rows, but none measures this task/dataset/metric
            listed = sorted(offered)
            problems.append(Unresolved(
                m, refs[0] if len(refs) == 1 else {"reproduces": refs}, 0,
                f"the named rows have no {r.task}/{r.dataset}/{r.metric}; they have: "
                + ", ".join(listed[:8]) + (" ..." if len(listed) > 8 else "")))
        for row in sorted(rows):
            collection.matches.setdefault(row, []).append(m)
        collection.unresolved.extend(problems)
        if not rows:
            if problems:
                reason = "; ".join(dict.fromkeys(p.reason for p in problems))
            elif not r.checkpoint:
                reason = "no `reproduces` (no checkpoint: e.g. a random-init baseline)"
            else:
                reason = "no `reproduces`: its checkpoint's config names no published row"
            collection.unmatched.append(Unresolved(m, {}, 0, reason))
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
    of_paper = published[published["paper"] == paper]
    for index, row in zip(of_paper.index, of_paper.to_dict("records")):
        out = [row["value_text"] if c == "value" and "value_text" in row else str(row[c])
               for c in PUBLISHED_COLUMNS]
        chosen = collection.chosen(int(index))
        if chosen is None:
            out += [""] * len(MATCH_COLUMNS)
        else:
            r = chosen.record
            delta = _num(_delta(r.value, row["value"])) if chosen.scale == "full" else ""
            out += [_num(r.value), chosen.scale, r.run_id, r.checkpoint_sha256, _label(r), delta]
        rows.append(out)
    return _csv(PAPER_COLUMNS, rows)


def _cell(value: Any) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return text if text else " "


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
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


def _reproduced(collection: Collection, index: int, published_value: float) -> str:
    """The report's "reproduced" cell: a full value with its delta, a marked smoke/reduced
    value, or "not run"."""
    chosen = collection.chosen(index)
    if chosen is None:
        return "not run"
    value = chosen.record.value
    if chosen.scale == "full":
        return f"{_short(value)} ({_delta(value, published_value):+.2f})"
    return f"{chosen.scale}: {_short(value)}"


def _not_in_suite(paper: str, table: str) -> str | None:
    return NOT_IN_SUITE.get((paper, table)) or NOT_IN_SUITE.get((paper, "*"))


def _table_order(published, paper: str) -> list[str]:
    tables = list(dict.fromkeys(published.loc[published["paper"] == paper, "table"]))

    def key(name: str) -> tuple:
        match = re.fullmatch(r"Table (S?)(\d+)", name)
        return (1, match.group(1), int(match.group(2))) if match else (2, name, 0)
    return sorted(tables, key=key)


def pivot(collection: Collection, paper: str, table: str) -> list[str]:
    """One published table as the paper lays it out: a row per method/setting (and whatever
    else varies between its rows), a column pair (published, reproduced) per measured
    quantity (task, dataset, metric, evaluation protocol). Constant columns go to a caption."""
    published = collection.published
    rows = published[(published["paper"] == paper) & (published["table"] == table)]
    varying_row = [c for c in PIVOT_ROW if c == "method" or rows[c].nunique() > 1]
    varying_col = [c for c in PIVOT_COLUMN if rows[c].nunique() > 1] or ["metric"]
    # a row column that only follows the measured quantity (ReSSL Table 1: the pretraining
    # set is the evaluation set) is left out when the cells stay unique without it
    for column in [c for c in varying_row if c != "method"]:
        if (rows.groupby(varying_col)[column].nunique() <= 1).all():
            rest = [c for c in varying_row if c != column]
            if not rows.duplicated(rest + varying_col).any():
                varying_row = rest
    constant = [f"{c} {rows[c].iloc[0]}" for c in PIVOT_ROW + PIVOT_COLUMN
                if c not in varying_row and c not in varying_col and rows[c].nunique() == 1
                and rows[c].iloc[0]]
    records = list(zip(rows.index, rows.to_dict("records")))
    row_keys = list(dict.fromkeys(tuple(r[c] for c in varying_row) for _, r in records))
    col_keys = list(dict.fromkeys(tuple(r[c] for c in varying_col) for _, r in records))
    cells: dict[tuple, list[tuple[str, str]]] = {}
    for index, r in records:
        key = (tuple(r[c] for c in varying_row), tuple(r[c] for c in varying_col))
        cells.setdefault(key, []).append((r["value_text"],
                                          _reproduced(collection, int(index), r["value"])))
    header = list(varying_row)
    for col in col_keys:
        header += [" ".join(v for v in col if v) or "value", "reproduced"]
    body = []
    for row in row_keys:
        line = list(row)
        for col in col_keys:
            pairs = cells.get((row, col), [])
            line += [" / ".join(p for p, _ in pairs), " / ".join(q for _, q in pairs)]
        body.append(line)
    full = sum(1 for index in rows.index if (c := collection.chosen(int(index))) and c.scale == "full")
    lines = [f"### {paper} {table}", ""]
    status = _not_in_suite(paper, table)
    lines.append(f"{len(rows)} published cells, {full} reproduced at full scale"
                 + (f". **Not run: {status}.**" if status else "."))
    if constant:
        lines.append("All rows: " + "; ".join(constant) + ".")
    lines.append("")
    return lines + _table(header, body) + [""]


def report_md(collection: Collection) -> str:
    published = collection.published
    lines = ["# Results report", "", NOT_REPRODUCTION, "",
             f"Collected by `python -m evaluation.collector` from {len(collection.records)} "
             "result record(s). Published rows come from `evaluation/published/`; "
             "`results/<paper>.csv` lists every published row with the measurement chosen "
             "for it (best scale, then a mean over repeats, then the latest). In the tables "
             "below, a \"reproduced\" cell holds a `full` value with its delta to the published "
             "one, `smoke: x` / `reduced: x` (not a reproduction), or `not run`. "
             "`scatter.png` plots published against reproduced for every full-scale cell.", ""]
    if collection.sources:
        lines += ["Records read (column `source` of the last table):", ""]
        for kind, text in SOURCE_KINDS.items():
            count = sum(n for k, _, n in collection.sources if k == kind)
            if count:
                lines.append(f"- {kind}: {count} record(s), {text}")
        lines.append("")

    lines += ["## Coverage per paper", "",
              "Published cells of each paper, how many have a record of each (effective) "
              "scale, and the records that match no published row (listed below).", ""]
    coverage = []
    for paper in PAPERS:
        rows = published.index[published["paper"] == paper]
        counts = {scale: 0 for scale in SCALES}
        for index in rows:
            for scale in {m.scale for m in collection.matches.get(int(index), [])}:
                counts[scale] += 1
        coverage.append([paper, len(rows), counts["full"], counts["reduced"], counts["smoke"]])
    lines += _table(["paper", "published cells", "full", "reduced", "smoke"], coverage)
    lines += ["", f"Records matching no published row: {len(collection.unmatched)}.", ""]

    lines += ["## Full-scale reproductions", "",
              "Rows whose chosen measurement is a `full` run; delta = measured - published.",
              ""]
    full = []
    for index, row in zip(published.index, published.to_dict("records")):
        chosen = collection.chosen(int(index))
        if chosen is None or chosen.scale != "full":
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

    for paper in PAPERS:
        lines += [f"## {paper}: published tables", ""]
        for table in _table_order(published, paper):
            lines += pivot(collection, paper, table)

    if collection.unresolved:
        lines += ["## References that did not resolve", "",
                  "These records name published rows in `protocol.reproduces` that match "
                  "no row, several, or rows of another evaluation protocol; they are joined "
                  "to none.", ""]
        lines += _table(["run", "method", "task", "dataset", "metric", "scale", "reproduces",
                         "problem"],
                        [[u.measured.record.run_id, u.measured.record.method,
                          u.measured.record.task, u.measured.record.dataset,
                          u.measured.record.metric, u.measured.record.scale,
                          _json(u.reference), u.reason] for u in collection.unresolved])
        lines.append("")

    lines += ["## Records matching no published row", "",
              "Result records (bookkeeping excluded) that fill no published cell, and why.", ""]
    if collection.unmatched:
        lines += _table(["run", "method", "task", "dataset", "metric", "value", "scale",
                         "protocol", "why"],
                        [[u.measured.record.run_id, u.measured.record.method,
                          u.measured.record.task, u.measured.record.dataset,
                          u.measured.record.metric, _short(u.measured.record.value),
                          u.measured.scale, _label(u.measured.record), u.reason]
                         for u in collection.unmatched])
    else:
        lines.append("None.")
    lines.append("")

    lines += ["## All measured records", "",
              "Every record, oldest first. Scale `smoke`/`reduced`: not a reproduction.", ""]
    if collection.records:
        lines += _table(["method", "task", "dataset", "metric", "value", "scale", "device",
                         "date", "commit", "run", "reproduces", "source"],
                        [[r.method, r.task, r.dataset, r.metric, _short(r.value), r.scale,
                          r.device, r.time_utc[:10], _commit(r.git_commit), r.run_id,
                          _ref_text(r), collection.source(m)]
                         for m, r in ((m, m.record) for m in collection.records)])
    else:
        lines.append("No records yet.")
    lines.append("")
    return "\n".join(lines)


def scatter_png(collection: Collection) -> bytes:
    """Published (x) vs reproduced (y) of every full-scale cell, one colour per paper.
    Matplotlib's Agg canvas with its default style and no metadata: same records, same bytes."""
    from matplotlib import style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    published = collection.published
    points: dict[str, list[tuple[float, float]]] = {}
    for index, row in zip(published.index, published.to_dict("records")):
        chosen = collection.chosen(int(index))
        if chosen is not None and chosen.scale == "full":
            points.setdefault(row["paper"], []).append((float(row["value"]), chosen.record.value))
    with style.context("default"):  # the user's matplotlibrc does not change the bytes
        figure = Figure(figsize=(6, 6), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        values = [v for pts in points.values() for p in pts for v in p]
        low, high = (min(values), max(values)) if values else (0.0, 100.0)
        pad = max(1.0, (high - low) * 0.05)
        axes.plot([low - pad, high + pad], [low - pad, high + pad], color="0.6", lw=1,
                  label="reproduced = published")
        for paper in PAPERS:
            if paper in points:
                xs, ys = zip(*points[paper])
                axes.scatter(xs, ys, s=18, label=f"{paper} ({len(xs)})")
        if not values:
            axes.text(0.5, 0.5, "no full-scale reproduction yet", ha="center", va="center",
                      transform=axes.transAxes)
        axes.set_xlim(low - pad, high + pad)
        axes.set_ylim(low - pad, high + pad)
        axes.set_xlabel("published")
        axes.set_ylabel("reproduced (scale full)")
        axes.set_title("Published vs reproduced")
        axes.legend(loc="upper left", fontsize="small")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# ------------------------------------------------------------------------------ driver

#: the report names the kind of folder each record came from, never the folder (same records, same bytes)
SOURCE_KINDS = {"reference": "the project's own measurements (`results/runs`, committed)",
                "new": "new runs (`$SSL_REPRO_RESULTS/runs`, by default `results/local/runs`, "
                       "not committed)"}


def default_runs() -> list[Path]:
    """``results/runs`` (the reference records) and the new records' folder (``$SSL_REPRO_RESULTS/runs``,
    by default ``results/local/runs``) if that is another folder."""
    return [DEFAULT_RUNS_DIR] + ([runs_path()] if runs_path().resolve() != DEFAULT_RUNS_DIR.resolve() else [])


def read_sources(runs_dirs: Sequence[str | Path]) -> tuple[list[ResultRecord], list[tuple[str, str, int]]]:
    """The records of each folder (a folder given twice is read once; a record identical to one
    already read is skipped) and (kind, folder, count) of each folder."""
    records: list[ResultRecord] = []
    seen: set[str] = set()
    sources: list[tuple[str, str, int]] = []
    folders = list(dict.fromkeys(Path(d).resolve() for d in runs_dirs))
    for folder in folders:
        count = 0
        for record in read_records(folder):
            key = json.dumps(dataclasses.asdict(record), sort_keys=True)
            if key not in seen:
                seen.add(key)
                records.append(record)
                count += 1
        kind = "reference" if folder == DEFAULT_RUNS_DIR.resolve() else "new"
        sources.append((kind, str(folder), count))
    return records, sources


def collect(runs_dir: str | Path | Sequence[str | Path] | None = None, out_dir: str | Path | None = None,
            published=None) -> dict[str, Path]:
    """Read the records under ``runs_dir`` (one folder or several; default
    :func:`default_runs`) and write the tables, report and scatter plot to ``out_dir``.
    Returns the written paths by name (``measured``, ``report``, ``scatter``, and each
    paper). Raises :class:`evaluation.records.RecordError` on a malformed record."""
    dirs = (default_runs() if runs_dir is None
            else [runs_dir] if isinstance(runs_dir, (str, Path)) else list(runs_dir))
    out = Path(out_dir) if out_dir is not None else runs_path().parent
    records, sources = read_sources(dirs)
    collection = collect_records(records, published)
    collection.sources = sources
    outputs: dict[str, tuple[Path, str | bytes]] = {
        "measured": (out / "measured.csv", measured_csv(collection))}
    for paper in PAPERS:
        outputs[paper] = (out / f"{paper}.csv", paper_csv(collection, paper))
    outputs["report"] = (out / "REPORT.md", report_md(collection))
    outputs["scatter"] = (out / "scatter.png", scatter_png(collection))
    for path, content in outputs.values():
        if isinstance(content, bytes):
            atomic_write_bytes(path, content)
        else:
            atomic_write_text(path, content)
    return {name: path for name, (path, _) in outputs.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.collector",
        description="Collect result records into results/measured.csv, "
                    "results/<paper>.csv, results/REPORT.md and results/scatter.png.")
    parser.add_argument("--runs", default=None, action="append",
                        help="folder of <task>.jsonl record files; may be repeated (default: "
                             "results/runs of the checkout, the reference records, and the new "
                             "records of $SSL_REPRO_RESULTS/runs, by default results/local/runs)")
    parser.add_argument("--out", default=None,
                        help="folder for the tables and report (default: "
                             "$SSL_REPRO_RESULTS, by default results/local/; "
                             "SSL_REPRO_RESULTS=results rebuilds the committed tables)")
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
