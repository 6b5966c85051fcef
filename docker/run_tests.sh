#!/usr/bin/env bash
# The test command: installs (cached) and runs the default pytest suite (slow tests
# excluded; `bash docker/run_tests.sh -m slow` runs them). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash docker/install.sh
exec "$ROOT/.venv/bin/python" -m pytest "$@"
