"""The full-scale reproduction plan: per published table, the pretraining runs and evaluations
that fill its cells (what ``SCALE=full bash docker/run_all.sh`` executes).

    python -m evaluation.plan --list                         # every table: configs naming it
    python -m evaluation.plan --table "ressl:Table 1" --data-root /data --gpus 8
    python -m evaluation.plan --table "cgh:Table 4" --launch slurm --nodes 2 --partition gpu

A table's runs are the pretraining configs (``pretrain/configs/**.yaml``) whose
``reproduces`` names rows of it; its evaluations follow from what those rows measure (task,
dataset, evaluation protocol of the variant): linear / kNN / semi-supervised classification,
VOC and COCO detection with the detectron2 config the variant names, FCN segmentation with
the paper's mmseg protocol, the VOC07 low-shot SVM, the L-BFGS linear transfer. Each
evaluation runs on the config's ``backbone.pth`` at scale ``full``.

Output: one tab-separated line per step ``name, finished-when, needs, command``: the step is
finished when the ``finished-when`` file exists (the pretraining's ``backbone.pth``, or the
step's ``.done`` marker under ``--logs``); ``needs`` lists the paths (comma-separated) that
must exist before it can run (datasets in their original layouts under ``--data-root``, the
backbone). Lines starting with ``#`` say what cannot be run and why (no config names the
table's rows, no harness for a task yet).
"""
from __future__ import annotations

import argparse
import functools
import shlex
import sys
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import yaml

from evaluation.collector import annotated_published, facets, named_rows, primary_task
from evaluation.provenance import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "pretrain" / "configs"
#: published ``task`` -> nothing in the suite measures it yet
NO_HARNESS = {"depth": "NYUD depth", "cost": "training cost (read it from the pretraining logs)"}
#: published transfer dataset -> (reader kind of transfer/lbfgs_transfer.py, folder under DATA_ROOT/transfer)
TRANSFER = {"Food-101": "food101", "CIFAR-10": "cifar10", "CIFAR-100": "cifar100", "Birdsnap": "birdsnap",
            "SUN397": "sun397", "Cars": "cars", "Aircraft": "aircraft", "VOC07": "voc2007", "DTD": "dtd",
            "Pets": "pets", "Caltech-101": "caltech101", "Flowers": "flowers102"}
TEST_SPLIT = {"tinyimagenet": "val", "imagefolder": "val"}  # other readers: "test"


class Step(NamedTuple):
    name: str
    done: str      # the step is finished when this file exists
    needs: tuple   # paths that must exist before it runs
    command: str

    def line(self) -> str:
        return "\t".join((self.name, self.done, ",".join(self.needs), self.command))


def table_configs(paper: str, table: str, config_dir: Path = CONFIG_DIR) -> list[tuple[Path, dict]]:
    """(path, config) of every pretraining config whose ``reproduces`` names a row of the table."""
    found = []
    for path, config in _configs(Path(config_dir)):
        refs = config.get("reproduces") or []
        if any(isinstance(r, dict) and r.get("paper") == paper and r.get("table") == table for r in refs):
            found.append((path, config))
    return found


@functools.lru_cache(maxsize=4)
def _configs(config_dir: Path) -> tuple[tuple[Path, dict], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster
    return tuple((path, yaml.load(path.read_text(), Loader=loader) or {}) for path in sorted(config_dir.rglob("*.yaml")))


def _data_path(root: str, data_root: str) -> str:
    """A config's ``data.root`` (``data/<folder>``) under ``--data-root``."""
    return str(Path(data_root) / Path(root).relative_to("data")) if root.startswith("data/") else root


def evaluations(rows, paper: str, config: dict, data_root: str, gpus: int) -> Iterator[tuple[str, tuple, str] | str]:
    """(step suffix, data needed, harness command without --ckpt/--scale) per evaluation the
    rows need, or a ``#`` line for what has no harness."""
    d = Path(data_root)
    imagenet = ("--dataset", "imagefolder", "--data", str(d / "imagenet"), "--test-split", "val",
                "--dataset-name", "IN-1K")
    data = config.get("data") or {}
    for _, row in rows.iterrows():
        task = primary_task(row["task"], row["dataset"], row["metric"])
        dataset, found = row["dataset"], facets(task, row["variant"])
        if task == "linear_cls" and "input" in found:  # CGH Table 8: the hypercolumn as classifier input
            yield f"# {paper} {row['table']} {row['method']} {dataset}: no harness for a {found['input']} linear classifier yet"
        elif task in NO_HARNESS:
            yield f"# {paper} {row['table']} {row['method']} {dataset}: no harness for {NO_HARNESS[task]} yet"
        elif task == "linear_cls" and dataset == "IN-1K":
            recipe = {"ressl": "ressl_imagenet", "cgh": "cgh_imagenet", "lewel": "lewel"}.get(paper, "moco_imagenet")
            yield f"linear-{recipe}", (str(d / "imagenet"),), shlex.join(
                ["transfer/linear.py", "--recipe", recipe, *imagenet])
        elif task == "linear_cls":  # the pretraining set's own linear evaluation (small datasets)
            kind, root = data.get("kind", ""), _data_path(str(data.get("root", "")), data_root)
            recipe = {"cgh": "cgh_small"}.get(paper, "ressl_small")
            yield f"linear-{recipe}-{kind}", (root,), shlex.join(
                ["transfer/linear.py", "--recipe", recipe, "--dataset", kind, "--data", root,
                 "--test-split", TEST_SPLIT.get(kind, "test"), "--dataset-name", dataset])
        elif task == "knn_cls":
            yield "knn-IN-1K", (str(d / "imagenet"),), shlex.join(
                ["transfer/knn.py", *imagenet, "--image-size", "224"])
        elif task in ("semi_sup_1pct", "semi_sup_10pct"):
            pct = task.rsplit("_", 1)[1]
            subset = d / "imagenet" / "subsets" / f"{pct.replace('pct', 'percent')}.txt"
            yield f"semisup-{pct}", (str(d / "imagenet"), str(subset)), shlex.join(
                ["transfer/semisup.py", "--recipe", f"{paper}_{pct}", "--data", str(d / "imagenet"),
                 "--subset", str(subset), "--dataset-name", "IN-1K"])
        elif task == "det_voc":
            config_name = ("dc5_24k" if found.get("neck") == "DC5" else
                           "c4_9k_voc07" if found.get("schedule") == "9k" else "c4_24k")
            yield f"voc-det-{config_name}", (str(d / "VOCdevkit"),), shlex.join(
                ["transfer/voc_det.py", "--config", config_name, "--data", str(d / "VOCdevkit"),
                 "--repeats", "5", "--num-gpus", str(gpus)])
        elif task in ("det_coco", "inst_seg_coco"):
            neck, schedule = found.get("neck", "C4").lower(), found.get("schedule", "1x")
            config_name = f"{neck}_{schedule}" + ("_ressl" if (paper, neck, schedule) == ("ressl", "c4", "2x") else "")
            yield f"coco-{config_name}", (str(d / "coco"),), shlex.join(
                ["transfer/coco_det.py", "--config", config_name, "--data", str(d / "coco"),
                 "--num-gpus", str(gpus)])
        elif task == "sem_seg" and dataset in ("VOC12", "Cityscapes"):
            script, folder = (("voc_seg.py", "VOCdevkit") if dataset == "VOC12" else
                              ("cityscapes_seg.py", "cityscapes"))
            yield f"seg-{folder}-{paper}", (str(d / folder),), shlex.join(
                [f"transfer/{script}", "--protocol", paper, "--data", str(d / folder), "--num-gpus", str(gpus)])
        elif task == "video_seg":
            yield "davis", (str(d / "DAVIS"),), shlex.join(["transfer/davis.py", "--data", str(d / "DAVIS")])
        elif task == "segment_retrieval":
            yield "segment-retrieval", (str(d / "VOCdevkit"),), shlex.join(
                ["transfer/segment_retrieval.py", "--data", str(d / "VOCdevkit")])
        elif task == "low_shot":
            yield "lowshot-svm", (str(d / "VOCdevkit"),), shlex.join(
                ["transfer/lowshot_svm.py", "--data", str(d / "VOCdevkit")])
        elif task == "transfer_linear" and dataset in TRANSFER:
            kind = TRANSFER[dataset]
            preset = ["--preset", "revisiting"] if paper == "revisiting" else []  # seed 004 App. A.2
            yield f"lbfgs-{kind}{'-revisiting' if preset else ''}", (str(d / "transfer" / kind),), shlex.join(
                ["transfer/lbfgs_transfer.py", "--dataset", kind, "--data", str(d / "transfer" / kind), *preset])
        else:
            yield f"# {paper} {row['table']} {row['method']} {dataset} {row['metric']}: no harness for {task} on it yet"


def plan(paper: str, table: str, *, data_root: str, logs: str, run_root: str = "runs/full",
         launch: str = "torchrun", gpus: int = 8, nodes: int = 1, partition: str = "",
         python: str = "python", published=None, config_dir: Path = CONFIG_DIR) -> list[Step | str]:
    """The steps of one published table (see the module docstring)."""
    published = annotated_published(published)
    table_rows = published[(published["paper"] == paper) & (published["table"] == table)]
    if table_rows.empty:
        raise SystemExit(f"no published table {paper}:{table}")
    configs = table_configs(paper, table, config_dir)
    if not configs:
        return [f"# {paper} {table}: no pretraining config names its rows (pretrain/make_configs.py): not run"]
    out: list[Step | str] = []
    seen: set[str] = set()
    for path, config in configs:
        name = str(path.relative_to(config_dir).with_suffix(""))
        out_dir = f"{run_root}/{name}"
        backbone = f"{out_dir}/backbone.pth"
        data = config.get("data") or {}
        root = _data_path(str(data.get("root", "")), data_root)
        overrides = [f"data.root={root}", f"train.out_dir={out_dir}"]
        if launch == "slurm":
            command = [python, "-m", "pretrain.submit", "--config", str(path.relative_to(REPO_ROOT)),
                       "--nodes", str(nodes), "--gpus-per-node", str(gpus),
                       *(["--partition", partition] if partition else []), *overrides]
        else:
            command = ["torchrun", "--nproc_per_node", str(gpus), "-m", "pretrain", "--config",
                       str(path.relative_to(REPO_ROOT)), "--resume", "auto", *overrides]
        pretrain = f"{name.replace('/', '.')}.pretrain"
        if pretrain not in seen:
            seen.add(pretrain)
            out.append(Step(pretrain, backbone, (root,), shlex.join(command)))
        rows = [named_rows(table_rows, ref) for ref in config.get("reproduces") or []
                if isinstance(ref, dict) and ref.get("paper") == paper and ref.get("table") == table]
        for rows_of_ref in rows:
            for item in evaluations(rows_of_ref, paper, config, data_root, gpus):
                if isinstance(item, str):
                    if item not in seen:
                        seen.add(item)
                        out.append(item)
                    continue
                suffix, needs, harness = item
                step = f"{name.replace('/', '.')}.{suffix}"
                if step in seen:
                    continue
                seen.add(step)
                out.append(Step(step, f"{logs}/{step}.done", (*needs, backbone),
                                f"{python} {harness} --ckpt {shlex.quote(backbone)} --scale full"))
    return out


def tables(published=None) -> list[tuple[str, str]]:
    published = annotated_published(published)
    return list(dict.fromkeys(zip(published["paper"], published["table"])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="append", default=[], metavar="PAPER:TABLE",
                        help='e.g. "ressl:Table 1" (repeatable); "all" = every published table')
    parser.add_argument("--list", action="store_true", help="every published table and the configs naming it")
    parser.add_argument("--data-root", default="data", help="root of the datasets in their original layouts")
    parser.add_argument("--logs", default="results/logs/full", help="folder of the steps' logs and .done markers")
    parser.add_argument("--run-root", default="runs/full", help="pretraining output folders go under it")
    parser.add_argument("--launch", choices=["torchrun", "slurm"], default="torchrun",
                        help="torchrun on this node, or SLURM through submitit (python -m pretrain.submit)")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs per node")
    parser.add_argument("--nodes", type=int, default=1, help="nodes (--launch slurm)")
    parser.add_argument("--partition", default="", help="SLURM partition (--launch slurm)")
    parser.add_argument("--python", default="python", help="interpreter written into the commands")
    args = parser.parse_args(argv)
    if args.list:
        for paper, table in tables():
            configs = table_configs(paper, table)
            print(f"{paper}:{table}\t{len(configs)} config(s)")
        return 0
    wanted = tables() if "all" in args.table else [tuple(t.split(":", 1)) for t in args.table]
    if not wanted or any(len(t) != 2 for t in wanted):
        parser.error('give --table PAPER:TABLE (e.g. "ressl:Table 1"), --table all, or --list')
    for paper, table in wanted:
        for step in plan(paper, table, data_root=args.data_root, logs=args.logs, run_root=args.run_root,
                         launch=args.launch, gpus=args.gpus, nodes=args.nodes, partition=args.partition,
                         python=args.python):
            print(step if isinstance(step, str) else step.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
