"""Packaging: the three packages import, imports point one way, every script has --help."""
import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pretrain", "transfer", "evaluation")
# who may import whom (DEVELOPERS.md): transfer -> pretrain -> evaluation
ALLOWED = {"evaluation": set(), "pretrain": {"evaluation"}, "transfer": {"pretrain", "evaluation"}}


def _modules(package):
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports(package):
    for path in _modules(package):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        importlib.import_module(name.removesuffix(".__init__"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    forbidden = set(PACKAGES) - ALLOWED[package] - {package}
    offenders = []
    for path in _modules(package):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(REPO)} imports {n}" for n in names if n.split(".")[0] in forbidden]
    assert not offenders, offenders


def test_third_party_stack_imports():
    import detectron2  # noqa: F401
    import mmcv
    import mmseg  # noqa: F401
    import pycocotools  # noqa: F401
    import sklearn  # noqa: F401

    assert mmcv.__version__ == "2.1.0"
    from mmcv.ops import nms  # compiled ops are present

    assert callable(nms)


SCRIPTS = [
    ["transfer/knn.py"],
    ["transfer/coco_det.py"],
    ["transfer/voc_det.py"],
    ["transfer/convert_detectron2.py"],
    ["transfer/convert_mmseg.py"],
    ["transfer/voc_seg.py"],
    ["transfer/cityscapes_seg.py"],
    ["transfer/linear.py"],
    ["transfer/semisup.py"],
    ["transfer/lowshot_svm.py"],
    ["-m", "pretrain"],
    ["-m", "pretrain.bench"],
    ["-m", "pretrain.data.synthetic"],
    ["-m", "evaluation.collector"],
    ["-m", "evaluation.smoke_summary"],
    ["-m", "evaluation.records"],
    ["-m", "evaluation.plan"],
    ["transfer/lbfgs_transfer.py"],
    ["benchmarks/lbfgs.py"],
    ["-m", "pretrain.data.synthetic_transfer"],
    ["-m", "pretrain.submit"],
    ["-m", "pretrain.make_configs"],
    ["benchmarks/augment_kornia.py"],
    ["transfer/davis.py"],
    ["transfer/segment_retrieval.py"],
]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s[-1])
def test_help(script):
    out = subprocess.run([sys.executable, *script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()
