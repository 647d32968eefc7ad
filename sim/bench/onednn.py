"""Why the CPU step runs with oneDNN off: the traced model step at several batch sizes, with oneDNN on
and off, alternating in one process (medians of several rounds), and the largest difference between
their outputs.

    python -m sim.bench.onednn [--batches 1,2,8,32,128,512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from sidecar.engine.runner import TRACE_LEVELS, Runner
from sidecar.model.checkpoint import load_checkpoint


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="1,2,8,32,128,512")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    runner = Runner(load_checkpoint(None).model, max_slots=4096)
    cfg = runner.model.cfg
    mkldnn = torch.backends.mkldnn
    print(f"{'rows':>6} {'oneDNN on us':>13} {'off us':>8} {'on/off':>7} {'max |diff|':>11}")
    for b in (int(x) for x in a.batches.split(",")):
        g = torch.Generator().manual_seed(0)
        args = (
            torch.arange(b),
            torch.randn(b, cfg.player_dim, generator=g),
            torch.randn(b, 4, cfg.npc_dim, generator=g),
            torch.ones(b, 4, dtype=torch.bool),
            torch.rand(b, TRACE_LEVELS, generator=g),
        )
        reps = max(10, 1000 // b)
        times: dict[bool, list[float]] = {True: [], False: []}
        outs: dict[bool, tuple[torch.Tensor, ...]] = {}
        was = bool(mkldnn.enabled)
        try:
            for _ in range(a.rounds):
                for flag in (True, False):
                    mkldnn.enabled = flag  # type: ignore[assignment]
                    runner.pool.zero_()
                    outs[flag] = runner._eager(*args)
                    t = time.perf_counter()
                    for _ in range(reps):
                        runner._eager(*args)
                    times[flag].append((time.perf_counter() - t) / reps * 1e6)
        finally:
            mkldnn.enabled = was  # type: ignore[assignment]
        diff = max(float((x - y).abs().max()) for x, y in zip(outs[True], outs[False], strict=True) if x.numel())
        on, off = (sorted(times[f])[len(times[f]) // 2] for f in (True, False))
        print(f"{b:>6} {on:>13.0f} {off:>8.0f} {on / off:>6.2f}x {diff:>11.1e}", flush=True)


if __name__ == "__main__":
    main()
