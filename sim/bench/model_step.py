"""Why a CPU runner steps ticks of a few rows in C: the runner's whole step (gather, model, scatter,
predictions to numpy) with the C step (sidecar/engine/model_step.py) and with the TorchScript graph
alone, on the same synthetic plans (one player a row, six NPCs each), alternating in one process
(medians of several rounds), and the largest difference between their predictions.

    python -m sim.bench.model_step [--rows 1,2,3,4,6,8,16] [--rounds 5] [--repeats 200]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

import sidecar.engine.runner as runner_module
from sidecar.engine.model_step import compiled_step_available
from sidecar.engine.runner import COMPILED_UP_TO, Runner
from sidecar.model.checkpoint import load_checkpoint
from sim.bench.model import synthetic_plan, time_ticks


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1,2,3,4,6,8,16")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=200)
    a = ap.parse_args(argv)
    if not compiled_step_available():
        raise SystemExit("the compiled model step is not built here (pip install -e . builds it with gcc)")
    torch.set_num_threads(1)
    model = load_checkpoint(None).model
    rows = [int(x) for x in a.rows.split(",")]
    runners = {"C": Runner(model, "cpu", max(rows)), "TorchScript": Runner(model, "cpu", max(rows), compiled=False)}
    print(f"(a runner steps up to {COMPILED_UP_TO} rows in C; here the C runner is made to take every size)")
    header = ("rows", "C us/tick", "TorchScript us/tick", "TS/C", "max |diff|")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (5, 10, 20, 7, 11), strict=True)))
    runner_module.COMPILED_UP_TO = max(rows)  # time the C at every size, past where the runner would use it
    try:
        for b in tqdm(rows, desc="model step", leave=False):
            plan = synthetic_plan(b)
            times: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(a.rounds):
                for name, runner in runners.items():
                    runner.pool.zero_()
                    times[name].append(time_ticks(runner, plan, a.repeats) * 1e6)
            for runner in runners.values():
                runner.pool.zero_()
            c, ts = (runners[n].step(plan) for n in runners)
            diff = max(float(np.abs(getattr(c, f) - getattr(ts, f)).max()) for f in ("p_fail", "p_quit", "skill"))
            c_us, ts_us = (sorted(times[n])[len(times[n]) // 2] for n in runners)
            tqdm.write(f"{b:>5} {c_us:>10.0f} {ts_us:>20.0f} {ts_us / c_us:>6.2f}x {diff:>11.1e}")
    finally:
        runner_module.COMPILED_UP_TO = COMPILED_UP_TO


if __name__ == "__main__":
    main()
