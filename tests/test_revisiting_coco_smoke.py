"""docker/revisiting_coco_smoke.sh: bad input, and a few-step plumbing run on generated COCO."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _script(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "docker/revisiting_coco_smoke.sh"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "out"),
                                            "SSL_REPRO_RESULTS": str(tmp_path / "results"), **env})


def test_missing_coco_names_the_folder(tmp_path, generated):
    result = _script(tmp_path, COCO=str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "nowhere" in result.stderr
    result = _script(tmp_path, COCO=str(generated["coco"]), EVAL="imagenet")
    assert result.returncode == 2 and "imagenet" in result.stderr
    result = _script(tmp_path, COCO=str(generated["coco"]), EVAL="shapes", SHAPES=str(tmp_path / "no_shapes"))
    assert result.returncode == 2 and "no_shapes" in result.stderr
    assert not (tmp_path / "out" / "settings").exists()  # refused input leaves no settings behind


def test_out_with_runs_of_other_settings_is_refused(tmp_path, generated):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "settings").write_text("COCO=elsewhere TAU=0.5\n")
    result = _script(tmp_path, COCO=str(generated["coco"]), EVAL="coco-objects")
    assert result.returncode == 2 and "other settings" in result.stderr and "TAU=0.5" in result.stderr
    assert not (tmp_path / "out" / "random0.knn").exists()


def test_plumbing_on_generated_coco(tmp_path, generated):
    (tmp_path / "coco").symlink_to(generated["coco"])
    result = _script(tmp_path, COCO=str(tmp_path / "coco"), EVAL="coco-objects", VARIANTS="plain", STEPS="3",
                     BATCH="8", QUEUE="16", IMAGE_SIZE="64", JOBS="2")
    assert result.returncode in (0, 1), result.stderr
    randoms = [float((tmp_path / "out" / f"random{s}.knn").read_text()) for s in range(3)]
    row = re.search(r"^\| plain \| ([\d.]+) \| ([\d.]+)-([\d.]+) \| ([+-][\d.]+) \| (PASS|FAIL) \| \d+ \|$",
                    result.stdout, re.MULTILINE)
    assert row, result.stdout
    accuracy = float(row.group(1))
    assert (float(row.group(2)), float(row.group(3))) == (min(randoms), max(randoms))
    assert abs(float(row.group(4)) - (accuracy - max(randoms))) < 0.06
    assert row.group(5) == ("PASS" if accuracy > max(randoms) else "FAIL")
    assert result.returncode == (0 if row.group(5) == "PASS" else 1)
    records = (tmp_path / "results" / "runs" / "knn_cls.jsonl").read_text().splitlines()
    assert len(records) == 4 and all('"scale": "smoke"' in r for r in records)  # 3 random seeds + plain


def test_synthetic_generates_colour_pair_scenes_and_the_shapes_probe(tmp_path):
    import yaml

    result = _script(tmp_path, COCO="synthetic", VARIANTS="plain", STEPS="3", BATCH="8", QUEUE="16",
                     IMAGE_SIZE="64", VIEW_SIZE="32", JOBS="2", TAU="0.5",
                     OVERRIDES="optim.momentum=0.8 views.small.blur_p=0.5")
    assert result.returncode in (0, 1), result.stderr
    out = tmp_path / "out"
    marker = json.loads((out / "data" / "scenes" / "coco" / ".complete").read_text())
    assert (marker["format"], marker["scale"], marker["coco_colors"]) == ("coco", "small", "palette")
    assert (marker["coco_layout"], marker["seed"]) == ("themed", 0)  # LAYOUT, DATA_SEED defaults
    assert (out / "data" / "shapes" / "imagefolder" / "val").is_dir()
    config = yaml.safe_load((out / "plain" / "config.yaml").read_text())
    assert config["data"]["root"] == str(out / "data" / "scenes" / "coco")
    assert (config["views"]["default"]["size"], config["views"]["small"]["size"]) == (32, 16)
    assert config["method"]["tau"] == 0.5  # TAU
    assert (config["optim"]["momentum"], config["views"]["small"]["blur_p"]) == (0.8, 0.5)  # OVERRIDES
    assert "kNN on shapes" in result.stdout and "32 px, on shapes" in result.stdout
    assert re.search(r"^\| plain \| [\d.]+ \|", result.stdout, re.MULTILINE), result.stdout
