"""The converted backbone computes the suite backbone's function inside detectron2.

The real detectron2 model is built from the harness's own config (C4, as voc_det/coco_det build
it), the converted weights are loaded by detectron2's checkpointer, and the image reaches it as
detectron2's DatasetMapper delivers it (``read_image`` in ``cfg.INPUT.FORMAT``, 0-255 CHW; the
model subtracts PIXEL_MEAN and divides by PIXEL_STD). Its C4 (``backbone`` res4) and C5 (the
ROI head's res5 stage, before MoCo's extra norm) must equal the suite backbone's layer3/layer4
outputs on the same image file read as RGB and ImageNet-normalised. A stride in the 1x1 conv
(STRIDE_IN_1X1 True), BGR input or Caffe mean/std would each break the equality (the controls
below show it)."""
import numpy as np
import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data.detection_utils import read_image
from detectron2.modeling import build_model
from PIL import Image

from pretrain.checkpoint import load_backbone, save_backbone
from pretrain.data.augment import normalize
from pretrain.models.resnet import build_backbone
from transfer.detectron2_common import DatasetSpec, build_cfg, prepare_weights

DUMMY = DatasetSpec("coco", "dummy", "", "")
pytestmark = pytest.mark.usefixtures("one_thread")


def _checkpoint(arch, tmp_path):
    torch.manual_seed(0)
    model = build_backbone(arch, stem="imagenet")
    for m in model.modules():  # BN that is not the identity, so the norms' placement matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return save_backbone(tmp_path / f"{arch}.pth", model, method="unit")


def _image(tmp_path):
    """A non-square RGB file with a colour gradient (channels differ, so RGB/BGR order matters)."""
    rng = np.random.default_rng(0)
    h, w = 72, 88
    base = np.stack([np.linspace(0, 255, w)[None].repeat(h, 0), np.linspace(255, 0, h)[:, None].repeat(w, 1),
                     np.full((h, w), 60.0)], 2)
    pixels = np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)
    path = tmp_path / "image.png"
    Image.fromarray(pixels).save(path)
    return path


def _detectron2_c4_c5(cfg, weights, image_path, opts=()):
    if opts:
        cfg = cfg.clone()
        cfg.defrost()
        cfg.merge_from_list(list(opts))
        cfg.freeze()
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(str(weights))
    array = read_image(str(image_path), format=cfg.INPUT.FORMAT)  # as detectron2's DatasetMapper reads it
    image = torch.as_tensor(np.ascontiguousarray(array.transpose(2, 0, 1)))
    with torch.no_grad():
        images = model.preprocess_image([{"image": image}])
        c4 = model.backbone(images.tensor)["res4"]
        res5 = model.roi_heads.res5
        c5 = c4
        for name, block in res5.named_children():
            if name != "norm":  # MoCo's extra norm after res5 is a new layer, not the backbone's
                c5 = block(c5)
    return c4, c5


def _suite_c4_c5(ckpt, image_path):
    backbone, _ = load_backbone(ckpt)
    backbone.eval()
    x = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB")).copy()).permute(2, 0, 1)[None]
    with torch.no_grad():
        stages = backbone.forward_stages(normalize(x))
    return stages["C4"], stages["C5"]


@pytest.mark.parametrize("config,arch", [("voc_C4_24k", "resnet50"), ("coco_C4_1x", "resnet18"),
                                         ("coco_C4_1x", "resnet18_w16")])
def test_c4_and_c5_equal_the_suite_backbone(config, arch, tmp_path):
    ckpt = _checkpoint(arch, tmp_path)
    cfg, _ = build_cfg(config, arch, train=[DUMMY], test=DUMMY, num_classes=3, device="cpu", num_gpus=1,
                       out_dir=tmp_path, smoke=True, max_iter=None, opts=[], seed=0)
    assert cfg.INPUT.FORMAT == "RGB" and not cfg.MODEL.RESNETS.STRIDE_IN_1X1
    weights, _ = prepare_weights(ckpt, cfg, tmp_path / "d2", None)
    image = _image(tmp_path)
    ours4, ours5 = _suite_c4_c5(ckpt, image)
    d2_4, d2_5 = _detectron2_c4_c5(cfg, weights, image)
    assert d2_4.shape == ours4.shape and d2_5.shape == ours5.shape
    assert ours4.shape[-2:] == (5, 6) and ours5.shape[-2:] == (3, 3)  # strides 16 and 32 of 72 x 88
    for ours, theirs in ((ours4, d2_4), (ours5, d2_5)):
        scale = ours.abs().max()
        assert (ours - theirs).abs().max() <= 1e-4 * scale, (ours - theirs).abs().max() / scale
    if arch == "resnet50":
        # controls: each classic conversion mistake changes the features by far more than the tolerance
        for opts in (("MODEL.RESNETS.STRIDE_IN_1X1", True), ("INPUT.FORMAT", "BGR"),
                     ("MODEL.PIXEL_MEAN", [103.530, 116.280, 123.675], "MODEL.PIXEL_STD", [1.0, 1.0, 1.0])):
            wrong4, _ = _detectron2_c4_c5(cfg, weights, image, opts)
            assert (wrong4 - ours4).abs().max() > 0.05 * ours4.abs().max(), opts
