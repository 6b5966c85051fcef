#!/usr/bin/env bash
# The reproduction driver, in three tiers (SCALE=smoke | reduced | full); each ends with the
# collector writing results/<paper>.csv, results/REPORT.md and results/scatter.png.
#
# SCALE=smoke (default): the whole pipeline at smoke scale on the suite's own generated data --
# install (cached) -> generate data -> pretrain every method that has a pretrain/configs/<m>_smoke.yaml
# (MoCo v2 first; one config per method: METHODS=all adds the other variants, LEWEL_B and
# Revisiting's ablations; two runs side by side, SMOKE_JOBS; the evaluations below take the free
# slots while the last pretrainings still run) -> kNN and linear evaluation of each and of
# randomly initialised backbones (kNN: 3 seeds) -> L-BFGS transfer, low-shot SVM, detectron2
# detection, mmseg segmentation, DAVIS and segment retrieval on the MoCo v2 backbone (pipeline
# checks) -> collector -> a summary table (results/local/smoke_summary.md and .csv: per method kNN,
# linear, random-init range, margin, PASS/FAIL, wall times; the wall time of every stage). A
# method whose kNN is not SMOKE_MARGIN (default 5) points above the best random-init seed is FAILED
# and the script exits 1.
#
#   bash docker/run_all.sh                 # smoke scale, generated data under data/synthetic
#   DATA_ROOT=/tmp/gen bash docker/run_all.sh
#   METHODS="mocov2 ressl" SMOKE_STEPS=2 bash docker/run_all.sh   # fewer methods / a plumbing check
#   METHODS=all bash docker/run_all.sh     # every smoke config: LEWEL_B and the ablation variants too
#   SMOKE_JOBS=1 OMP_NUM_THREADS=2 bash docker/run_all.sh   # one pretraining at a time, 2 threads
#   SMOKE_DATA_SEED=1 bash docker/run_all.sh   # the learning check on another draw of the data
#
# SCALE=reduced: docker/reduced_cifar10.sh (real CIFAR-10, first 500 images per class, 800
# pretraining steps, kNN + linear on precomputed features, random-init baselines; every number
# at scale `reduced`, with what was reduced in its protocol), by default for ReSSL and CGH --
# about an hour on 2 CPU cores. CIFAR_ZIP (default $DATA_ROOT/cifar10-jpeg.zip, DATA_ROOT
# default ../shared/data) is a CIFAR-10 ImageFolder (folder or .zip with train/ and test/).
#
#   SCALE=reduced bash docker/run_all.sh
#   SCALE=reduced METHODS="mocov2 byol ressl cgh" bash docker/run_all.sh   # ~2-3 h
#
# SCALE=full: the papers' protocols on the real datasets under DATA_ROOT (original layouts; see
# README "Full reproduction"), on a GPU node (torchrun) or a SLURM cluster (LAUNCH=slurm:
# pretraining through `python -m pretrain.submit`). One command per published table:
#
#   SCALE=full DATA_ROOT=/data TABLES="ressl:Table 1" GPUS=8 bash docker/run_all.sh
#   SCALE=full DATA_ROOT=/data TABLES=all LAUNCH=slurm NODES=2 PARTITION=gpu bash docker/run_all.sh
#   SCALE=full DATA_ROOT=/data TABLES=all DRY_RUN=1 bash docker/run_all.sh   # the plan, nothing run
#
# The steps of a table come from `python -m evaluation.plan` (the configs naming its rows and
# the evaluations those rows need). Every step logs to results/logs/full/<step>.log; a finished
# step is skipped (pretraining: its backbone.pth exists; evaluations: <step>.done), so re-running
# resumes; a step whose dataset is missing says which path it expected and is skipped, the rest
# continues; with LAUNCH=slurm a submitted pretraining is not resubmitted (remove its
# .submitted marker to do so) and its evaluations wait for its backbone.pth (run again later).
#
# Re-running the smoke tier continues where the last run stopped: a step that finished (marker
# under RUN_ROOT/steps/<step>/, default runs/smoke) with the same command and input checkpoint is
# skipped and appends no record again; an interrupted pretraining resumes from its checkpoint.
# Records of every tier go to RESULTS/runs (default results/local/runs, not committed), never to
# results/runs (the project's reference records); the collector reads both into RESULTS/REPORT.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SCALE="${SCALE:-smoke}"
DRY_RUN="${DRY_RUN:-0}"   # 1 (reduced, full): print what each step would do or why it is skipped
LOGS="${LOGS:-$ROOT/results/logs/$SCALE}"
# New records go to $RESULTS/runs (default results/local/, not committed): a user's run never
# rewrites results/runs, the project's own reference records; the collector reads both and writes
# its tables and report to $RESULTS. (The project's maintainers record reference numbers with
# RESULTS=results.)
RESULTS="${RESULTS:-$ROOT/results/local}"
export SSL_REPRO_RESULTS="$RESULTS"
step() { printf '\n=== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
FAILED=()
SKIPPED=()

install() {
    step "install (cached after the first run)"
    if [[ "$DRY_RUN" == 1 ]]; then echo "[would run] bash docker/install.sh"; else bash docker/install.sh; fi
    PY="${PY:-$ROOT/.venv/bin/python}"
}

# ------------------------------------------------------------- resumable steps (reduced, full)
# run_step NAME DONE_FILE NEEDS COMMAND: skip when DONE_FILE exists; skip with a message naming
# the path when one of NEEDS (comma-separated) is missing; otherwise run COMMAND (a shell
# string) with its output in $LOGS/NAME.log. A failed step is reported and the rest continues.
run_step() {
    local name="$1" done="$2" needs="$3" command="$4" log="$LOGS/$1.log" need
    if [[ -e "$done" ]]; then
        echo "[skip] $name: finished ($done exists)"; return 0
    fi
    if [[ -e "$LOGS/$name.submitted" ]]; then
        echo "[skip] $name: submitted, waiting for $done (remove $LOGS/$name.submitted to resubmit)"; return 0
    fi
    IFS=',' read -ra paths <<< "$needs"
    for need in "${paths[@]}"; do
        if [[ -n "$need" && ! -e "$need" ]]; then
            echo "[missing] $name: expected $need -- step skipped (a dataset: see README, \"Full reproduction\";" \
                 "a backbone.pth: its pretraining has not finished)" >&2
            SKIPPED+=("$name (missing $need)"); return 0
        fi
    done
    if [[ "$DRY_RUN" == 1 ]]; then
        echo "[would run] $name: $command"; return 0
    fi
    mkdir -p "$LOGS"
    step "$name (log: $log)"
    set +e
    bash -c "$command" 2>&1 | tee -a "$log"
    local status=${PIPESTATUS[0]}
    set -e
    if [[ $status -ne 0 ]]; then
        echo "[failed] $name (exit $status): see $log" >&2; FAILED+=("$name"); return 0
    fi
    if [[ "$done" == "$LOGS/$name.done" ]]; then
        date -u +%Y-%m-%dT%H:%M:%SZ > "$done"
    elif [[ ! -e "$done" && "${LAUNCH:-torchrun}" == slurm ]]; then
        date -u +%Y-%m-%dT%H:%M:%SZ > "$LOGS/$name.submitted"  # submitit returned: the job is queued
    fi
}

# run_plan: the tab-separated steps of `python -m evaluation.plan` on stdin, through run_step.
run_plan() {
    local name done needs command
    while IFS=$'\t' read -r name done needs command; do
        if [[ "$name" == \#* ]]; then echo "$name"; continue; fi
        run_step "$name" "$done" "$needs" "$command"
    done
}

summary() {
    echo
    [[ ${#SKIPPED[@]} -eq 0 ]] || printf 'skipped (missing data): %s\n' "${SKIPPED[@]}"
    [[ ${#FAILED[@]} -eq 0 ]] || { printf 'FAILED: %s\n' "${FAILED[@]}"; return 1; }
}

collector() {
    step "collect results -> $RESULTS/ (reads results/runs + $RESULTS/runs)"
    if [[ "$DRY_RUN" == 1 ]]; then echo "[would run] $PY -m evaluation.collector"; else "$PY" -m evaluation.collector; fi
}

# ------------------------------------------------------------------------------ tier: smoke
# smoke_methods [all]: one method per pretrain/configs/<m>_smoke.yaml (a new method joins the smoke
# tier with its config), MoCo v2 first (its backbone is the transfer checks' and PCD's teacher), then
# the others longest first (by optim.max_steps, then name: side-by-side slots then end close together;
# PCD, the shortest, waits for MoCo v2 last). Without `all`, one config per method: a method's other
# variants (SMOKE_VARIANTS: LEWEL_B beside LEWEL_M -- lewel.py on a BYOL base, and BYOL runs as its
# own method; Revisiting's plain / multi-crop / A+ / kNN-MoCo beside constrained multi-crop) are
# left out of the default run, so that it stays under 15 minutes on 2 cores (issue 15: LEWEL_B's
# 3,000 steps were 469 of 1,762 s of pretraining job time); METHODS=all runs them too.
SMOKE_VARIANTS="lewel_b revisiting_plain revisiting_multicrop revisiting_aplus revisiting_knn"
smoke_methods() {
    local f m n first=() rest=()
    for f in "$ROOT"/pretrain/configs/*_smoke.yaml; do
        m="$(basename "$f" _smoke.yaml)"
        if [[ "${1:-}" != all && " $SMOKE_VARIANTS " == *" $m "* ]]; then continue; fi
        n="$(awk '$1 == "max_steps:" { print $2; exit }' "$f")"
        if [[ "$m" == mocov2 ]]; then first=("$m"); else rest+=("${n:-0} $m"); fi
    done
    echo "${first[@]}" $(printf '%s\n' "${rest[@]}" | sort -k1,1nr -k2,2 | cut -d' ' -f2)
}

# this_run STEP STATUS: list a step of this invocation for the summary (evaluation.smoke_summary)
this_run() { printf '%s\t%s\n' "$1" "$2" >> "$STEPS/this_run.tsv"; }

# once NAME INPUT COMMAND...: a smoke step, run once. Its records go to $STEPS/NAME/runs and are
# merged into $RESULTS/runs when it has finished; then $STEPS/NAME/key (the command and INPUT's
# size and mtime) and $STEPS/NAME/wall_s are written. A finished step with the same key is
# skipped, so re-running run_all appends no duplicate records, while a changed command or a
# retrained checkpoint (INPUT) runs the step again. A failed step is reported (FAILED) and the
# rest continues; a step whose INPUT is missing is skipped with a message.
once() {
    local name="$1" input="$2" dir="$STEPS/$1" key t0 status; shift 2
    key="$*"
    if [[ -n "$input" ]]; then
        if [[ ! -e "$input" ]]; then
            echo "[missing] $name: $input does not exist (did its step fail?)" >&2
            this_run "$name" "missing input"; return 0
        fi
        key+=$'\n'"$(stat -c '%n %s %Y' "$input")"
    fi
    if [[ -e "$dir/wall_s" && "$(cat "$dir/key" 2>/dev/null)" == "$key" ]]; then
        echo "[skip] $name: finished by an earlier run ($(cat "$dir/wall_s") s); remove $dir to redo it"
        this_run "$name" skipped; return 0
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    step "$name"
    t0=$(date +%s)
    set +e
    SSL_REPRO_RESULTS="$dir" "$@"
    status=$?
    set -e
    if [[ $status -ne 0 ]]; then
        echo "[failed] $name (exit $status)" >&2; FAILED+=("$name"); this_run "$name" failed; return 0
    fi
    [[ ! -d "$dir/runs" ]] || "$PY" -m evaluation.records --merge "$dir/runs" --into "$RESULTS/runs"
    printf '%s\n' "$key" > "$dir/key"
    echo $(( $(date +%s) - t0 )) > "$dir/wall_s"
    this_run "$name" ran
}

# side_by_side COMMAND...: start COMMAND in the background once fewer than SMOKE_JOBS (default 2)
# started commands are running; `wait` collects them. (Independent pretrainings side by side: on
# 2 cores two one-thread runs use the CPU better than one two-thread run.)
side_by_side() {
    if (( ${SMOKE_JOBS:-1} <= 1 )); then "$@"; return; fi  # in the foreground (Ctrl-C stops it)
    while (( $(jobs -rp | wc -l) >= ${SMOKE_JOBS:-1} )); do wait -n || true; done
    "$@" &
    LAST_JOB=$!
}

# timed NAME COMMAND...: a step with its own cache (install, collector): always run, timed
timed() {
    local name="$1" t0; shift
    t0=$(date +%s)
    "$@"
    mkdir -p "$STEPS/$name"; echo $(( $(date +%s) - t0 )) > "$STEPS/$name/wall_s"
    this_run "$name" ran
}

# smoke_classify WHO: kNN and linear classification of a smoke method's backbone, or of a randomly
# initialised one (WHO = random<seed>; kNN for 3 seeds, linear for seed 0), side by side
smoke_classify() {
    local WHO="$1" IN B
    if [[ "$WHO" == random* ]]; then B=("${RANDOM_INIT[@]}" --seed "${WHO#random}"); IN=""
    else IN="$RUN_ROOT/$WHO/backbone.pth"; B=(--ckpt "$IN"); fi
    side_by_side once "knn-$WHO" "$IN" "$PY" transfer/knn.py "${B[@]}" "${SHAPES[@]}" --image-size "$SMOKE_SIZE" -k 20 -t 0.07 --scale smoke
    [[ "$WHO" == random[12] ]] || side_by_side once "linear-$WHO" "$IN" \
        "$PY" transfer/linear.py "${B[@]}" "${SHAPES[@]}" --smoke --precompute --epochs 100 \
        --crop "$SMOKE_SIZE" --resize "$SMOKE_SIZE"
}

tier_smoke() {
    # SMOKE_DATA_SEED (default 0): the generated data's seed; another seed gets its own data and
    # run folders (data/synthetic-seed<N>, runs/smoke-seed<N>), so cached steps never mix seeds
    SMOKE_DATA_SEED="${SMOKE_DATA_SEED:-0}"
    local suffix=""; [[ "$SMOKE_DATA_SEED" == 0 ]] || suffix="-seed$SMOKE_DATA_SEED"
    DATA_ROOT="${DATA_ROOT:-$ROOT/data/synthetic$suffix}"
    RUN_ROOT="${RUN_ROOT:-$ROOT/runs/$SCALE$suffix}"
    SMOKE_JOBS="${SMOKE_JOBS:-2}"  # pretrainings side by side (2 cores: two one-thread runs)
    STEPS="$RUN_ROOT/steps"
    START=$(date +%s)
    mkdir -p "$STEPS"; : > "$STEPS/this_run.tsv"

    timed install install

    [[ -d "$DATA_ROOT/imagefolder" ]] || rm -rf "$STEPS/data"
    once data "" "$PY" -m pretrain.data.synthetic --out "$DATA_ROOT" --seed "$SMOKE_DATA_SEED" --scale smoke

    METHODS="${METHODS:-$(smoke_methods)}"
    [[ "$METHODS" != all ]] || METHODS="$(smoke_methods all)"
    local M W WHO FIRST="" steps=()  # SMOKE_STEPS=N shortens every pretraining run (a plumbing check)
    [[ -n "${SMOKE_STEPS:-}" ]] && steps=(optim.max_steps="$SMOKE_STEPS")
    declare -A extra=(  # what a smoke config needs from this run (one line per method) ...
        [pcd]="method.teacher.checkpoint=$RUN_ROOT/mocov2/checkpoint.pth"  # PCD distils the MoCo v2 smoke run
    ) after=(  # ... and the pretraining that makes it
        [pcd]=mocov2
    ) job=()
    SHAPES=(--dataset imagefolder --data "$DATA_ROOT/imagefolder" --dataset-name synthetic-shapes --test-split val)
    # the smoke configs' backbone and input size, read from the first one (model.arch, data.image_size)
    read -r SMOKE_ARCH SMOKE_SIZE < <("$PY" -c 'import sys; from pretrain.config import load_config
c = load_config(sys.argv[1]); print(c["model"]["arch"], c["data"]["image_size"])' "pretrain/configs/${METHODS%% *}_smoke.yaml")
    RANDOM_INIT=(--random-init --arch "$SMOKE_ARCH" --stem imagenet --method random_init)
    # SMOKE_JOBS=2: two pretrainings side by side (one thread each unless OMP_NUM_THREADS is set)
    (( SMOKE_JOBS == 1 )) || export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    for M in $METHODS; do
        [[ -e "$RUN_ROOT/$M/backbone.pth" ]] || rm -rf "$STEPS/pretrain-$M"
        W="${after[$M]:-}"  # it needs that run's output: start it when that run is done
        [[ -z "$W" || -z "${job[$W]:-}" ]] || wait "${job[$W]}" || true
        LAST_JOB=""
        # shellcheck disable=SC2086
        side_by_side once "pretrain-$M" "pretrain/configs/${M}_smoke.yaml" "$PY" -m pretrain \
            --config "pretrain/configs/${M}_smoke.yaml" --resume auto data.root="$DATA_ROOT/imagefolder" \
            train.out_dir="$RUN_ROOT/$M" train.quiet=true ${extra[$M]:-} "${steps[@]}"
        job[$M]="$LAST_JOB"
    done
    # No barrier after the pretrainings: the evaluations below take the same SMOKE_JOBS slots
    # while the last pretrainings still run (random init and the transfer checks first, then each
    # method's kNN and linear once its own pretraining has ended); `wait` before the collector.
    for M in $METHODS; do  # the transfer checks' backbone: the first method's (MoCo v2), once it is done
        [[ -z "${job[$M]:-}" ]] || wait "${job[$M]}" || true
        if [[ -e "$RUN_ROOT/$M/backbone.pth" ]]; then FIRST="$RUN_ROOT/$M/backbone.pth"; break; fi
    done
    for WHO in random0 random1 random2; do smoke_classify "$WHO"; done

    # L-BFGS transfer, VOC07 low-shot SVM, detectron2 detection and mmseg segmentation: pipeline
    # checks on the first pretrained backbone (ImageNet stem)
    FIRST="${FIRST:-$RUN_ROOT/${METHODS%% *}/backbone.pth}"
    once data-transfer "" "$PY" -m pretrain.data.synthetic_transfer --out "$DATA_ROOT/transfer"
    side_by_side once lbfgs-dtd "$FIRST" "$PY" transfer/lbfgs_transfer.py --smoke --ckpt "$FIRST" --dataset dtd \
        --data "$DATA_ROOT/transfer/dtd" --image-size 64
    side_by_side once lowshot-voc07 "$FIRST" "$PY" transfer/lowshot_svm.py --smoke --ckpt "$FIRST" --data "$DATA_ROOT/VOCdevkit"
    side_by_side once det-coco "$FIRST" "$PY" transfer/coco_det.py --smoke --ckpt "$FIRST" --data "$DATA_ROOT/coco" --out "$RUN_ROOT/det/coco"
    side_by_side once det-voc "$FIRST" "$PY" transfer/voc_det.py --smoke --ckpt "$FIRST" --data "$DATA_ROOT/VOCdevkit" --out "$RUN_ROOT/det/voc"
    side_by_side once seg-voc "$FIRST" "$PY" transfer/voc_seg.py --smoke --ckpt "$FIRST" --data "$DATA_ROOT/VOCdevkit" \
        --work-dir "$RUN_ROOT/seg/voc"
    side_by_side once seg-cityscapes "$FIRST" "$PY" transfer/cityscapes_seg.py --smoke --ckpt "$FIRST" \
        --data "$DATA_ROOT/cityscapes" --work-dir "$RUN_ROOT/seg/cityscapes"
    # dense frozen features (Revisiting): DAVIS label propagation (the generated 192x108 frames
    # need --input-scale 1) and VOC segment retrieval (the generated VOC has no SBD: --bank train)
    side_by_side once davis "$FIRST" "$PY" transfer/davis.py --smoke --ckpt "$FIRST" --data "$DATA_ROOT/DAVIS" \
        --input-scale 1 --out "$RUN_ROOT/davis"
    side_by_side once retrieval-voc "$FIRST" "$PY" transfer/segment_retrieval.py --smoke --ckpt "$FIRST" \
        --data "$DATA_ROOT/VOCdevkit" --bank train --out "$RUN_ROOT/retrieval"
    # each method's kNN and linear, in the order the pretrainings end
    local pending=" $METHODS " launched
    while [[ -n "${pending// /}" ]]; do
        launched=0
        for M in $pending; do
            if [[ -z "${job[$M]:-}" ]] || ! kill -0 "${job[$M]}" 2>/dev/null; then
                smoke_classify "$M"; pending="${pending/ $M / }"; launched=1
            fi
        done
        (( launched )) || wait -n || true  # until some job (a pretraining or an evaluation) ends
    done
    wait

    timed collect collector
    echo "done in $(( $(date +%s) - START )) s; reference + your records: $RESULTS/REPORT.md" \
         "(smoke numbers are pipeline checks, not reproductions)"
    step "summary -> $RESULTS/smoke_summary.md"
    # shellcheck disable=SC2086
    "$PY" -m evaluation.smoke_summary --steps "$STEPS" --methods $METHODS --random-seeds 0 1 2 --out "$RESULTS"
}

# ---------------------------------------------------------------------------- tier: reduced
tier_reduced() {
    DATA_ROOT="${DATA_ROOT:-$ROOT/../shared/data}"
    local zip="${CIFAR_ZIP:-$DATA_ROOT/cifar10-jpeg.zip}" m
    install
    cat <<EOF
Reduced tier (scale 'reduced', NOT a reproduction): real CIFAR-10 ($zip), first 500 images per
class (5,000), 32 px images in 64 px views, ImageNet-stem ResNet-18 with the smoke configs'
recipes, 800 pretraining steps of batch 128 (BYOL 1,200); weighted kNN (k 200, T 0.1) and a
linear classifier on precomputed features (no augmentation); random-init baselines. Each record
says in its protocol what was reduced.
EOF
    for m in ${METHODS:-ressl cgh}; do
        run_step "reduced-cifar10-$m" "$LOGS/reduced-cifar10-$m.done" "$zip" \
            "CIFAR_ZIP=$(printf %q "$zip") METHODS=$m RANDOM_SEEDS= PY=$(printf %q "$PY") bash docker/reduced_cifar10.sh"
    done
    run_step "reduced-cifar10-random-init" "$LOGS/reduced-cifar10-random-init.done" "$zip" \
        "CIFAR_ZIP=$(printf %q "$zip") METHODS= RANDOM_SEEDS=${RANDOM_SEEDS-0} PY=$(printf %q "$PY") bash docker/reduced_cifar10.sh"
    collector
    summary
}

# ------------------------------------------------------------------------------- tier: full
tier_full() {
    DATA_ROOT="${DATA_ROOT:?SCALE=full needs DATA_ROOT: the real datasets in their original layouts (README, \"Full reproduction\")}"
    local table
    install
    [[ -n "${TABLES:-}" ]] || { echo "SCALE=full: say which tables: TABLES=\"ressl:Table 1;cgh:Table 4\" or TABLES=all" \
                                      "(python -m evaluation.plan --list)" >&2; exit 2; }
    IFS=';' read -ra wanted <<< "$TABLES"
    for table in "${wanted[@]}"; do
        step "table $table"
        if ! plan="$("$PY" -m evaluation.plan --table "$table" --data-root "$DATA_ROOT" --logs "$LOGS" \
                --run-root "${RUN_ROOT:-runs/full}" --launch "${LAUNCH:-torchrun}" --gpus "${GPUS:-8}" \
                --nodes "${NODES:-1}" --partition "${PARTITION:-}" --python "$PY")"; then
            echo "[failed] plan of $table" >&2; FAILED+=("plan of $table"); continue
        fi
        run_plan <<< "$plan"
    done
    collector
    summary
}

main() {
    case "$SCALE" in
        smoke) tier_smoke ;;
        reduced) tier_reduced ;;
        full) tier_full ;;
        *) echo "run_all.sh: SCALE must be smoke, reduced or full (got '$SCALE')" >&2; exit 2 ;;
    esac
}

# sourced (tests: `source docker/run_all.sh; run_step ...`): define the functions only
[[ "${BASH_SOURCE[0]}" != "$0" ]] || main
