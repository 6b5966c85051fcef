#!/usr/bin/env bash
# Idempotent installer: creates .venv in the repository root and installs the whole
# pinned stack (torch, torchvision, detectron2, mmengine/mmcv/mmsegmentation, ...)
# plus this project in editable mode. Wheels that have to be made locally are cached
# in ${SSL_REPRO_CACHE:-~/.cache/ssl-repro}/wheels, and a stamp file makes a second
# run return in seconds while pyproject.toml and this script are unchanged.
#
#   bash docker/install.sh            # install or verify
#   FORCE=1 bash docker/install.sh    # re-run every pip step
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CACHE="${SSL_REPRO_CACHE:-$HOME/.cache/ssl-repro}"
WHEELS="$CACHE/wheels"
PYTHON="${PYTHON:-python3}"
DETECTRON2_VERSION=0.7.2
MMCV_VERSION=2.1.0
mkdir -p "$WHEELS"

log() { printf '[install] %s\n' "$*" >&2; }
# This machine's pip config lists local index folders that lack most projects; pip warns
# once per missing project. Keep the log readable.
exec 2> >(grep --line-buffered -v "is ignored: it is neither a file nor a directory" >&2)

stamp_of() { cat "$ROOT/pyproject.toml" "$ROOT/docker/install.sh" | sha256sum | cut -d' ' -f1; }
STAMP="$VENV/.ssl-repro-installed"
if [[ -z "${FORCE:-}" && -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp_of)" ]]; then
    log "up to date: $VENV"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

log "step 1/4: build tools and torch/torchvision"
"${PIP[@]}" -q "setuptools>=77.0.3,<81" wheel
"${PIP[@]}" -q torch==2.14.1 torchvision==0.29.1

# detectron2 has no official PyPI release. sal-detectron2 redistributes upstream
# detectron2 as one CPython-3.10 wheel with a prebuilt CUDA-12 extension. We drop the
# extension (ROIAlign/NMS then come from torchvision; only rotated boxes and deformable
# conv need it, and no protocol here uses them) and the stray top-level `tools`
# package, relax its numpy<2 pin and retag it pure Python.
D2_WHEEL="$WHEELS/sal_detectron2-$DETECTRON2_VERSION-py3-none-any.whl"
if [[ ! -f "$D2_WHEEL" ]]; then
    log "step 2/4: repacking sal-detectron2 $DETECTRON2_VERSION"
    tmp="$(mktemp -d)"
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.10 \
        -d "$tmp/dl" "sal-detectron2==$DETECTRON2_VERSION"
    "$PY" -m wheel unpack -d "$tmp/u" "$tmp"/dl/sal_detectron2-*.whl >/dev/null
    src="$tmp/u/sal_detectron2-$DETECTRON2_VERSION"
    rm -f "$src"/detectron2/_C*.so
    rm -rf "$src/tools"
    info=("$src"/*.dist-info)
    sed -i -E 's/^Tag: .*/Tag: py3-none-any/; s/^Root-Is-Purelib: .*/Root-Is-Purelib: true/' "$info/WHEEL"
    sed -i '/^tools$/d' "$info/top_level.txt"
    sed -i -E 's/^Requires-Dist: numpy<2.*/Requires-Dist: numpy/' "$info/METADATA"
    mkdir -p "$tmp/out"
    "$PY" -m wheel pack -d "$tmp/out" "$src" >/dev/null
    mv "$tmp"/out/*.whl "$D2_WHEEL.part" && mv "$D2_WHEEL.part" "$D2_WHEEL"
    rm -rf "$tmp"
else
    log "step 2/4: detectron2 wheel cached ($D2_WHEEL)"
fi

# mmcv 2.1.0 (the newest release mmsegmentation 1.2.2 accepts) publishes no wheel for
# this Python/torch; its sdist hard-codes -std=c++14/17 while torch 2.14 headers need
# C++20. We build it once with its compiled ops (CPU; CUDA too when a GPU is visible)
# and cache the wheel. CFLAGS=-g0 drops the debug info that Python's own CFLAGS ask for
# (-g -O3): the optimisation level stays -O3, and each C++ file compiles about twice as
# fast (10-15 s instead of 22-33 s per file against the torch headers, measured on 2 cores).
MMCV_WHEEL="$(ls "$WHEELS"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$MMCV_WHEEL" ]]; then
    log "step 3/4: building mmcv $MMCV_VERSION with ops (once; 8 minutes on an idle 2-core machine)"
    tmp="$(mktemp -d)"
    "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$tmp" "mmcv==$MMCV_VERSION"
    tar -xzf "$tmp"/mmcv-$MMCV_VERSION.tar.gz -C "$tmp"
    sed -i 's/-std=c++1[47]/-std=c++20/g' "$tmp/mmcv-$MMCV_VERSION/setup.py"
    "${PIP[@]}" -q ninja
    CFLAGS="${CFLAGS:-} -g0" MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel -q --no-build-isolation \
        --no-deps -w "$tmp/out" "$tmp/mmcv-$MMCV_VERSION"
    f="$(ls "$tmp"/out/mmcv-*.whl)"
    mv "$f" "$WHEELS/$(basename "$f").part" && mv "$WHEELS/$(basename "$f").part" "$WHEELS/$(basename "$f")"
    rm -rf "$tmp"
else
    log "step 3/4: mmcv wheel cached ($MMCV_WHEEL)"
fi

log "step 4/4: pip install -e .[test]"
"${PIP[@]}" -q --find-links "$WHEELS" -e "$ROOT[test]"
"$PY" -m pip check >&2 || log "warning: pip check reported the conflicts above"
"$PY" - <<'PY'
import detectron2, mmcv, mmseg, mmengine, torch, torchvision, sklearn, pycocotools
import mmcv.ops  # noqa: F401  (compiled ops present)
print(f"[install] torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"detectron2 {detectron2.__version__}, mmcv {mmcv.__version__}, mmseg {mmseg.__version__}")
PY
stamp_of > "$STAMP"
log "done: activate with 'source $VENV/bin/activate'"
