#!/usr/bin/env bash
# Reduced-scale CIFAR-10 check of the pretraining methods (the reference records of results/runs;
# new records go to $SSL_REPRO_RESULTS/runs, by default results/local/runs):
# the first 500 images per class (5,000) of a CIFAR-10 ImageFolder (a folder or a .zip with
# train/ and test/), 32 px images cropped into 64 px views, ImageNet-stem ResNet-18, 800 steps
# (BYOL 1,200) of batch 128 from the smoke configs (+ the overrides below); then weighted kNN (k 200,
# T 0.1; 5,000 bank / 5,000 test images) and a linear classifier (ReSSL's small-dataset
# recipe on precomputed features), and the same evaluations of randomly initialised
# backbones (seeds 0-2). Every number is recorded at scale `reduced`: not a reproduction.
#
#   CIFAR_ZIP=../shared/data/cifar10-jpeg.zip bash docker/reduced_cifar10.sh
#   METHODS="ressl cgh" RANDOM_SEEDS="" bash docker/reduced_cifar10.sh
#   METHODS="" RANDOM_SEEDS="3 4" bash docker/reduced_cifar10.sh   # more random-init kNN baselines
#
# About 15-40 min per method on one CPU core (BYOL is the slowest: two forward+backward
# passes per step); pretraining resumes from its last checkpoint if interrupted.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
ZIP="${CIFAR_ZIP:-$ROOT/../shared/data/cifar10-jpeg.zip}"
[[ -e "$ZIP" ]] || { echo "reduced_cifar10.sh: CIFAR-10 ImageFolder not found: $ZIP (set CIFAR_ZIP)" >&2; exit 2; }
METHODS="${METHODS-mocov2 byol ressl cgh}"  # METHODS="" runs none (random init only)
RANDOM_SEEDS="${RANDOM_SEEDS-0 1 2}"
step() { printf '\n=== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

COMMON=(scale=reduced data.name=CIFAR-10 "data.root=$ZIP" data.image_size=32 data.reader_args.max_per_class=500
        monitor=null train.quiet=true)
declare -A EXTRA=(  # per-method overrides of the smoke config for 5,000 images
    [mocov2]="method.queue_size=2048"
    [ressl]="method.memory=2048"
    [cgh]="method.memory=2048"
    [byol]="optim.max_steps=1200"  # BYOL learns slowly without negatives: 400-step runs reached kNN 30-32
)
DATA=(--dataset imagefolder --data "$ZIP" --dataset-name CIFAR-10 --max-per-class 500 --test-split test)
KNN=(-k 200 -t 0.1 --image-size 64)
LINEAR=(--recipe ressl_small --load-size 64 --crop 64 --resize 64 --precompute)

for m in $METHODS; do
    out="runs/reduced/${m}_cifar10"
    step "pretrain $m -> $out"
    # shellcheck disable=SC2086
    "$PY" -m pretrain --config "pretrain/configs/${m}_smoke.yaml" --resume auto "name=${m}_reduced_cifar10" \
        "train.out_dir=$out" "${COMMON[@]}" ${EXTRA[$m]:-}
    step "kNN + linear: $m"
    "$PY" transfer/knn.py --ckpt "$out/backbone.pth" "${DATA[@]}" "${KNN[@]}" --scale reduced
    "$PY" transfer/linear.py --ckpt "$out/backbone.pth" "${DATA[@]}" "${LINEAR[@]}" --scale reduced
done
for seed in $RANDOM_SEEDS; do
    step "random init, seed $seed"
    R=(--random-init --arch resnet18 --stem imagenet --method random_init --seed "$seed")
    "$PY" transfer/knn.py "${R[@]}" "${DATA[@]}" "${KNN[@]}" --scale reduced
    if [[ "$seed" == 0 ]]; then
        "$PY" transfer/linear.py "${R[@]}" "${DATA[@]}" "${LINEAR[@]}" --scale reduced
    fi
done
step "collector"
"$PY" -m evaluation.collector
