#!/usr/bin/env bash
# The prepared GPU check, for a lent CUDA machine (e.g. the H200 through the device tool):
# the CUDA tests (graphs vs eager), then model-step timings, default and ~100M-parameter configs.
# Output goes to $OUT (or ./gpu-out). Sized to finish in a few minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')" | tee "$OUT/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv | tee -a "$OUT/env.txt"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_engine.py 2>&1 | tail -5 | tee "$OUT/gpu_tests.txt"
python3 -m sidecar.cli bench-model --device cuda --batches 1,64,1024,8192 --repeats 100 --json "$OUT/bench_default.json" 2>/dev/null | tee "$OUT/bench_default.txt"
python3 -m sidecar.cli bench-model --device cuda --config large --bf16 --batches 1,1024,5000,8192 --repeats 30 --json "$OUT/bench_large_bf16.json" 2>/dev/null | tee "$OUT/bench_large.txt"
# The engine's whole tick (featurize, plan, model, directors, guidance) for 1k/5k/8k sessions, both models.
python3 -m sidecar.cli bench-model --device cuda --whole-tick --batches 1000,5000,8192 --repeats 20 --json "$OUT/whole_tick_default.json" 2>/dev/null | tee "$OUT/whole_tick_default.txt"
python3 -m sidecar.cli bench-model --device cuda --whole-tick --config large --bf16 --batches 1000,5000,8192 --repeats 10 --json "$OUT/whole_tick_large.json" 2>/dev/null | tee "$OUT/whole_tick_large.txt"
# The served bench on the 16-core box: servers on cores 0-7, load on 8-15 (8 processes). A short
# sweep (each point is ~5 s with start-up): the peak is the figure wanted here.
timeout 240 python3 -m sidecar.cli bench --servers echo sidecar --seconds 2 --sweep 50,200,800 --server-cores 0 1 2 3 4 5 6 7 --load-processes 8 --sidecar-arg=--device=cuda --out "$OUT/bench" 2>/dev/null | tail -12 | tee "$OUT/bench.txt"
# The same with the multi-process front end: 7 front ends + the runner on the 8 server cores.
timeout 240 python3 -m sidecar.cli bench --servers sidecar --seconds 2 --sweep 50,200,800 --server-cores 0 1 2 3 4 5 6 7 --load-processes 8 --sidecar-arg=--device=cuda --sidecar-arg=--front-ends=7 --out "$OUT/bench_front_ends" 2>/dev/null | tail -12 | tee "$OUT/bench_front_ends.txt"
