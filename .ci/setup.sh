#!/usr/bin/env bash
# One-time set-up on a fresh machine: Python packages (CPU torch from the local wheel when present).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
  # torch 2.13.0 is the CPU build on this machine kind; a plain 'torch' would pull a 5 GB CUDA build.
  "$PY" -m pip install -q "torch==2.13.0" || "$PY" -m pip install -q "torch>=2.4,<2.14"
fi
"$PY" -m pip install -q -e ".[test,fast]"
# Mono compiles and runs the Unity package's Unity-free C# core in the tests (no .NET SDK needed).
if ! command -v mcs >/dev/null 2>&1 || ! command -v mono >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends mono-mcs mono-runtime >/dev/null
  else
    echo "note: Mono is missing and this user cannot apt-get it; the C# tests will skip (fail in CI)" >&2
  fi
fi
