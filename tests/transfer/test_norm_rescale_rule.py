"""PCD's NormRescale (x0.25) is decided by the checkpoint's ``method``: applied to PCD checkpoints
in C4 detectors and FCN segmenters, never to baselines -- in detection and segmentation alike."""
import pytest
import torch

from pretrain.checkpoint import save_backbone
from pretrain.models.resnet import build_backbone
from transfer.convert_detectron2 import (PCD_NORM_RESCALE, ConversionError, decide_norm_rescale, norm_rescale,
                                         suite_to_detectron2)
from transfer.detectron2_common import DatasetSpec, build_cfg, prepare_weights

DUMMY = DatasetSpec("coco", "dummy", "", "")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """The same R18 weights saved as a PCD checkpoint and as two baselines."""
    folder = tmp_path_factory.mktemp("norm_rescale")
    torch.manual_seed(0)
    model = build_backbone("resnet18", stem="imagenet")
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return {method: save_backbone(folder / f"{method}.pth", model, method=method)
            for method in ("pcd", "mocov2", "random_init")}


def test_rule():
    assert PCD_NORM_RESCALE == 0.25
    assert decide_norm_rescale("pcd", None, c4_or_fcn=True) == 0.25
    assert decide_norm_rescale("pcd", None, c4_or_fcn=False) is None  # FPN: PCD rescales C4/FCN only
    for baseline in ("mocov2", "byol", "ressl", "cgh", "random_init", "moco_v1_v2", None):
        assert decide_norm_rescale(baseline, None, c4_or_fcn=True) is None
        assert decide_norm_rescale(baseline, 0, c4_or_fcn=True) is None
        with pytest.raises(ConversionError, match="never rescaled"):
            decide_norm_rescale(baseline, 0.25, c4_or_fcn=True)
    assert decide_norm_rescale("pcd", 0, c4_or_fcn=True) is None
    assert decide_norm_rescale("pcd", 0.5, c4_or_fcn=True) == 0.5
    with pytest.raises(ConversionError, match="positive"):
        decide_norm_rescale("pcd", -1.0, c4_or_fcn=True)


def _weights(checkpoints, method, config, tmp_path, request=None):
    cfg, _ = build_cfg(config, "resnet18", train=[DUMMY], test=DUMMY, num_classes=3, device="cpu", num_gpus=1,
                       out_dir=tmp_path, smoke=True, max_iter=None, opts=[], seed=0)
    path, meta = prepare_weights(checkpoints[method], cfg, tmp_path / method, request)
    return torch.load(path, weights_only=True)["model"], meta


@pytest.mark.parametrize("method,config,rescaled", [
    ("pcd", "coco_C4_1x", True), ("pcd", "voc_C4_24k", True), ("pcd", "coco_FPN_1x", False),
    ("mocov2", "coco_C4_1x", False), ("random_init", "voc_C4_24k", False),
])
def test_detection_weights_follow_the_checkpoint_method(checkpoints, method, config, rescaled, tmp_path):
    placed, meta = _weights(checkpoints, method, config, tmp_path)
    assert meta["norm_rescale"] == (0.25 if rescaled else None)
    named, _ = suite_to_detectron2(checkpoints[method])
    expected = norm_rescale(named, 0.25) if rescaled else named
    for key, value in placed.items():
        short = key.removeprefix("backbone.bottom_up.").removeprefix("backbone.").removeprefix("roi_heads.")
        assert torch.equal(value, expected[short]), key
    conv = next(k for k in placed if k.endswith("res4.0.conv1.weight"))
    ratio = placed[conv].norm() / named["res4.0.conv1.weight"].norm()
    assert ratio.item() == pytest.approx(0.25 if rescaled else 1.0)


def test_detection_refuses_a_factor_for_a_baseline(checkpoints, tmp_path):
    with pytest.raises(ConversionError, match="method is 'mocov2'"):
        _weights(checkpoints, "mocov2", "coco_C4_1x", tmp_path, request=0.25)


def test_segmentation_refuses_a_factor_for_a_baseline(checkpoints, generated, tmp_path):
    from transfer import cityscapes_seg

    with pytest.raises(ConversionError, match="method is 'mocov2'"):
        cityscapes_seg.main(["--ckpt", str(checkpoints["mocov2"]), "--data", str(generated["cityscapes"]),
                             "--smoke", "--norm-rescale", "0.25", "--work-dir", str(tmp_path)])


@pytest.mark.parametrize("flags", [["--norm-rescale", "0.25"], ["--norm-rescale", "0"]])
def test_full_scale_takes_no_explicit_factor(checkpoints, flags, tmp_path, capsys):
    from transfer import cityscapes_seg, voc_det

    for main, args in ((cityscapes_seg.main, ["--data", str(tmp_path)]), (voc_det.main, ["--data", str(tmp_path)])):
        with pytest.raises(SystemExit):
            main(["--ckpt", str(checkpoints["pcd"]), "--scale", "full", *args, *flags])
        assert "drop --norm-rescale" in capsys.readouterr().err
