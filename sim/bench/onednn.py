"""Why small CPU steps run with oneDNN off: the traced model step at several batch sizes (bench-model's
synthetic plans), with oneDNN on and off, alternating in one process (medians of several rounds), and
the largest difference between their outputs.

    python -m sim.bench.onednn [--batches 1,2,8,32,128,512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sidecar.engine.runner import Runner
from sidecar.model.checkpoint import load_checkpoint
from sim.bench.model import synthetic_plan


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--batches", default="1,2,8,32,128,512")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    runner = Runner(load_checkpoint(None).model, max_slots=4096)
    mkldnn = torch.backends.mkldnn
    print(f"{'rows':>6} {'oneDNN on us':>13} {'off us':>8} {'on/off':>7} {'max |diff|':>11}")
    for b in (int(x) for x in a.batches.split(",")):
        plan = synthetic_plan(b)  # bench-model's: six NPCs a player, each hinted
        reps = max(10, 1000 // b)
        times: dict[bool, list[float]] = {True: [], False: []}
        outs: dict[bool, tuple[np.ndarray, ...]] = {}
        was = bool(mkldnn.enabled)
        try:
            for _ in range(a.rounds):
                for flag in (True, False):
                    mkldnn.enabled = flag  # type: ignore[assignment]
                    runner.pool.zero_()
                    outs[flag] = runner._rows(plan, 0, b)  # the CPU step without its own oneDNN choice
                    t = time.perf_counter()
                    for _ in range(reps):
                        runner._rows(plan, 0, b)
                    times[flag].append((time.perf_counter() - t) / reps * 1e6)
        finally:
            mkldnn.enabled = was  # type: ignore[assignment]
        diff = max(float(np.abs(x - y).max()) for x, y in zip(outs[True], outs[False], strict=True) if x.size)
        on, off = (sorted(times[f])[len(times[f]) // 2] for f in (True, False))
        print(f"{b:>6} {on:>13.0f} {off:>8.0f} {on / off:>6.2f}x {diff:>11.1e}", flush=True)


if __name__ == "__main__":
    main()
