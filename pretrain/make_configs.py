"""Write one YAML per published ReSSL / CGH / Revisiting pretraining run (and the MoCo v2 / BYOL
baselines) into pretrain/configs/{ressl,cgh,baselines,revisiting}/.

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
  The teacher's weak view keeps random resized crop (0.2, 1) + flip: Sec. 5.1 changes "the
  minimum crop area to 14%" for the contrastive (student) augmentation only and says "for weak
  augmentation, we follow the best setting in Table 4" (RRC (0.2, 1) + flip, Sec. 4.4).
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
  wd 1e-4, bs 256, memory 131072 (official code), 5 lr warm-up epochs (official code).
  Where the seed and the authors' code (zaczgao/Cross-Context_Learning@340bca9) differ, each is
  a config value (pretrain/methods/cgh.py lists them): the ImageNet configs follow the authors'
  ImageNet recipe -- the two cross-context terms weighted 0.5 each (``reduction: mean``; the
  seed's Eq. 6 sums them) and a 5-epoch InfoNCE warm-up on both contexts
  (``infonce_warmup_epochs: 5``, configs/cgh/imagenetcfg.py ``warm_up_loss``); the
  Tiny-ImageNet/STL-10 configs keep the seed's form (``reduction: sum``, no warm-up: the
  authors ship no config for these datasets and the seed keeps "the other hyper-parameters the
  same as ReSSL"). Both: shuffle-BN (the code's; also ReSSL's rule without predictor) with 8 BN
  groups on one process; hypercolumn maps resized bilinearly (the code's). CGH-pred: global BN
  (ReSSL's rule with a predictor; the code has no predictor). Table 5 "global-context" and
  Table 7 "L4" are one plain-ReSSL config under CGH's recipe (seed: "identical to ReSSL").
- Table 8 "stronger augmentation": the seed says only that it follows CLSA's augmentation
  setting [75] for 200 epochs, without numbers. The ReSSL authors' code defines it
  (KyleZheng1997/ReSSL@4d67daa data/augmentation.py, ``Multi_Transform(strong=True)``): 5
  student crops at 224/192/160/128/96 px, min area 0.08 for every crop, max area
  (1,.86,.715,.571,.429), colour jitter (0.8, 0.8, 0.8, 0.2) with p 0.8, grayscale 0.2, blur
  0.5, flip, then RandAugment(n 5, m 10) with FixMatch's 14-op pool (each op applied with
  probability 1/2, level uniform in 1..9); the teacher keeps the weak view. Used as written;
  everything else is the TPAMI multi-crop run.
- Tables 9-12 (transfer: L-BFGS linear on 9 datasets, ImageNet semi-supervised 1%/10%, VOC07
  low-shot SVM, COCO Mask R-CNN C4 2x) evaluate "ReSSL (Ours), 200 epochs" without naming which
  200-epoch ImageNet run; ASSUMED here: the strongest one, Table 8's "stronger augmentation" run
  (``ressl/imagenet_r50_strong_aug``), whose ``reproduces`` lists those rows.
- Not written: Table 4 rows 8-13 (see above).

Baselines (``baselines/``), the MoCo v2 and BYOL rows of the CGH and ReSSL tables:
- MoCo v2, ImageNet 200 epochs (Chen et al. 2020; official main_moco.py flags --mlp --aug-plus
  --cos --moco-t 0.2): SGD lr 0.03 x bs/256, bs 256, momentum 0.9, wd 1e-4 on every parameter, no
  warm-up, cosine (per step here; per epoch in the official code), queue 65536, dim 128, MLP
  hidden 2048, m 0.999 constant, shuffle-BN (8 GPUs x 32 images: ``bn_splits`` 8 on one
  process, one group per process under DDP), MoCo v2 augmentation (blur p 0.5).
- BYOL, ImageNet 200 epochs (the CGH rows are "cited from [9]", SimSiam's 200-epoch BYOL,
  whose settings no seed gives): BYOL's published recipe (Grill et al. 2020, Sec. 3.3 and
  App. C) at 200 epochs: LARS (eta 0.001; BN and biases excluded), lr 0.2 x bs/256, bs 4096,
  wd 1.5e-6, 10 warm-up epochs then cosine, EMA tau 0.996 -> 1 with a cosine schedule,
  projector/predictor 4096 -> 256 with BN, BYOL's asymmetric views, synchronised BN.

Revisiting (seed 004; section "Revisiting" below; method ``revisiting`` = MoCo v2 + options):
- Base (Sec. 3, App. A.1): R50, MoCo v2 head without BN (2048 -> 2048 -> 128), queue 65536,
  tau 0.2, m 0.999, SGD lr 0.3 at batch 256, cosine, wd 1e-4 (MoCo default, also the official
  scripts), 2 GPUs -> shuffle-BN (``bn_splits`` 2 on one process), 2 x 224 px crops scale
  (0.2, 1) with MoCo v2's augmentation; 400 epochs (Sec. 3), 200 (Sec. 4, Tables 4-8), 800
  (Table 9). Images keep their aspect ratio into the crop (``data.keep_aspect``); loaded with
  longer side 640 (COCO: the original size), 500 (ImageNet), 640 (OpenImages, BDD100K: downscaled).
- Multi-crop (Sec. 4.1, App. A.1): 2 x 160 px (0.2, 1) + N = 4 x 96 px (0.05, 0.14) (N: official
  code); m 0.999, lowered to 0.995 for the "m down" rows and for every multi-crop row of
  Table 9 (ASSUMED: the official "ours" scripts use 0.995; Table 9 prints no m column).
- Constrained: a small crop is redrawn while < 20% of its area overlaps the anchor crop (seed
  App. A.1; the code's 10% / 10 tries / unconstrained fallback is a config alternative).
- A+ (Sec. 4.2, App. A.1): the positive large crop and the small crops take flip + AutoAugment
  (torchvision ImageNet policy) or the default augmentation with probability 0.5 each (the
  seed's "randomly applying either"; the code's RandomChoice of the two, crops 0 and 2-5);
  the anchor keeps the default augmentation. "AutoAugment" alone (Table 7 text): probability 1.
- kNN-MoCo (Sec. 4.3, App. B): k 20, lambda 0.4, neighbours mined before the head, loss from
  epoch 5 (seed App. B; the code's 800-epoch script uses 20: the seed's value is kept for all),
  mean over positives (Alg. 2). Table 8 ablates k at lambda 0.4 and lambda at k 20 (the seed
  prints no k for the lambda rows; 20 is its default) on the Sec. 4.1 model (its lambda = 0 row).
- Datasets (Table 1, App. A.1): COCO train2017 (``kind: coco``); IN-118K (uniform), IN-118K-LT
  (Pareto alpha 6), OI-118K and the Table S1 2x/4x/8x subsets as image lists
  (``kind: imagelist``, ``reader_args.list``: files relative to the dataset root, one per line;
  the seed does not publish the lists: make them, or take the authors'); BDD100K
  ``images/100k/train``. Table S1 prints no epochs: ASSUMED 400 (the Sec. 3 setting).
- Not written: Table 4's "+MC +CC" row (m 0.999; its numbers were lost in the seed's
  conversion, so it reproduces no published value). Table 3 (transfer of the Table 2
  models; body lost) needs no extra config. NYUD rows (segmentation, depth) have no harness:
  not run.
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

FOLDERS = ("ressl", "cgh", "baselines", "revisiting", "pcd", "lewel")  # generated folders under pretrain/configs
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
# ReSSL Table 8 "stronger augmentation" (authors' code, Multi_Transform(strong=True)): every crop's
# min area 0.08, jitter (0.8, 0.8, 0.8, 0.2), RandAugment(5, 10) after the MoCo v2 pipeline
STRONGER = dict(STRONG, scale=[0.08, 1.0], jitter=[0.8, 0.8, 0.8, 0.2], randaugment=5, randaugment_magnitude=10)
MULTI_CROP_STRONGER = [dict(crop, scale=[0.08, crop["scale"][1]]) for crop in MULTI_CROP_NEURIPS]


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
    views = {"teacher": {"size": 224, "scale": [0.2, 1.0]}, "student": student}  # weak view: Table 4's best
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
    config["method"].update(bn="shuffle", bn_splits=8)
    return config


def cgh_imagenet(multi_crop: bool = False, predictor: bool = False) -> dict[str, Any]:
    config = neurips_imagenet("cgh", multi_crop=multi_crop)
    config["method"].update(layers=[3, 4], tau_h=0.08, context="cross", hyper_resize="bilinear",
                            reduction="mean", infonce_warmup_epochs=5)
    if predictor:
        config["method"].update(predictor=True, bn="global")
        config["method"].pop("bn_splits")
    return config


def mocov2_imagenet() -> dict[str, Any]:
    return {
        "scale": "full",
        "method": {"name": "mocov2", "dim": 128, "hidden_dim": 2048, "queue_size": 65536, "tau": 0.2,
                   "bn": "shuffle", "bn_splits": 8},
        "model": {"arch": "resnet50", "stem": "imagenet"},
        "data": imagenet_data(),
        "views": {"default": {"size": 224, "scale": [0.2, 1.0], "jitter": JITTER, "jitter_p": 0.8, "gray_p": 0.2,
                              "blur_p": 0.5}},
        "optim": {"name": "sgd", "base_lr": 0.03, "lr_reference_batch": 256, "batch_size": 256, "momentum": 0.9,
                  "weight_decay": 1.0e-4, "exclude_bn_bias": False, "warmup_epochs": 0, "epochs": 200},
        "ema": {"schedule": "constant", "base": 0.999},
        "train": {"seed": 0, "checkpoint_every": 1000},
    }


def byol_imagenet(epochs: int) -> dict[str, Any]:
    return {
        "scale": "full",
        "method": {"name": "byol", "dim": 256, "hidden_dim": 4096},
        "model": {"arch": "resnet50", "stem": "imagenet"},
        "data": imagenet_data(),
        "views": {"default": {"size": 224}},  # BYOL's view 1 / view 2 (pretrain.methods.byol.BYOL_VIEWS)
        "optim": {"name": "lars", "eta": 0.001, "base_lr": 0.2, "lr_reference_batch": 256, "batch_size": 4096,
                  "momentum": 0.9, "weight_decay": 1.5e-6, "exclude_bn_bias": True, "warmup_epochs": 10,
                  "epochs": epochs},
        "ema": {"schedule": "cosine", "base": 0.996},  # tau 0.996 -> 1 (BYOL Sec. 3.3)
        "train": {"seed": 0, "checkpoint_every": 1000, "sync_bn": True},
    }


REVISITING_DATA = {  # name -> data block (Table 1, Table S1)
    "coco": {"kind": "coco", "name": "COCO", "root": "data/coco", "split": "train2017", "image_size": 640},
    "in118k": {"kind": "imagelist", "name": "IN-118K", "root": "data/imagenet", "split": None, "image_size": 500,
               "reader_args": {"list": "data/lists/in118k.txt"}},
    "in118k_lt": {"kind": "imagelist", "name": "IN-118K-LT", "root": "data/imagenet", "split": None,
                  "image_size": 500, "reader_args": {"list": "data/lists/in118k_lt.txt"}},
    "oi118k": {"kind": "imagelist", "name": "OI-118K", "root": "data/openimages", "split": None, "image_size": 640,
               "reader_args": {"list": "data/lists/oi118k.txt"}},
    "bdd100k": {"kind": "imagelist", "name": "BDD100K", "root": "data/bdd100k", "split": "images/100k/train",
                "image_size": 640},
}
for _factor, _size in ((2, "236K"), (4, "472K"), (8, "944K")):
    REVISITING_DATA[f"in{_size.lower()}"] = {
        "kind": "imagelist", "name": f"ImageNet subset {_size}", "root": "data/imagenet", "split": None,
        "image_size": 500, "reader_args": {"list": f"data/lists/in{_size.lower()}.txt"}}
    REVISITING_DATA[f"oi{_size.lower()}"] = {
        "kind": "imagelist", "name": f"OpenImages subset {_size}", "root": "data/openimages", "split": None,
        "image_size": 640, "reader_args": {"list": f"data/lists/oi{_size.lower()}.txt"}}


def revisiting_base(data: str, epochs: int) -> dict[str, Any]:
    """MoCo v2 as Revisiting trains it (Sec. 3, App. A.1): 2 x 224 px crops."""
    return {
        "scale": "full",
        "method": {"name": "revisiting", "dim": 128, "hidden_dim": 2048, "queue_size": 65536, "tau": 0.2,
                   "bn": "shuffle", "bn_splits": 2, "small_crops": 0, "positives": "mean"},
        "model": {"arch": "resnet50", "stem": "imagenet"},
        "data": {**copy.deepcopy(REVISITING_DATA[data]), "keep_aspect": True, "workers": 16},
        "views": {"default": {"size": 224, "scale": [0.2, 1.0]}},
        "optim": {"name": "sgd", "base_lr": 0.3, "lr_reference_batch": 256, "batch_size": 256, "momentum": 0.9,
                  "weight_decay": 1.0e-4, "warmup_epochs": 0, "epochs": epochs},
        "ema": {"schedule": "constant", "base": 0.999},
        "train": {"seed": 0, "checkpoint_every": 2000},
    }


def revisiting_multicrop(epochs: int, constrained: bool = False, momentum: float = 0.999, aplus: float = 0.0,
                         knn: dict | None = None) -> dict[str, Any]:
    """Sec. 4: multi-crop (2 x 160 + 4 x 96), optionally constrained, m, A+ and kNN-MoCo."""
    config = revisiting_base("coco", epochs)
    config["method"]["small_crops"] = 4
    small: dict[str, Any] = {"size": 96, "scale": [0.05, 0.14]}
    if constrained:
        config["method"]["constrained"] = True
        small.update(min_overlap=0.2, overlap_tries=100, overlap_fallback="centred")
    config["views"] = {"default": {"size": 160, "scale": [0.2, 1.0]}, "small": small}
    if aplus:
        config["views"]["positive"] = {"autoaugment_p": aplus}
        small["autoaugment_p"] = aplus
    if knn is not None:
        config["method"]["knn"] = {"k": 20, "weight": 0.4, "start_epochs": 5, "mine": "backbone", **knn}
    config["ema"]["base"] = momentum
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
        [row("ressl", "Table 8", "ReSSL", "stronger augmentation"),  # and the transfer tables (ASSUMED)
         row("ressl", "Table 9", "ReSSL"), row("ressl", "Table 10", "ReSSL"),
         *[row("ressl", "Table 11", "ReSSL", f"k={k}") for k in (4, 8, 16, 32, 64, "full")],
         row("ressl", "Table 12", "ReSSL", "Mask R-CNN R50-C4; 2x schedule")],
        views__student={"size": 224, **STRONGER}, views__student_crops=MULTI_CROP_STRONGER)
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

    # CGH on Tiny-ImageNet / STL-10 (Tables 5-7): the seed's form (Eq. 6 summed, no warm-up)
    for ds in ("tinyimagenet", "stl10"):
        d = SMALL[ds]
        base = small_base("cgh", ds, 400)
        base["method"].update(predictor=False, head_bn=False, bn="shuffle", bn_splits=8, layers=[3, 4], tau_h=0.08,
                              reduction="sum", context="cross", hyper_resize="bilinear")
        base["ema"]["base"] = 0.999
        sel = dict(pretrain_data=d["name"])
        add(f"cgh/{ds}_cross_context", base,
            [row("cgh", "Table 5", "CGH", "context=cross-context", **sel), row("cgh", "Table 7", "CGH", "layers=L3+L4", **sel)]
            + ([row("cgh", "Table 6", "CGH", "tau_h=0.08", **sel)] if ds == "tinyimagenet" else []))
        add(f"cgh/{ds}_same_context", base, [row("cgh", "Table 5", "CGH", "context=same-context", **sel)],
            method__context="same")
        # "global-context is identical to ReSSL here" (Sec. 4.5.1) and so is the L4-only hypercolumn
        # (Sec. 4.5.3; both rows print 48.9 / 90.7): plain ReSSL under CGH's recipe
        ressl = small_base("ressl", ds, 400)
        ressl["method"].update(predictor=False, head_bn=False, bn="shuffle", bn_splits=8)
        ressl["ema"]["base"] = 0.999
        add(f"cgh/{ds}_global_context", ressl,
            [row("cgh", "Table 5", "CGH", "context=global-context", **sel), row("cgh", "Table 7", "CGH", "layers=L4", **sel)])
        for layers, label in (([1, 4], "L1+L4"), ([2, 4], "L2+L4"), ([1, 2, 3, 4], "L1+L2+L3+L4")):
            add(f"cgh/{ds}_layers_{label.replace('+', '')}", base,
                [row("cgh", "Table 7", "CGH", f"layers={label}", **sel)], method__layers=layers)
        if ds == "tinyimagenet":
            for tau_h in (0.02, 0.04, 0.06, 0.1):
                add(f"cgh/{ds}_tau_h{tau_h}", base, [row("cgh", "Table 6", "CGH", f"tau_h={tau_h}", **sel)],
                    method__tau_h=tau_h)
    # CGH on ImageNet (Tables 1-4, 8-10): the authors' ImageNet recipe (terms weighted 0.5 each,
    # 5-epoch InfoNCE warm-up on both contexts, shuffle-BN); CGH-pred with global BN (ReSSL's rule)
    add("cgh/imagenet_r50", cgh_imagenet(), [
        row("cgh", "Table 1", "CGH", "1x backprop"), row("cgh", "Table 3", "CGH"),
        row("cgh", "Table 4", "CGH", "Faster R-CNN R50-C4"), row("cgh", "Table 8", "CGH"),
        row("cgh", "Table 8", "CGH", "hypercolumn as linear-classifier input"),
        row("cgh", "Table 9", "CGH", "Mask R-CNN R50-C4; 1x schedule"), row("cgh", "Table 10", "CGH")])
    add("cgh/imagenet_r50_pred", cgh_imagenet(predictor=True), [row("cgh", "Table 1", "CGH-pred", "1x backprop")])
    add("cgh/imagenet_r50_multicrop", cgh_imagenet(multi_crop=True), [
        row("cgh", "Table 3", "CGH", "multi-crop"), row("cgh", "Table 4", "CGH", "multi-crop; Faster R-CNN R50-C4"),
        row("cgh", "Table 9", "CGH", "multi-crop; Mask R-CNN R50-C4; 1x schedule")])
    for epochs in (200, 400):
        add(f"cgh/imagenet_r50_pred_multicrop_{epochs}ep", cgh_imagenet(multi_crop=True, predictor=True),
            [row("cgh", "Table 2", "CGH-pred", "1x backprop; multi-crop", epochs=epochs)], optim__epochs=epochs)

    # Baselines: MoCo v2 and BYOL on ImageNet
    add("baselines/mocov2_imagenet_r50_200ep", mocov2_imagenet(), [
        row("cgh", "Table 1", "MoCo-v2", "1x backprop"), row("cgh", "Table 3", "MoCo-v2"),
        row("cgh", "Table 4", "MoCo-v2", "Faster R-CNN R50-C4"), row("cgh", "Table 8", "MoCo-v2"),
        row("cgh", "Table 9", "MoCo-v2", "Mask R-CNN R50-C4; 1x schedule"), row("cgh", "Table 10", "MoCo-v2"),
        row("ressl", "Table 7", "MoCo V2", "1x backprop"),
        *[row("ressl", "Table 11", "MoCo V2", f"k={k}") for k in (4, 8, 16, 32, 64, "full")]])
    add("baselines/byol_imagenet_r50_200ep", byol_imagenet(200), [
        row("cgh", "Table 1", "BYOL", "2x backprop"), row("cgh", "Table 4", "BYOL", "Faster R-CNN R50-C4"),
        row("cgh", "Table 9", "BYOL", "Mask R-CNN R50-C4; 1x schedule"), row("cgh", "Table 10", "BYOL", epochs=200)])
    # ------------------------------------------------------------------ Revisiting (seed 004)
    rv = "revisiting"
    # Sec. 3, Table 2 (+ Table S1 1x, BDD100K text), 400 epochs
    for data in ("in118k", "coco", "oi118k", "in118k_lt"):
        name = REVISITING_DATA[data]["name"]
        refs = [row(rv, "Table 2", "MoCo-v2", pretrain_data=name)]
        if data in ("in118k", "oi118k"):
            refs.append(row(rv, "Table S1", "MoCo-v2", "pretrain size=118K (1x)", pretrain_data=name))
        add(f"revisiting/{data}_mocov2_400ep", revisiting_base(data, 400), refs)
    add("revisiting/bdd100k_mocov2_400ep", revisiting_base("bdd100k", 400),
        [row(rv, "text", "MoCo-v2", "pretrained on BDD100K vs IN-118K", pretrain_data="BDD100K")])
    for factor, size in ((2, "236K"), (4, "472K"), (8, "944K")):
        for data, label in ((f"in{size.lower()}", "ImageNet"), (f"oi{size.lower()}", "OpenImages")):
            add(f"revisiting/{data}_mocov2_400ep", revisiting_base(data, 400),
                [row(rv, "Table S1", "MoCo-v2", f"pretrain size={size} ({factor}x)",
                     pretrain_data=f"{label} subset {size}")])
    # Sec. 4, Tables 4-8, COCO 200 epochs
    add("revisiting/coco_mocov2_200ep", revisiting_base("coco", 200), [
        row(rv, "Table 4", "MoCo", "baseline (no MC/CC/m↓/A+/NN)"), row(rv, "Table 5", "MoCo", pretrain_data="COCO"),
        row(rv, "Table 6", "MoCo", "7 classes"), row(rv, "Table 6", "MoCo", "21 classes")])
    add("revisiting/coco_mc_200ep", revisiting_multicrop(200), [
        row(rv, "Table 4", "MoCo", "+MC (Sec. 4.1)"), row(rv, "Table 5", "MoCo + MC", "multi-crop"),
        row(rv, "Table 6", "MoCo + MC", "7 classes; multi-crop"),
        row(rv, "Table 6", "MoCo + MC", "21 classes; multi-crop")])
    sec41 = revisiting_multicrop(200, constrained=True, momentum=0.995)
    add("revisiting/coco_mc_cc_mdown_200ep", sec41, [
        row(rv, "Table 4", "MoCo", "+MC +CC +m↓ (Sec. 4.1)"), row(rv, "Table 8", "kNN-MoCo", "lambda=0.0"),
        row(rv, "text", "MoCo", "+MC +CC +m↓; positive aug=standard")])
    add("revisiting/coco_mc_cc_mdown_autoaugment_200ep", revisiting_multicrop(200, True, 0.995, aplus=1.0),
        [row(rv, "text", "MoCo", "+MC +CC +m↓; positive aug=AutoAugment")])
    add("revisiting/coco_mc_cc_mdown_aplus_200ep", revisiting_multicrop(200, True, 0.995, aplus=0.5), [
        row(rv, "Table 4", "MoCo", "+MC +CC +m↓ +A+ (Sec. 4.2)"),
        row(rv, "text", "MoCo", "+MC +CC +m↓; positive aug=random choice of standard or AutoAugment")])
    add("revisiting/coco_mc_cc_mdown_aplus_knn_200ep", revisiting_multicrop(200, True, 0.995, aplus=0.5, knn={}),
        [row(rv, "Table 4", "MoCo", "+MC +CC +m↓ +A+ +NN (Sec. 4.3)")])
    for k in (1, 5, 10, 20, 50):
        refs = [row(rv, "Table 8", "kNN-MoCo", f"k={k},lambda=0.4")]
        if k == 20:
            refs += [row(rv, "Table 8", "kNN-MoCo", "lambda=0.4"),
                     row(rv, "text", "kNN-MoCo", "neighbors mined before projection head")]
        add(f"revisiting/coco_knn_k{k}_200ep", revisiting_multicrop(200, True, 0.995, knn={"k": k}), refs)
    for lam in (0.1, 0.2, 0.8):
        add(f"revisiting/coco_knn_lambda{lam}_200ep", revisiting_multicrop(200, True, 0.995, knn={"weight": lam}),
            [row(rv, "Table 8", "kNN-MoCo", f"lambda={lam}")])
    add("revisiting/coco_knn_mined_after_head_200ep", revisiting_multicrop(200, True, 0.995, knn={"mine": "head"}),
        [row(rv, "text", "kNN-MoCo", "neighbors mined after projection head")])
    # Table 9, COCO 800 epochs
    add("revisiting/coco_mocov2_800ep", revisiting_base("coco", 800), [row(rv, "Table 9", "MoCo")])
    add("revisiting/coco_cc_800ep", revisiting_multicrop(800, True, 0.995), [row(rv, "Table 9", "MoCo + CC")])
    add("revisiting/coco_cc_aplus_800ep", revisiting_multicrop(800, True, 0.995, aplus=0.5),
        [row(rv, "Table 9", "MoCo + CC + A+")])
    add("revisiting/coco_cc_aplus_knn_800ep", revisiting_multicrop(800, True, 0.995, aplus=0.5, knn={}),
        [row(rv, "Table 9", "MoCo + CC + A+ + kNN")])
    pcd_runs(add)
    lewel_runs(add)
    return out


# =================================================================================================
# PCD (seed 002) -- pretrain/configs/pcd/
# =================================================================================================
PCD_EVALS = ("", "Faster R-CNN C4; trainval07 9k iter", "Faster R-CNN C4; trainval07+12 24k iter",
             "Mask R-CNN C4; 1x schedule", "Mask R-CNN FPN; 1x schedule", "FCN-like (atrous head)")
PCD_ABLATION_EVALS = ("Faster R-CNN C4; trainval07+12 24k iter", "Mask R-CNN FPN; 1x schedule",
                      "FCN-like (atrous head)")
PCD_TEACHERS = {  # Table 5 label -> teacher block
    "moco_v3": dict(checkpoint="data/teachers/r-50-1000ep.pth.tar", branch="momentum", arch="resnet50",
                    hidden_dim=4096, dim=256),
    "swav": dict(checkpoint="data/teachers/swav_800ep_pretrain.pth.tar", branch="online", arch="resnet50",
                 hidden_dim=2048, dim=128),
    "byol": dict(checkpoint="data/teachers/byol_r50_1000ep.pth", branch="momentum", arch="resnet50",
                 hidden_dim=4096, dim=256),
    "barlow_twins": dict(checkpoint="data/teachers/barlowtwins_checkpoint.pth", branch="online", arch="resnet50",
                         hidden_dim=8192, dim=8192),
}


def pcd_rows(table: str, method: str, prefix: str = "", evals=PCD_EVALS, **selectors) -> list[dict[str, Any]]:
    """One reference per evaluation of a published PCD pretraining run (variant = prefix; evaluation)."""
    return [row("pcd", table, method, "; ".join(p for p in (prefix, e) if p) or None, **selectors) for e in evals]


def pcd_base(arch: str = "resnet18") -> dict[str, Any]:
    return {
        "scale": "full",
        "method": {"name": "pcd", "teacher": dict(PCD_TEACHERS["moco_v3"]), "adaptor": "cw_relu",
                   "drop_last_bn": True, "attention": "mhsa",
                   "mhsa": {"heads": 8, "head_dim": 64, "qkv_bias": True, "residual": False, "layer_norm": False},
                   "pred_hidden_dim": 1024, "student_relu": False, "level": "pixel", "symmetric": True,
                   "pairing": "same", "enqueue": "first", "queue_size": 65536, "tau": 0.2},
        "model": {"arch": arch, "stem": "imagenet"},
        "data": imagenet_data(),
        "views": {"default": {"size": 224}},  # BYOL's two distributions (pcd.py's default views)
        "optim": {"name": "lars", "base_lr": 1.0, "lr_reference_batch": 256, "batch_size": 1024, "momentum": 0.9,
                  "weight_decay": 1.0e-5, "exclude_bn_bias": True, "warmup_epochs": 10, "epochs": 100},
        "train": {"seed": 0, "checkpoint_every": 1000, "sync_bn": False},
    }


def pcd_runs(add) -> None:
    """PCD facts (seed 002, Sec. 3.2, 4.2-4.3) and the gaps filled, each a config value:

    - Distillation: ImageNet train, BYOL's two augmentation distributions (224 px), loss on each view
      averaged, LARS (eta 0.001 as the suite's LARS), bs 1024, lr 1.0 x bs/256 with 10 warm-up epochs then
      cosine to 0, wd 1e-5, momentum 0.9, biases and BN excluded from weight decay, tau 0.2, queue 65536,
      100 epochs. Teacher: MoCo v3 ResNet-50, 1000 epochs (official r-50-1000ep.pth.tar; its momentum
      encoder and projector FC-BN-ReLU-FC-BN 2048-4096-256, last BN dropped); student ResNet-18.
    - Pairing: student and teacher see the SAME view (seed Sec. 2: "from the *same* view of an image";
      the authors' released pcd/pcd.py pairs the student's view 1 with the teacher's view 2 --
      ``method.pairing: cross``). The seed wins. Enqueued: the pooled teacher map of the first view only
      (the seed is silent; the released code does so) -- ``method.enqueue: first``.
    - MHSA: 8 heads x 64, no positional encoding, 1x1 output projection (seed). NOT stated: qkv bias
      (true, nn.MultiheadAttention's default), residual (none) and LayerNorm (none): the seed passes
      "the output of the MHSA module" to the loss and names neither; the released code has no MHSA.
    - Table 4 "extra pred.": "an extra prediction head of roughly the same number of parameters" as the
      MHSA (256-d: 526k): Conv-BN-ReLU-Conv 256-1024-256 (527k).
    - Table 1 "PCD, asymmetric": one view per image from "the symmetric augmentation policy as per
      [21]"; ASSUMED: BYOL's augmentation with blur and solarize probabilities the mean of its two
      distributions (0.55, 0.1), i.e. the distribution of a view drawn from either at random.
    - Table 3: (a) the teacher head removed (target = the teacher's 2048-d C5 map, phi outputs 2048);
      (b) (a) + ReLU after the MHSA; (c) (a) without MHSA + ReLU after phi; (d) CW-ReLU replaced by ReLU.
    - Table 5 teachers (official checkpoints; phi follows each teacher's head, as the released code's
      build_student_mlp): SwAV 800 ep (projection head 2048-2048-128 with biases, prototypes dropped),
      BYOL (projector 2048-4096-256; the PyTorch layout the released code reads), Barlow Twins (projector
      8192-8192-8192, queue of 8192-d keys). Epochs of the BYOL / Barlow Twins teachers: their released
      1000-epoch checkpoints (NOT stated in the seed; its appendix is not part of the seed text).
      The ViT-Base MoCo v3 teacher rows are NOT written (no ViT teacher is implemented).
    - Table 6 students: ResNet-34, ResNet-50 and torchvision's MobileNet-V3-Large (its 960-channel
      ``features`` map); the epochs are not printed for Table 6 -- 100 used, as everywhere else.
    - Table 1 MoCo v2 ResNet-18 (the authors' 100-epoch reproduction with MoCo's official code): MoCo v2's
      ImageNet recipe (SGD lr 0.03 x bs/256, bs 256, wd 1e-4, tau 0.2, K 65536, m 0.999, cosine, head
      hidden = the 512-d feature as in the official code), 100 epochs. The other Table 1 baselines
      (PixPro, CompRes, DisCo, BINGO, supervised) are not methods of this suite.
    - BN: the released code trains with DDP and per-GPU BN (no SyncBN) -- ``train.sync_bn: false``.
    - Downstream: C4 and FCN fine-tuning apply NormRescale x 0.25 (Sec. 4.1); the exported backbone's
      ``method: pcd`` tells the harnesses.
    """
    base = pcd_base()
    add("pcd/imagenet_r18", base,
        pcd_rows("Table 1", "PCD", epochs=100)
        + pcd_rows("Table 2", "PCD", "distillation=pixel-level", PCD_ABLATION_EVALS)
        + pcd_rows("Table 3", "PCD", "SpatialAdaptor (ours)", PCD_ABLATION_EVALS)
        + pcd_rows("Table 4", "PCD", "MHSA (ours)", PCD_ABLATION_EVALS))
    add("pcd/imagenet_r18_asymmetric", base, pcd_rows("Table 1", "PCD", "asymmetric loss", epochs=100),
        method__symmetric=False, views__view1={"blur_p": 0.55, "solarize_p": 0.1})
    add("pcd/imagenet_r18_image_level", base, pcd_rows("Table 2", "PCD", "distillation=image-level",
                                                       PCD_ABLATION_EVALS), method__level="image")
    for variant, settings in (("a", dict(method__adaptor="none")),
                              ("b", dict(method__adaptor="none", method__student_relu=True)),
                              ("c", dict(method__adaptor="none", method__attention="none", method__student_relu=True)),
                              ("d", dict(method__adaptor="relu"))):
        add(f"pcd/imagenet_r18_variant_{variant}", base,
            pcd_rows("Table 3", "PCD", f"SpatialAdaptor variant ({variant})", PCD_ABLATION_EVALS), **settings)
    add("pcd/imagenet_r18_no_mhsa", base, pcd_rows("Table 4", "PCD", "w/o MHSA", PCD_ABLATION_EVALS),
        method__attention="none")
    add("pcd/imagenet_r18_extra_pred", base, pcd_rows("Table 4", "PCD", "extra pred.", PCD_ABLATION_EVALS),
        method__attention="pred")
    for key, label in (("swav", "SwAV"), ("byol", "BYOL"), ("barlow_twins", "Barlow Twins")):
        add(f"pcd/imagenet_r18_teacher_{key}", base,
            pcd_rows("Table 5", "PCD", f"teacher=ResNet-50 {label}", PCD_EVALS[1:]),
            method__teacher=dict(PCD_TEACHERS[key]))
    for arch, label in (("resnet34", "ResNet-34"), ("resnet50", "ResNet-50"),
                        ("mobilenet_v3_large", "MobileNet v3 (Large)")):
        add(f"pcd/imagenet_{arch.replace('resnet', 'r')}", pcd_base(arch),
            pcd_rows("Table 6", "PCD", "", PCD_EVALS[1:], backbone=label))
    mocov2 = {
        "scale": "full",
        "method": {"name": "mocov2", "dim": 128, "hidden_dim": 512, "queue_size": 65536, "tau": 0.2, "bn": "shuffle",
                   "bn_splits": 8},
        "model": {"arch": "resnet18", "stem": "imagenet"}, "data": imagenet_data(),
        "views": {"default": {"size": 224, "scale": [0.2, 1.0], "jitter": JITTER, "jitter_p": 0.8, "gray_p": 0.2,
                              "blur_p": 0.5}},
        "optim": {"name": "sgd", "base_lr": 0.03, "lr_reference_batch": 256, "batch_size": 256, "momentum": 0.9,
                  "weight_decay": 1.0e-4, "warmup_epochs": 0, "epochs": 100},
        "ema": {"schedule": "constant", "base": 0.999},
        "train": {"seed": 0, "checkpoint_every": 1000},
    }
    add("pcd/imagenet_r18_mocov2", mocov2, pcd_rows("Table 1", "MoCo v2", epochs=100))


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
    def tables_1_3(method: str, epochs: int) -> list[dict[str, Any]]:  # Table 1 and both Table 3 rows
        return [row(lw, "Table 1", method, epochs=epochs), row(lw, "Table 3", method, "Faster R-CNN R50-C4", epochs=epochs),
                row(lw, "Table 3", method, "dilated FCN (OS 8)", epochs=epochs)]

    m_rows = {  # epochs -> rows of LEWEL_M trained for that long
        100: tables_1_3("LEWEL_M", 100),
        200: [row(lw, "Table 1", "LEWEL_M", epochs=200), row(lw, "Table 2", "LEWEL_M", epochs=200),
              row(lw, "Table 3", "LEWEL_M", "Faster R-CNN R50-C4", epochs=200),
              row(lw, "Table 3", "LEWEL_M", "dilated FCN (OS 8)", epochs=200),
              row(lw, "Table 4", "LEWEL_M", "Mask R-CNN R50-C4; 1x schedule"),
              row(lw, "Table 4", "LEWEL_M", "Mask R-CNN R50-FPN; 1x schedule"),
              row(lw, "Table 8", "LEWEL_M"), row(lw, "Table 8", "LEWEL_M", "Mask R-CNN R50-FPN; 1x schedule"),
              row(lw, "Table 9", "LEWEL_M")],
    }
    b_rows = {
        100: tables_1_3("LEWEL_B", 100),
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
    stale = [p for folder in FOLDERS for p in sorted((out / folder).glob("*.yaml")) if p not in files]
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
    print(f"wrote {len(files)} configs under {out}/{{{','.join(FOLDERS)}}} ({len(differ)} changed, {len(stale)} removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
