"""Write one YAML per published ReSSL / CGH pretraining run into pretrain/configs/{ressl,cgh}/.

    python -m pretrain.make_configs            # (re)write the folders
    python -m pretrain.make_configs --check    # exit 1 if a committed file differs

Every run of the seeds' tables (ReSSL Tables 1-8, 13-14; CGH Tables 1, 2, 5-7) is described once
here as settings on top of a base recipe; runs with identical settings are ONE config whose
``reproduces`` lists every published row it stands behind (e.g. ReSSL CIFAR-10 with
predictor, tau_s 0.1, tau_t 0.04 is Table 1, Table 3 "without warm-up", Table 4 "RRC + flip",
Table 5 "weak" and Table 6 K=4096 at once). The linear-evaluation rows are reproduced by
the linear harness run on the exported backbone; the config's ``reproduces`` is carried
into the backbone file for it.

Facts and the gaps filled (each a config value):
- Small/medium datasets (ReSSL seed 003 Sec. 4): ResNet-18 with the CIFAR stem, 32 px
  (CIFAR) / 64 px (STL-10, Tiny-ImageNet), memory 4096 / 16384, m 0.99, SGD momentum 0.9,
  wd 5e-4, lr 0.06 x bs/256 with 10 linear warm-up epochs then cosine, 200 epochs.
  Heads: "a predictor head as in [12], [35]" (SimSiam, BYOL: Linear-BN-ReLU-Linear), so with
  the predictor the projector and predictor have BN in the hidden layer (``head_bn``); without
  it, MoCo v2's head (no BN), on which the paper says ReSSL is based. Measured at smoke scale:
  with the predictor and no head BN the student collapsed to a constant (loss = ln K).
  NOT stated: batch size (256 used; CGH states 256 "following ReSSL"), projector size
  (CGH: "following ReSSL, hidden 4096, output 512"), InfoNCE warm-up length (Table 3;
  10 epochs used, = the lr warm-up), the InfoNCE temperature (0.2, MoCo v2's).
- Table 4 rows 8-13: the seed's table lost which augmentations they combine, so no config
  is written for them; rows 2-6 are written as the single augmentation the row most likely
  is (the published variant names say "likely").
- ImageNet, TPAMI recipe (Sec. 5.1): LARS, bs 1024, lr 0.6 x bs/256, wd 1e-6, 10 warm-up
  epochs, memory 65536, m 0.996 -> 1 (cosine), projector/predictor 4096 -> 256 with BN,
  tau_t 0.03, tau_s 0.1, BYOL-style student view with blur 0.5 / solarize 0.1 and min crop
  0.14; multi-crop 224/192/160/128/96 px, min/max area (0.14,.117,.095,.073,.05)/(1,.86,.715,.571,.429).
- ImageNet, NeurIPS recipe (the "*" rows, batch 256; protocols.md): SGD lr 0.05, wd 1e-4
  (BN and bias excluded), 5 warm-up epochs, memory 131072, m 0.999, shuffle-BN, projector
  2048 -> 4096 -> 512 without BN, tau_t 0.04, tau_s 0.1, MoCo v2 student view.
- "2 crops; 2x backprop" (Table 7: R50 with the TPAMI recipe, batch 1024, and the "*" row with
  the NeurIPS recipe, batch 256; Table 13: every backbone): the 1x config with
  ``method.symmetric: true``. The seed gives no equation for it, only "2x backprop" and its
  cost (ReSSL.forward_symmetric lists what it states). ASSUMED: two crops per image, each
  weak for the teacher and strong for the student; each student view learns the other crop's
  teacher relation, the two terms averaged; both teacher embeddings enter the memory; epochs,
  batch, lr, memory size and temperatures as in the 1x run (nothing else is stated).
  Table 8 has no 2x-backprop row (its multi-crop row is the 1x multi-crop config).
- Lightweight backbones (Tables 13-14: ResNet-18/34, EfficientNet-B0/B1, MobileNet-V3-Large;
  200 epochs, "following the experimental setting in" SEED/DisCo, which the seed does not
  restate): NOT stated: optimiser, batch size (Table 13 prints none), lr, memory, heads and
  augmentation for these runs; the ImageNet TPAMI recipe above is used for all of them, with
  224 px crops (also for EfficientNet-B1, whose supervised resolution is 240). The networks are
  torchvision's (weights=None); the feature fed to the projector is the pooled output of their
  ``features`` (1280 / 1280 / 960 wide) and EfficientNet runs without stochastic depth (gaps
  stated in pretrain/models/lightweight.py).
- CGH (seed 000 Sec. 4.1): ReSSL's recipe plus tau_h 0.08, stages 3+4, m 0.999;
  Tiny-ImageNet/STL-10: 400 epochs, lr 0.06, wd 5e-4, bs 256; ImageNet: 200 epochs, lr 0.05,
  wd 1e-4, bs 256, memory 131072 (official code), 5 warm-up epochs (official code).
- Table 8 "stronger augmentation": the seed says only that it follows CLSA's augmentation
  setting [75] for 200 epochs. CLSA's (official code, run_multi.sh): 5 strong crops at
  224/192/160/128/96 px with min/max area (0.2,.172,.143,.114,.086)/(1,.86,.715,.571,.429),
  each MoCo v2's augmentation followed by RandAugment with 5 ops from FixMatch's 14-op pool
  (each applied with probability 1/2, level uniform in 1..9 of 10). ASSUMED: those are
  ReSSL's 5 student crops; the teacher view and everything else is the TPAMI multi-crop run.
- Not written: Table 4 rows 8-13 (see above).
- LEWEL (seed 001, Tables 1-9): facts, gaps filled and the runs not written: ``lewel_runs``.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from pretrain.config import CONFIG_DIR

SMALL = {  # dataset -> reader kind, root, split, side, memory K, published name
    "cifar10": dict(kind="cifar10", root="data/cifar-10-batches-py", split="train", size=32, memory=4096,
                    name="CIFAR-10"),
    "cifar100": dict(kind="cifar100", root="data/cifar-100-python", split="train", size=32, memory=4096,
                     name="CIFAR-100"),
    "stl10": dict(kind="stl10", root="data/stl10_binary", split="train+unlabeled", size=64, memory=16384,
                  name="STL-10"),
    "tinyimagenet": dict(kind="tinyimagenet", root="data/tiny-imagenet-200", split="train", size=64,
                         memory=16384, name="Tiny-ImageNet"),
}
# best temperatures of Table 1 (with predictor, tau_s 0.1), used by Tables 3-6
BEST_TAU_T = {"cifar10": 0.04, "cifar100": 0.03, "stl10": 0.03, "tinyimagenet": 0.03}
JITTER = [0.4, 0.4, 0.4, 0.1]  # colour distortion strength 0.5
STRONG = dict(scale=[0.2, 1.0], jitter=JITTER, jitter_p=0.8, gray_p=0.2, blur_p=0.5)
NO_AUG = dict(scale=[1.0, 1.0], ratio=[1.0, 1.0], flip_p=0.0, jitter_p=0.0, gray_p=0.0, blur_p=0.0)
TABLE4 = {  # variant -> teacher view (rows 8-13 unrecoverable: not written)
    "teacher aug=none (resize only)": NO_AUG,
    "teacher aug=row 2 (likely random resized crop only)": {**NO_AUG, "scale": [0.2, 1.0], "ratio": [0.75, 1.3333]},
    "teacher aug=row 3 (likely random flip only)": {**NO_AUG, "flip_p": 0.5},
    "teacher aug=row 4 (likely color jitter only)": {**NO_AUG, "jitter": JITTER, "jitter_p": 0.8},
    "teacher aug=row 5 (likely grayscale only)": {**NO_AUG, "gray_p": 0.2},
    "teacher aug=row 6 (likely gaussian blur only)": {**NO_AUG, "blur_p": 0.5},
    "teacher aug=random resized crop + random flip": {},
    "teacher aug=all five (RRC, flip, color jitter, grayscale, blur)": STRONG,
}
# Table 13 backbones: arch, config-name part, published label
TABLE13_BACKBONES = (("resnet18", "18", "ResNet-18"), ("resnet34", "34", "ResNet-34"),
                     ("efficientnet_b0", "efficientnet_b0", "EfficientNet-B0"),
                     ("efficientnet_b1", "efficientnet_b1", "EfficientNet-B1"),
                     ("mobilenet_v3_large", "mobilenet_v3_large", "MobileNet-V3-Large"))
MULTI_CROP_TPAMI = [dict(size=s, scale=[lo, hi]) for s, lo, hi in zip(
    (224, 192, 160, 128, 96), (0.14, 0.117, 0.095, 0.073, 0.05), (1.0, 0.86, 0.715, 0.571, 0.429))]
MULTI_CROP_NEURIPS = [dict(size=s, scale=[lo, hi]) for s, lo, hi in zip(
    (224, 192, 160, 128, 96), (0.2, 0.172, 0.143, 0.114, 0.086), (1.0, 0.86, 0.715, 0.571, 0.429))]


def small_base(method: str, dataset: str, epochs: int) -> dict[str, Any]:
    d = SMALL[dataset]
    return {
        "scale": "full",
        "method": {"name": method, "dim": 512, "hidden_dim": 4096, "head_bn": True, "predictor": True,
                   "bn": "global", "memory": d["memory"], "tau_s": 0.1, "tau_t": 0.04, "tau_infonce": 0.2,
                   "infonce_warmup_epochs": 0},
        "model": {"arch": "resnet18", "stem": "cifar"},
        "data": {"kind": d["kind"], "name": d["name"], "root": d["root"], "split": d["split"],
                 "image_size": d["size"], "workers": 8},
        "views": {"teacher": {"size": d["size"]}, "student": {"size": d["size"], **STRONG}},
        "optim": {"name": "sgd", "base_lr": 0.06, "lr_reference_batch": 256, "batch_size": 256,
                  "momentum": 0.9, "weight_decay": 5.0e-4, "exclude_bn_bias": False, "warmup_epochs": 10,
                  "epochs": epochs},
        "ema": {"schedule": "constant", "base": 0.99},
        "train": {"seed": 0, "checkpoint_every": 2000},
        "monitor": {"k": 200, "temperature": 0.1, "every_steps": 5000, "bank_split": "train",
                    "query_split": "test" if dataset.startswith("cifar") else "val"},
    }


def imagenet_data() -> dict[str, Any]:
    return {"kind": "imagefolder", "name": "IN-1K", "root": "data/imagenet", "split": "train",
            "image_size": 256, "workers": 10}


def ressl_tpami(arch: str, epochs: int = 200, multi_crop: bool = False) -> dict[str, Any]:
    student = dict(size=224, scale=[0.14, 1.0], jitter=[0.4, 0.4, 0.2, 0.1], jitter_p=0.8, gray_p=0.2,
                   blur_p=0.5, solarize_p=0.1)
    views = {"teacher": {"size": 224, "scale": [0.14, 1.0]}, "student": student}
    if multi_crop:
        views["student_crops"] = MULTI_CROP_TPAMI
    return {
        "scale": "full",
        "method": {"name": "ressl", "dim": 256, "hidden_dim": 4096, "head_bn": True, "predictor": True,
                   "bn": "global", "memory": 65536, "tau_s": 0.1, "tau_t": 0.03, "tau_infonce": 0.2,
                   "infonce_warmup_epochs": 10},
        "model": {"arch": arch, "stem": "imagenet"},
        "data": imagenet_data(), "views": views,
        "optim": {"name": "lars", "base_lr": 0.6, "lr_reference_batch": 256, "batch_size": 1024,
                  "momentum": 0.9, "weight_decay": 1.0e-6, "exclude_bn_bias": True, "warmup_epochs": 10,
                  "epochs": epochs},
        "ema": {"schedule": "cosine", "base": 0.996},
        "train": {"seed": 0, "checkpoint_every": 1000, "sync_bn": True},
    }


def neurips_imagenet(method: str, multi_crop: bool = False) -> dict[str, Any]:
    views = {"teacher": {"size": 224, "scale": [0.2, 1.0]},
             "student": {"size": 224, "scale": [0.2, 1.0], "jitter": JITTER, "jitter_p": 0.8, "gray_p": 0.2,
                         "blur_p": 0.5}}
    if multi_crop:
        views["student_crops"] = MULTI_CROP_NEURIPS
    config = {
        "scale": "full",
        "method": {"name": method, "dim": 512, "hidden_dim": 4096, "head_bn": False, "predictor": False,
                   "memory": 131072, "tau_s": 0.1, "tau_t": 0.04, "tau_infonce": 0.2, "infonce_warmup_epochs": 0},
        "model": {"arch": "resnet50", "stem": "imagenet"},
        "data": imagenet_data(), "views": views,
        "optim": {"name": "sgd", "base_lr": 0.05, "lr_reference_batch": 256, "batch_size": 256,
                  "momentum": 0.9, "weight_decay": 1.0e-4, "exclude_bn_bias": True, "warmup_epochs": 5,
                  "epochs": 200},
        "ema": {"schedule": "constant", "base": 0.999},
        "train": {"seed": 0, "checkpoint_every": 1000},
    }
    if method == "ressl":
        config["method"].update(bn="shuffle", bn_splits=8)
    return config


def row(paper: str, table: str, method: str, variant: str | None = None, **selectors) -> dict[str, Any]:
    ref = {"paper": paper, "table": table, "method": method}
    if variant is not None:
        ref["variant"] = variant
    return {**ref, **selectors}


def _set(config: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        config = config.setdefault(key, {})
    config[leaf] = value


def runs() -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """name -> (config, published rows it reproduces); identical settings merged into one."""
    out: dict[str, tuple[dict, list]] = {}
    by_settings: dict[str, list] = {}  # canonical YAML of a config -> its reproduces list

    def add(name: str, config: dict, reproduces: list[dict], **settings) -> None:
        config = copy.deepcopy(config)
        for key, value in settings.items():
            _set(config, key.replace("__", "."), value)
        key = yaml.safe_dump(config, sort_keys=True)
        if key in by_settings:
            refs = by_settings[key]
            refs.extend(r for r in reproduces if r not in refs)
            return
        out[name] = (config, list(reproduces))
        by_settings[key] = out[name][1]

    for ds, d in SMALL.items():
        base = small_base("ressl", ds, 200)
        best = BEST_TAU_T[ds]
        for tau_s in (0.1, 0.2):
            for i in range(1, 11):
                tau_t = round(i / 100, 2)
                for pred, table, bn in ((True, "Table 1", "global"), (False, "Table 2", "shuffle")):
                    label = f"{'with' if pred else 'without'} predictor; tau_s={tau_s},tau_t={tau_t:.2f}"
                    add(f"ressl/{ds}_{'pred' if pred else 'nopred'}_taus{tau_s}_taut{tau_t}", base,
                        [row("ressl", table, "ReSSL", label, pretrain_data=d["name"])],
                        method__predictor=pred, method__head_bn=pred, method__bn=bn, method__tau_s=tau_s,
                        method__tau_t=tau_t)
        best_settings = dict(method__tau_t=best)
        add(f"ressl/{ds}_best", base, [row("ressl", "Table 3", "ReSSL", "without InfoNCE warm-up", pretrain_data=d["name"]),
                                       row("ressl", "Table 5", "ReSSL", "teacher aug=weak", pretrain_data=d["name"]),
                                       row("ressl", "Table 4", "ReSSL", "teacher aug=random resized crop + random flip",
                                           pretrain_data=d["name"]),
                                       row("ressl", "Table 6", "ReSSL", f"K={d['memory']}", pretrain_data=d["name"])],
            **best_settings)
        add(f"ressl/{ds}_infonce_warmup", base,
            [row("ressl", "Table 3", "ReSSL", "with InfoNCE warm-up", pretrain_data=d["name"])],
            method__infonce_warmup_epochs=10, **best_settings)
        add(f"ressl/{ds}_teacher_contrastive", base,
            [row("ressl", "Table 5", "ReSSL", "teacher aug=contrastive", pretrain_data=d["name"])],
            views__teacher={"size": d["size"], **STRONG}, **best_settings)
        for j, (variant, teacher) in enumerate(TABLE4.items(), start=1):
            add(f"ressl/{ds}_teacher_aug{j}", base, [row("ressl", "Table 4", "ReSSL", variant, pretrain_data=d["name"])],
                views__teacher={"size": d["size"], **teacher}, **best_settings)
        for k in (256, 512, 1024, 4096, 8192, 16384, 32768):
            add(f"ressl/{ds}_memory{k}", base, [row("ressl", "Table 6", "ReSSL", f"K={k}", pretrain_data=d["name"])],
                method__memory=k, **best_settings)

    # ImageNet, TPAMI recipe
    add("ressl/imagenet_r50_1crop", ressl_tpami("resnet50"),
        [row("ressl", "Table 7", "ReSSL", "1 crop; 1x backprop"), row("cgh", "Table 1", "ReSSL-pred", "1x backprop")])
    add("ressl/imagenet_r50_multicrop", ressl_tpami("resnet50", multi_crop=True),
        [row("ressl", "Table 8", "ReSSL", "multi-crop")])
    add("ressl/imagenet_r50_strong_aug", ressl_tpami("resnet50", multi_crop=True),
        [row("ressl", "Table 8", "ReSSL", "stronger augmentation")],
        views__student={"size": 224, **STRONG, "randaugment": 5, "randaugment_magnitude": 10},
        views__student_crops=MULTI_CROP_NEURIPS)
    add("ressl/imagenet_r50_2crops", ressl_tpami("resnet50"), [row("ressl", "Table 7", "ReSSL", "2 crops; 2x backprop")],
        method__symmetric=True)
    for arch, short, label in TABLE13_BACKBONES:
        add(f"ressl/imagenet_{short}_1crop", ressl_tpami(arch),
            [row("ressl", "Table 13", "ReSSL", "1 crop", backbone=label)])
        add(f"ressl/imagenet_{short}_2crops", ressl_tpami(arch),
            [row("ressl", "Table 13", "ReSSL", "2 crops", backbone=label)], method__symmetric=True)
        add(f"ressl/imagenet_{short}_multicrop", ressl_tpami(arch, multi_crop=True),
            [row("ressl", "Table 13", "ReSSL", "multi-crop", backbone=label),
             row("ressl", "Table 14", "ReSSL", "multi-crop", backbone=label)])
    # ImageNet, NeurIPS recipe (the '*' rows; CGH's ReSSL baseline)
    add("ressl/imagenet_r50_neurips", neurips_imagenet("ressl"),
        [row("ressl", "Table 7", "ReSSL", "1 crop; without predictor and InfoNCE warm-up (marked *); 1x backprop"),
         row("cgh", "Table 1", "ReSSL", "1x backprop"), row("cgh", "Table 3", "ReSSL"),
         row("cgh", "Table 4", "ReSSL", "Faster R-CNN R50-C4"), row("cgh", "Table 8", "ReSSL"),
         row("cgh", "Table 9", "ReSSL", "Mask R-CNN R50-C4; 1x schedule"), row("cgh", "Table 10", "ReSSL")])
    add("ressl/imagenet_r50_neurips_2crops", neurips_imagenet("ressl"),
        [row("ressl", "Table 7", "ReSSL", "2 crops; without predictor and InfoNCE warm-up (marked *); 2x backprop")],
        method__symmetric=True)
    add("ressl/imagenet_r50_neurips_multicrop", neurips_imagenet("ressl", multi_crop=True),
        [row("cgh", "Table 2", "ReSSL", "1x backprop; multi-crop"), row("cgh", "Table 3", "ReSSL", "multi-crop")])

    # CGH on Tiny-ImageNet / STL-10 (Tables 5-7)
    for ds in ("tinyimagenet", "stl10"):
        d = SMALL[ds]
        base = small_base("cgh", ds, 400)
        base["method"].update(predictor=False, head_bn=False, layers=[3, 4], tau_h=0.08, reduction="sum",
                              context="cross")
        base["method"].pop("bn")
        base["ema"]["base"] = 0.999
        sel = dict(pretrain_data=d["name"])
        add(f"cgh/{ds}_cross_context", base,
            [row("cgh", "Table 5", "CGH", "context=cross-context", **sel), row("cgh", "Table 7", "CGH", "layers=L3+L4", **sel)]
            + ([row("cgh", "Table 6", "CGH", "tau_h=0.08", **sel)] if ds == "tinyimagenet" else []))
        add(f"cgh/{ds}_same_context", base, [row("cgh", "Table 5", "CGH", "context=same-context", **sel)],
            method__context="same")
        add(f"cgh/{ds}_layers_L4", base,
            [row("cgh", "Table 5", "CGH", "context=global-context", **sel), row("cgh", "Table 7", "CGH", "layers=L4", **sel)],
            method__layers=[4])
        for layers, label in (([1, 4], "L1+L4"), ([2, 4], "L2+L4"), ([1, 2, 3, 4], "L1+L2+L3+L4")):
            add(f"cgh/{ds}_layers_{label.replace('+', '')}", base,
                [row("cgh", "Table 7", "CGH", f"layers={label}", **sel)], method__layers=layers)
        if ds == "tinyimagenet":
            for tau_h in (0.02, 0.04, 0.06, 0.1):
                add(f"cgh/{ds}_tau_h{tau_h}", base, [row("cgh", "Table 6", "CGH", f"tau_h={tau_h}", **sel)],
                    method__tau_h=tau_h)
    # CGH on ImageNet (Tables 1-4, 8-10)
    cgh = neurips_imagenet("cgh")
    cgh["method"].update(layers=[3, 4], tau_h=0.08, reduction="sum", context="cross")
    add("cgh/imagenet_r50", cgh, [
        row("cgh", "Table 1", "CGH", "1x backprop"), row("cgh", "Table 3", "CGH"),
        row("cgh", "Table 4", "CGH", "Faster R-CNN R50-C4"), row("cgh", "Table 8", "CGH"),
        row("cgh", "Table 8", "CGH", "hypercolumn as linear-classifier input"),
        row("cgh", "Table 9", "CGH", "Mask R-CNN R50-C4; 1x schedule"), row("cgh", "Table 10", "CGH")])
    add("cgh/imagenet_r50_pred", cgh, [row("cgh", "Table 1", "CGH-pred", "1x backprop")], method__predictor=True)
    multi = neurips_imagenet("cgh", multi_crop=True)
    multi["method"].update(layers=[3, 4], tau_h=0.08, reduction="sum", context="cross")
    add("cgh/imagenet_r50_multicrop", multi, [
        row("cgh", "Table 3", "CGH", "multi-crop"), row("cgh", "Table 4", "CGH", "multi-crop; Faster R-CNN R50-C4"),
        row("cgh", "Table 9", "CGH", "multi-crop; Mask R-CNN R50-C4; 1x schedule")])
    for epochs in (200, 400):
        multi = neurips_imagenet("cgh", multi_crop=True)
        multi["method"].update(layers=[3, 4], tau_h=0.08, reduction="sum", context="cross", predictor=True)
        add(f"cgh/imagenet_r50_pred_multicrop_{epochs}ep", multi,
            [row("cgh", "Table 2", "CGH-pred", "1x backprop; multi-crop", epochs=epochs)], optim__epochs=epochs)
    lewel_runs(add)
    return out


# ---------------------------------------------------------------------------------------------
# LEWEL (seed 001): ImageNet runs of Tables 1-4 (and 8-9) and the IN-100 ablations of Tables 5-7
# ---------------------------------------------------------------------------------------------

LEWEL_IN100_CLASSES = "data/imagenet100.txt"  # CMC's 100-class list (Tian et al.), supplied by the user


def lewel_base(base: str, epochs: int, in100: bool = False) -> dict[str, Any]:
    """LEWEL_M / LEWEL_B recipe (seed 001 Sec. 3.3; the gaps filled are listed in ``lewel_runs``)."""
    moco = base == "moco"
    data = imagenet_data()
    if in100:  # ablations (Sec. 3.3): IN-100, "double the initial learning rate", 240 epochs
        data.update(name="IN-100", reader_args={"classes": LEWEL_IN100_CLASSES})
    views = ({"default": {"size": 224, "scale": [0.2, 1.0], "jitter": JITTER, "jitter_p": 0.8, "gray_p": 0.2,
                          "blur_p": 0.5}} if moco else {"default": {"size": 224}})  # BYOL's views: byol.BYOL_VIEWS
    lr = (0.06 if moco else 1.8) * (2 if in100 else 1)
    return {
        "scale": "full",
        "method": {"name": "lewel", "base": base, "dim": 128 if moco else 256, "hidden_dim": 2048 if moco else 4096,
                   "groups": 4, "beta": 0.5, **({"tau": 0.2, "queue_size": 65536, "aligned_negatives": "same_k"}
                                                if moco else {}),
                   "bn": "shuffle" if moco else "eman", **({"bn_splits": 8} if moco else {}),
                   "projector_bn": "joint", "coupled": True, "extra_p": True, "maps": "learned"},
        "model": {"arch": "resnet50", "stem": "imagenet"},
        "data": data, "views": views,
        "optim": {"name": "sgd", "base_lr": lr, "lr_reference_batch": 256 if moco else 512,
                  "batch_size": 256 if moco else 512, "momentum": 0.9, "weight_decay": 1.0e-4 if moco else 1.0e-6,
                  "exclude_bn_bias": not moco, "warmup_epochs": 0 if moco else 10, "epochs": epochs},
        "ema": {"schedule": "constant", "base": 0.999} if moco else {"schedule": "cosine", "base": 0.98},
        "train": {"seed": 0, "checkpoint_every": 1000},
    }


def lewel_baseline(base: str, dim: int) -> dict[str, Any]:
    """The IN-100 MoCo v2 / BYOL baselines of Tables 5-7: the LEWEL recipe on the base method."""
    config = lewel_base(base, 240, in100=True)
    if base == "moco":
        config["method"] = {"name": "mocov2", "dim": dim, "hidden_dim": 2048, "queue_size": 65536, "tau": 0.2,
                            "bn": "shuffle", "bn_splits": 8}
    else:
        config["method"] = {"name": "byol", "dim": dim, "hidden_dim": 4096}
    return config


def lewel_runs(add) -> None:
    """LEWEL (seed 001) configs under pretrain/configs/lewel/.

    Seed facts: R50; g, p (and LEWEL_B's predictors q, s) Linear-BN-ReLU-Linear, 2048/128 (M) and
    4096/256 (B), c = d; β 0.5; LEWEL_M: SGD momentum 0.9, bs 256, lr 0.06, wd 1e-4, τ 0.2, m 0.999,
    ShuffleBN, MoCo v2 augmentation; LEWEL_B: SGD momentum 0.9 (the official code uses LARS at bs
    1024, lr 3.6: the seed wins), bs 512, lr 1.8, wd 1e-6 (0 on bias and BN), m 0.98 -> 1 cosine,
    EMA BN statistics (EMAN) at 100/200 epochs and SyncBN at 400, BYOL's augmentation (RRC scale
    0.08-1 as BYOL; the official code uses 0.2-1: the seed wins); cosine lr, AMP; 100/200/400
    epochs on IN-1K; ablations on IN-100 with twice the lr for 240 epochs.
    Gaps filled (method-level decisions are listed in pretrain/methods/lewel.py): queue 65536 and
    no lr warm-up for LEWEL_M (MoCo v2's); 10 warm-up epochs for LEWEL_B (official scripts);
    h = 4 for LEWEL_M (not stated; the official scripts' and LEWEL_B's value); the IN-100 class
    list is CMC's (``data/imagenet100.txt``, not shipped); the IN-100 MoCo v2 / BYOL baselines
    use the same doubled lr and 240 epochs (ASSUMED; "keep the rest unchanged"); the BYOL
    baseline runs without EMAN (the byol method has none).
    Ablations (Tables 5-6; ASSUMED readings, see lewel.py): "coupled head ✗" = the maps from a
    separate head (``coupled: false``); "global ✗" = β 1; "extra p_θ ✗" for LEWEL_M =
    ``extra_p: false`` (g projects the aligned representations); "rand. W" = ``maps: random``;
    MoCo v2 "extra p_θ ✓" = ``maps: uniform`` (a second head p on the GAP feature with its own
    in-batch InfoNCE). Table 5 row 1 (global only) is MoCo v2 itself (the seed: "the MoCov2
    baseline"; the same 79.5 / 61.6 as Table 6's MoCo v2 d=128).
    Not written: Fig. 3 (β and c sweeps; no published rows in evaluation/published/lewel.csv:
    ``method.beta=...`` / ``method.aligned_dim=...`` on ``lewel/in100_m``); the MoCo v2* / BYOL*
    IN-1K rows of Tables 1-4 (their rows share the selectors of the cited BYOL rows).
    """
    lw = "lewel"
    m_rows = {  # epochs -> rows of LEWEL_M trained for that long
        100: [row(lw, "Table 1", "LEWEL_M", epochs=100), row(lw, "Table 3", "LEWEL_M", "Faster R-CNN R50-C4", epochs=100),
              row(lw, "Table 3", "LEWEL_M", "dilated FCN (OS 8)", epochs=100)],
        200: [row(lw, "Table 1", "LEWEL_M", epochs=200), row(lw, "Table 2", "LEWEL_M", epochs=200),
              row(lw, "Table 3", "LEWEL_M", "Faster R-CNN R50-C4", epochs=200),
              row(lw, "Table 3", "LEWEL_M", "dilated FCN (OS 8)", epochs=200),
              row(lw, "Table 4", "LEWEL_M", "Mask R-CNN R50-C4; 1x schedule"),
              row(lw, "Table 4", "LEWEL_M", "Mask R-CNN R50-FPN; 1x schedule"),
              row(lw, "Table 8", "LEWEL_M"), row(lw, "Table 8", "LEWEL_M", "Mask R-CNN R50-FPN; 1x schedule"),
              row(lw, "Table 9", "LEWEL_M")],
    }
    b_rows = {
        100: [row(lw, "Table 1", "LEWEL_B", epochs=100), row(lw, "Table 3", "LEWEL_B", "Faster R-CNN R50-C4", epochs=100),
              row(lw, "Table 3", "LEWEL_B", "dilated FCN (OS 8)", epochs=100)],
        200: [row(lw, "Table 1", "LEWEL_B", epochs=200), row(lw, "Table 2", "LEWEL_B", epochs=200),
              row(lw, "Table 3", "LEWEL_B", "Faster R-CNN R50-C4", epochs=200),
              row(lw, "Table 3", "LEWEL_B", "dilated FCN (OS 8)", epochs=200),
              row(lw, "Table 4", "LEWEL_B", "Mask R-CNN R50-C4; 1x schedule"),
              row(lw, "Table 4", "LEWEL_B", "Mask R-CNN R50-FPN; 1x schedule", epochs=200),
              row(lw, "Table 8", "LEWEL_B", epochs=200),
              row(lw, "Table 8", "LEWEL_B", "Mask R-CNN R50-FPN; 1x schedule", epochs=200),
              row(lw, "Table 8", "LEWEL_B", "Mask R-CNN R50-FPN; 2x schedule", epochs=200), row(lw, "Table 9", "LEWEL_B")],
        400: [row(lw, "Table 1", "LEWEL_B", epochs=400), row(lw, "Table 2", "LEWEL_B", epochs=400),
              row(lw, "Table 4", "LEWEL_B", "Mask R-CNN R50-FPN; 1x schedule", epochs=400),
              row(lw, "Table 8", "LEWEL_B", epochs=400),
              row(lw, "Table 8", "LEWEL_B", "Mask R-CNN R50-FPN; 1x schedule", epochs=400),
              row(lw, "Table 8", "LEWEL_B", "Mask R-CNN R50-FPN; 2x schedule", epochs=400)],
    }
    for epochs, rows in m_rows.items():
        add(f"lewel/imagenet_m_{epochs}ep", lewel_base("moco", epochs), rows)
    for epochs, rows in b_rows.items():
        sync_bn = dict(method__bn="global", train__sync_bn=True) if epochs == 400 else {}  # seed: SyncBN at 400
        add(f"lewel/imagenet_b_{epochs}ep", lewel_base("byol", epochs), rows, **sync_bn)

    # IN-100 ablations, LEWEL_M (Tables 5-6)
    in100_m = lewel_base("moco", 240, in100=True)
    t5 = lambda g, a, c: row(lw, "Table 5", "LEWEL_M", f"global_loss={g},aligned_loss={a},coupled_head={c}")  # noqa: E731
    add("lewel/in100_m", in100_m, [t5("yes", "yes", "yes"), row(lw, "Table 6", "LEWEL_M", "extra_p_theta=yes,d=128")])
    add("lewel/in100_m_uncoupled", in100_m, [t5("yes", "yes", "no")], method__coupled=False)
    add("lewel/in100_m_uncoupled_aligned_only", in100_m, [t5("no", "yes", "no")], method__coupled=False,
        method__beta=1.0)
    add("lewel/in100_m_no_extra_p", in100_m, [row(lw, "Table 6", "LEWEL_M", "extra_p_theta=no,d=128")],
        method__extra_p=False)
    add("lewel/in100_m_random_maps", in100_m,
        [row(lw, "Table 6", "LEWEL_M", "random alignment map W; extra_p_theta=yes,d=128")], method__maps="random")
    add("lewel/in100_mocov2_extra_p", in100_m, [row(lw, "Table 6", "MoCov2", "extra_p_theta=yes,d=128")],
        method__maps="uniform")
    for d in (128, 256, 512):
        add(f"lewel/in100_mocov2_d{d}", lewel_baseline("moco", d),
            [row(lw, "Table 6", "MoCov2", f"extra_p_theta=no,d={d}")] + ([t5("yes", "no", "no")] if d == 128 else []))
    # IN-100 ablations, LEWEL_B (Table 7)
    in100_b = lewel_base("byol", 240, in100=True)
    for d, h in ((512, 4), (256, 1), (256, 2), (256, 4), (256, 8), (256, 16), (128, 4), (64, 4)):
        add(f"lewel/in100_b_d{d}_h{h}", in100_b, [row(lw, "Table 7", "LEWEL_B", f"d={d},h={h}")],
            method__dim=d, method__groups=h)
    add("lewel/in100_byol", lewel_baseline("byol", 256), [row(lw, "Table 7", "BYOL", "d=256,h=N/A")])


def render(name: str, config: dict[str, Any], reproduces: list[dict[str, Any]]) -> str:
    config = copy.deepcopy(config)
    config = {"name": name.replace("/", "_"), "scale": config.pop("scale"), "reproduces": reproduces, **config}
    config.setdefault("train", {})["out_dir"] = f"runs/{name}"
    header = (f"# {name}: generated by `python -m pretrain.make_configs` (edit that file, not this one).\n"
              f"# Facts, and the gaps filled where the seeds are silent: see pretrain/make_configs.py.\n")
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=None, width=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    parser.add_argument("--out", default=str(CONFIG_DIR), help="configs folder (default: pretrain/configs)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    files = {out / f"{name}.yaml": render(name, c, r) for name, (c, r) in runs().items()}
    folders = sorted({name.split("/")[0] for name in runs()})
    stale = [p for folder in folders for p in sorted((out / folder).glob("*.yaml")) if p not in files]
    differ = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in differ + stale:
            print(f"out of date: {p}")
        return 1 if differ or stale else 0
    for p in stale:
        p.unlink()
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    print(f"wrote {len(files)} configs under {out}/{{{','.join(folders)}}} ({len(differ)} changed, {len(stale)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
