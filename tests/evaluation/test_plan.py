"""evaluation.plan: the steps of a published table for the full tier of docker/run_all.sh."""
from __future__ import annotations

from evaluation.plan import Step, main, plan


def _plan(table, **kw):
    paper, name = table.split(":")
    return plan(paper, name, data_root="/data", logs="L", gpus=4, **kw)


def test_cgh_table4_pretrains_each_named_config_then_runs_voc_detection_five_times():
    steps = _plan("cgh:Table 4")
    names = [s.name for s in steps if isinstance(s, Step)]
    # the MoCo v2 / BYOL baseline rows of Table 4 have their own full-scale configs (baselines/)
    assert names == ["baselines.byol_imagenet_r50_200ep.pretrain", "baselines.byol_imagenet_r50_200ep.voc-det-c4_24k",
                     "baselines.mocov2_imagenet_r50_200ep.pretrain",
                     "baselines.mocov2_imagenet_r50_200ep.voc-det-c4_24k",
                     "cgh.imagenet_r50.pretrain", "cgh.imagenet_r50.voc-det-c4_24k",
                     "cgh.imagenet_r50_multicrop.pretrain", "cgh.imagenet_r50_multicrop.voc-det-c4_24k",
                     "ressl.imagenet_r50_neurips.pretrain", "ressl.imagenet_r50_neurips.voc-det-c4_24k"]
    pretrain, det = (s for s in steps if isinstance(s, Step) and s.name.startswith("cgh.imagenet_r50."))
    assert pretrain.done == "runs/full/cgh/imagenet_r50/backbone.pth" and pretrain.needs == ("/data/imagenet",)
    assert pretrain.command.startswith("torchrun --nproc_per_node 4 -m pretrain --config "
                                       "pretrain/configs/cgh/imagenet_r50.yaml --resume auto data.root=/data/imagenet")
    assert det.done == "L/cgh.imagenet_r50.voc-det-c4_24k.done"
    assert det.needs == ("/data/VOCdevkit", "runs/full/cgh/imagenet_r50/backbone.pth")
    assert det.command == ("python transfer/voc_det.py --config c4_24k --data /data/VOCdevkit --repeats 5 "
                           "--num-gpus 4 --ckpt runs/full/cgh/imagenet_r50/backbone.pth --scale full")


def test_protocol_of_the_variant_picks_the_harness_config():
    coco = [s.command for s in _plan("ressl:Table 12") if isinstance(s, Step) and "coco_det" in s.command]
    assert coco and all("--config c4_2x_ressl " in c for c in coco)  # ReSSL's 2x C4 recipe (lr 0.04)
    cgh9 = [s.command for s in _plan("cgh:Table 9") if isinstance(s, Step) and "coco_det" in s.command]
    assert cgh9 and all("--config c4_1x " in c for c in cgh9)
    small = [s for s in _plan("cgh:Table 6") if isinstance(s, Step) and "linear" in s.name]
    assert small and all("--recipe cgh_small --dataset tinyimagenet --data /data/tiny-imagenet-200 "
                         "--test-split val --dataset-name Tiny-ImageNet" in s.command for s in small)


def test_slurm_launch_and_tables_without_configs(capsys):
    steps = _plan("ressl:Table 7", launch="slurm", nodes=2, partition="gpu")
    pretrain = [s for s in steps if isinstance(s, Step) and s.name.endswith(".pretrain")]
    assert pretrain and all(s.command.startswith("python -m pretrain.submit --config ") and
                            "--nodes 2 --gpus-per-node 4 --partition gpu" in s.command for s in pretrain)
    assert _plan("pcd:text") == ["# pcd text: no pretraining config names its rows "
                                 "(pretrain/make_configs.py): not run"]
    assert main(["--table", "all", "--data-root", "/data"]) == 0  # every published table plans
    out = capsys.readouterr().out
    assert "# cgh Table 10 CGH IN-1K: no harness for training cost" in out  # said, not dropped
    assert "\tpython transfer/linear.py --recipe ressl_small" in out


def test_revisiting_transfer_uses_its_own_lbfgs_variant_and_ressl_transfer_tables_have_a_config():
    revisiting = [s.command for s in _plan("revisiting:Table 2") if isinstance(s, Step) and "lbfgs" in s.name]
    assert revisiting and all(c.split("--preset ")[1].startswith("revisiting") for c in revisiting)
    ressl = [s.command for s in _plan("ressl:Table 9") if isinstance(s, Step) and "lbfgs" in s.name]
    assert ressl and not any("--preset" in c for c in ressl)  # Ericsson's protocol (the default)
    for table in ("Table 10", "Table 11"):
        assert any(isinstance(s, Step) and s.name.startswith("ressl.imagenet_r50_strong_aug.")
                   for s in _plan(f"ressl:{table}")), table
