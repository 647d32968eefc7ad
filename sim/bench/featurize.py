"""Why rounds are featurized in C a frame at a time: the featurizer's two paths over the
same simulated ticks (the bench's sessions, one frame a session a tick, their NPCs as the arena's), at
several sessions a tick, alternating in one process (medians of several rounds), and how many frames
the C declined.

    python -m sim.bench.featurize [--sessions 1,2,4,8,32,64,128,512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from types import ModuleType
from typing import Any

from tqdm import tqdm

from sidecar.engine.engine import Engine, EngineConfig
from sidecar.features import FrameInput
from sidecar.features import featurizer as fz
from sidecar.model.checkpoint import load_checkpoint
from sim.bench.sessions import SimulatedSessions

TICKS = 40


def _ticks(engine: Engine, sessions: int) -> list[list[FrameInput]]:
    sims = SimulatedSessions(engine, sessions, 1, tables=True)
    return [[frame for _, frame in sims.receive(1.0 + 0.2 * i)] for i in range(TICKS)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--sessions", default="1,2,4,8,32,64,128,512")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    if fz._KERNEL is None:
        raise SystemExit("the compiled featurizer is not built here (pip install -e . builds it with gcc)")
    kernel: ModuleType = fz._KERNEL
    declined = 0

    class _Counting:  # the kernel, counting the frames it declines
        @staticmethod
        def featurize_frame(*args: Any) -> Any:
            nonlocal declined
            got = kernel.featurize_frame(*args)
            declined += got is None
            return got

    def compiled(frames: list[FrameInput]) -> object:
        return fz._featurize_compiled(frames, _Counting())

    engine = Engine(load_checkpoint(None), EngineConfig(device="cpu"))
    paths = {"C a frame at a time": compiled, "array program": fz._featurize_by_width}
    batches = [int(x) for x in a.sessions.split(",")]
    header = ("sessions", "C us/tick", "arrays us/tick", "arrays/C", "C us/frame", "declined")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (8, 10, 15, 9, 11, 9), strict=True)))
    for b in tqdm(batches, desc="featurize", leave=False):
        ticks = _ticks(engine, b)
        times: dict[str, list[float]] = {name: [] for name in paths}
        declined = 0
        for _ in range(a.rounds):
            for name, path in paths.items():
                t = time.perf_counter()
                for frames in ticks:
                    path(frames)
                times[name].append((time.perf_counter() - t) / len(ticks) * 1e6)
        c, arrays = (sorted(times[n])[len(times[n]) // 2] for n in paths)
        tqdm.write(f"{b:>8} {c:>10.0f} {arrays:>15.0f} {arrays / c:>8.2f}x {c / b:>11.1f} {declined:>9}")


if __name__ == "__main__":
    main()
