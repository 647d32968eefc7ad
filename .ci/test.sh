#!/usr/bin/env bash
# The test command: generated code is fresh, lint and types are clean, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" proto/generate.py --check
"$PY" -m ruff check .
"$PY" -m mypy
"$PY" -m pytest -q -p no:cacheprovider "$@"
