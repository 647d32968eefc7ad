"""Why a CPU runner steps ticks of up to 64 rows in C: the runner's whole step (gather, model, scatter,
predictions to numpy) with the C step (sidecar/engine/model_step.py: its AVX2 kernel and its baseline
one, where the CPU runs both) and with the TorchScript graph alone, on the same synthetic plans (one
player a row, six NPCs each, the scheduler's candidate levels), alternating in one process (medians of
several rounds), and the largest difference between their predictions.

    python -m sim.bench.model_step [--rows 1,2,4,8,16,32,64,128] [--rounds 5] [--repeats 100]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from sidecar.engine import _model_step
from sidecar.engine.model_step import compiled_step_available
from sidecar.engine.runner import Runner
from sidecar.model.checkpoint import load_checkpoint
from sim.bench.model import synthetic_plan, time_ticks


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--rows", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=100)
    a = ap.parse_args(argv)
    if not compiled_step_available():
        raise SystemExit("the compiled model step is not built here (pip install -e . builds it with gcc)")
    torch.set_num_threads(1)
    model = load_checkpoint(None).model
    rows = [int(x) for x in a.rows.split(",")]
    kernels = _model_step.kernels()  # the one in use first
    c, plain = Runner(model, "cpu", max(rows)), Runner(model, "cpu", max(rows), compiled=False)
    ways = [(f"C {k}", c, k) for k in kernels] + [("TorchScript", plain, None)]
    print(
        f"(a runner steps up to {c.compiled_up_to} rows in C with the {kernels[0]} kernel; here the C runner is made "
        "to take every size)"
    )
    header = ("rows", *(f"{name} us/tick" for name, _, _ in ways), f"TS/C {kernels[0]}", "max |diff|")
    print(" ".join(f"{h:>{max(len(h), 6)}}" for h in header))
    c.compiled_up_to = max(rows)  # time the C at every size, past where the runner would use it
    try:
        for b in tqdm(rows, desc="model step", leave=False):
            plan = synthetic_plan(b)
            times: dict[str, list[float]] = {name: [] for name, _, _ in ways}
            for _ in range(a.rounds):
                for name, runner, kernel in ways:
                    if kernel is not None:
                        _model_step.use_kernel(kernel)
                    runner.pool.zero_()
                    times[name].append(time_ticks(runner, plan, a.repeats) * 1e6)
            _model_step.use_kernel(kernels[0])
            for runner in (c, plain):
                runner.pool.zero_()
            fast, slow = c.step(plan), plain.step(plan)
            diff = max(float(np.abs(getattr(fast, f) - getattr(slow, f)).max()) for f in ("p_fail", "p_quit", "skill"))
            us = [sorted(times[name])[len(times[name]) // 2] for name, _, _ in ways]
            cells = [f"{b:>6}", *(f"{u:>{max(len(h), 6)}.0f}" for u, h in zip(us, header[1:], strict=False))]
            cells += [f"{us[-1] / us[0]:>{len(header[-2]) - 1}.2f}x", f"{diff:>10.1e}"]
            tqdm.write(" ".join(cells))
    finally:
        _model_step.use_kernel(kernels[0])


if __name__ == "__main__":
    main()
