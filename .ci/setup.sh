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
# Debian packages the tests drive for real: Mono (the Unity package's C# core), Chromium (the live
# dashboard, through Playwright), Prometheus (scraping the sidecar) and Node (protobufjs).
need=()
command -v mcs >/dev/null 2>&1 && command -v mono >/dev/null 2>&1 || need+=(mono-mcs mono-runtime)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# Node and npm: protobufjs, the independent implementation the engine codecs are cross-checked against.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} missing and this user cannot apt-get them; their tests skip (and fail in CI)" >&2
  fi
fi
# Godot 4 (the addon's tests run the real engine): Debian sid's build in a private prefix, /tmp/godot4.
if ! command -v godot >/dev/null 2>&1 && [ ! -x /tmp/godot4/godot ]; then
  bash engine_plugins/godot/install-godot4.sh >/dev/null 2>&1 \
    || echo "note: Godot 4 could not be installed here (engine_plugins/godot/install-godot4.sh needs Debian's apt); its tests skip (and fail in CI)" >&2
fi
