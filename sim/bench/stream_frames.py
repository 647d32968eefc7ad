"""A stream's frames between model steps, in process: what the whole receive -> answer path costs per
frame through a stream handler (sidecar/serving/service.py), with the compiled lane and without it.

One in-process sidecar (no transport), one stream, one player sending real simulator frames at 60 Hz of
game time; the engine steps the model as it would served. The figure is the handler's thread CPU time
for the frames answered at once (between steps), median over thousands, the two ways alternating in
blocks so that the machine's drift falls on both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from sidecar.limits import Limits
from sidecar.serving.server import ServeConfig, Sidecar
from sidecar.serving.service import StreamHandler
from sidecar.wire.schema import pb
from sim.game import hello
from sim.loadgen import FrameStream

__all__ = ["between_frame_costs"]


async def _costs(frames: int, players: int, tables: bool) -> dict[str, float]:
    limits = Limits(max_frames_per_second=1e9, max_messages_per_second_per_connection=1e9)
    sidecar = Sidecar(ServeConfig(limits=limits, grpc_port=None, ws_port=None))
    await sidecar.engine.start()
    out: dict[bool, list[int]] = {True: [], False: []}
    try:
        handlers: dict[bool, StreamHandler] = {}
        streams: dict[bool, FrameStream] = {}
        sent: list[object] = []
        for lane in (True, False):
            admission = object()
            sidecar.ctx.admissions.admit(admission, f"bench-{lane}", time.monotonic())
            send_bytes: Callable[[bytes], None] | None = sent.append if lane else None
            h = StreamHandler(sidecar.ctx, "websocket", sent.append, sent.append, lambda: None, admission, send_bytes)
            h.on_bytes(pb.SessionRequest(hello=hello(tick_rate_hz=60.0)).SerializeToString())
            handlers[lane], streams[lane] = h, FrameStream(7, players, tables)
        sent_by = {True: 0, False: 0}  # each stream's frames so far: its game time at 60 Hz
        for i in range(frames):
            lane = (i // 200) % 2 == 0
            h = handlers[lane]
            sent_by[lane] += 1
            data = streams[lane].next(sent_by[lane] / 60.0)
            before = len(sent)
            c0 = time.thread_time_ns()
            h.on_bytes(data)
            c1 = time.thread_time_ns()
            if len(sent) > before and not h.pending and i % 200 >= 20:  # answered at once; warm
                out[lane].append(c1 - c0)
            while h.pending:
                await asyncio.sleep(0.0002)
    finally:
        await sidecar.engine.stop()
    return {
        "between_frame_stream_lane_us": float(np.median(out[True])) / 1e3,
        "between_frame_stream_python_us": float(np.median(out[False])) / 1e3,
    }


def between_frame_costs(frames: int = 4000, players: int = 1, tables: bool = True) -> dict[str, float]:
    """Median thread CPU (us) of a frame between model steps through a stream handler: with the compiled
    lane (`between_frame_stream_lane_us`) and on the Python path (`between_frame_stream_python_us`)."""
    return asyncio.run(_costs(frames, players, tables))
