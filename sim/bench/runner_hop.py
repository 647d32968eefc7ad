"""What the runner process costs a front end: the same step plans through Runner.step in-process and
through RemoteRunner.step (pickled arrays over a Unix socket to a runner process and back).

    python -m sim.bench.runner_hop [--batches 1,64,512] [--ticks 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import secrets
import tempfile
import time
from pathlib import Path

from sidecar.engine.engine import Engine, EngineConfig
from sidecar.engine.plan import StepPlan
from sidecar.engine.remote_runner import RemoteRunner, serve_runner
from sidecar.engine.runner import Runner
from sidecar.model.checkpoint import load_checkpoint
from sim.bench.sessions import SimulatedSessions

WARMUP = 5


def _plans(batch: int, ticks: int) -> tuple[Engine, list[StepPlan]]:
    engine = Engine(load_checkpoint(None), EngineConfig(device="cpu"))
    sims = SimulatedSessions(engine, batch, 1)
    plans = []
    t = 1.0
    for _ in range(ticks):
        t += 0.1
        engine.admit_now(sims.receive(t))
        plan = engine.scheduler.plan(1 << 20)
        assert plan is not None
        plans.append(plan)
    return engine, plans


def _per_step(runner: Runner | RemoteRunner, plans: list[StepPlan]) -> float:
    for p in plans[:WARMUP]:
        runner.step(p)
    t0 = time.perf_counter()
    for p in plans[WARMUP:]:
        runner.step(p)
    return (time.perf_counter() - t0) / (len(plans) - WARMUP)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None, allow_abbrev=False)
    ap.add_argument("--batches", default="1,64,512")
    ap.add_argument("--ticks", type=int, default=40)
    a = ap.parse_args()
    ctx = mp.get_context("spawn")
    for batch in (int(b) for b in a.batches.split(",")):
        engine, plans = _plans(batch, a.ticks)
        assert isinstance(engine.runner, Runner)
        local = _per_step(engine.runner, plans)
        with tempfile.TemporaryDirectory() as tmp:
            address, key, ready = str(Path(tmp) / "runner.sock"), secrets.token_bytes(16), ctx.Event()
            proc = ctx.Process(target=serve_runner, args=(address, key, None, EngineConfig(device="cpu"), 1, ready))
            proc.start()
            ready.wait(60)
            remote = RemoteRunner(address, key, 0)
            hop = _per_step(remote, plans)
            remote.close()
            proc.join(10)
        print(
            f"batch {batch:5d}: in-process {local * 1e3:7.3f} ms/step, via the runner process "
            f"{hop * 1e3:7.3f} ms/step, hop +{(hop - local) * 1e6:6.0f} us ({hop / local:.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
