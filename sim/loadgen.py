"""A load generator: N sessions at R Hz (or closed-loop, as fast as answered) over gRPC or WebSocket.

It runs in worker processes of its own so the server under test never shares a core's GIL with its
load. Frames are real simulator frames serialised once; per message only the sequence and game time
are encoded (protobuf lets a field come after the others), so a worker sends tens of thousands of
frames a second. Latency is measured at the client: frame sent -> its guidance received.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from websockets.asyncio.client import connect

from sidecar.serving import event_loop
from sidecar.wire.frames import to_tables
from sidecar.wire.schema import pb
from sim.game import Action, Game, hello

SESSION_METHOD = "/metabrain.v1.BrainService/Session"


@dataclass(frozen=True)
class LoadSpec:
    target: str  # host:port for gRPC, ws://host:port/path for WebSocket
    transport: str = "grpc"
    sessions: int = 10
    rate_hz: float = 60.0  # per session; 0 = closed loop (next frame when the last is answered)
    duration_s: float = 5.0
    warmup_s: float = 1.0
    players_per_frame: int = 1
    tables: bool = True  # frames in the table form (what the engine plugins send), else rows
    processes: int = 1
    token: str = ""
    policy: str = ""
    seed: int = 0
    cores: tuple[int, ...] = ()  # pin the workers here (keep them off the server's cores)


@dataclass
class LoadResult:
    spec: LoadSpec
    sent: int = 0
    guidance: int = 0
    superseded: int = 0
    errors: int = 0
    measured_s: float = 0.0
    latencies_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    error_messages: list[str] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)  # the measured window, in time.perf_counter() seconds

    @property
    def frames_per_s(self) -> float:
        """Frames answered per second (guidance or superseded) in the measured window."""
        return (self.guidance + self.superseded) / self.measured_s if self.measured_s else 0.0

    @property
    def player_frames_per_s(self) -> float:
        return self.frames_per_s * self.spec.players_per_frame

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "transport": self.spec.transport,
            "sessions": self.spec.sessions,
            "rate_hz": self.spec.rate_hz,
            "players_per_frame": self.spec.players_per_frame,
            "frame_form": "tables" if self.spec.tables else "rows",
            "sent": self.sent,
            "guidance": self.guidance,
            "superseded": self.superseded,
            "errors": self.errors,
            "frames_per_s": round(self.frames_per_s, 1),
            "player_frames_per_s": round(self.player_frames_per_s, 1),
            "p50_ms": round(self.percentile(50), 3),
            "p99_ms": round(self.percentile(99), 3),
            "p999_ms": round(self.percentile(99.9), 3),
        }


def varint(n: int) -> bytes:
    """Protobuf's base-128 varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class FrameStream:
    """Envelope bytes of one session's frames: the body is encoded once, the sequence per message."""

    def __init__(self, seed: int, players: int = 1, tables: bool = True) -> None:
        """`tables`: frames in the table form, as the engine plugins send them; else the row form."""
        g = Game(seed)
        frame = pb.Frame()
        for _ in range(60):  # play a second at a time until a fight is on: three or more NPCs about
            for _ in range(30):
                t = g.nearest_npc()
                g.step(Action(move_x=0.5, aim_at=t.npc_id if t else -1, shoot=True, hit_chance=0.4))
            frame = g.frame(1.0)  # its events are the last second's
            if len(frame.npcs) >= 3:
                break
        base, squad = frame.players[0], list(frame.npcs)
        for i in range(1, players):  # a multiplayer server: more players, each fighting its own squad
            p = frame.players.add()
            p.CopyFrom(base)
            p.player_id = f"{base.player_id}-{i}"
            p.position.x += 100.0 * i  # far enough apart that each sees only its own squad
            for n in squad:
                m = frame.npcs.add()
                m.CopyFrom(n)
                m.npc_id += 1000 * i
                m.position.x += 100.0 * i
                m.target_player_id = p.player_id
        if tables:
            frame = to_tables(frame, [k.name for k in hello().knobs])
        frame.ClearField("sequence")
        frame.ClearField("game_time")
        self.body = frame.SerializeToString()
        self.seq = 0

    def next(self, game_time: float) -> bytes:
        self.seq += 1
        inner = b"\x08" + varint(self.seq) + b"\x11" + struct.pack("<d", game_time) + self.body
        return b"\x12" + varint(len(inner)) + inner


class _Session:
    def __init__(self, spec: LoadSpec, index: int, stats: _Stats) -> None:
        self.spec = spec
        self.frames = FrameStream(spec.seed * 100_003 + index, spec.players_per_frame, spec.tables)
        self.sent_at: dict[int, float] = {}
        self.stats = stats
        self.answered = asyncio.Event()
        self.offset = index / max(spec.sessions, 1)  # stagger sessions across one frame period

    def hello_bytes(self) -> bytes:
        return pb.SessionRequest(
            hello=hello(policy=self.spec.policy, tick_rate_hz=self.spec.rate_hz or 60.0)
        ).SerializeToString()

    def frame_bytes(self, now: float, t0: float) -> bytes:
        data = self.frames.next(now - t0)
        self.sent_at[self.frames.seq] = now
        self.stats.count("sent", now)
        return data

    def on_response(self, data: bytes) -> None:
        now = time.perf_counter()
        resp = pb.SessionResponse.FromString(data)
        kind = resp.WhichOneof("kind")
        if kind == "guidance":
            sent = self.sent_at.pop(resp.guidance.sequence, None)
            if sent is not None:
                self.stats.count("guidance", sent, now)
            self.answered.set()
        elif kind == "superseded":
            self.sent_at.pop(resp.superseded.sequence, None)
            self.stats.count("superseded", now)
        elif kind == "error":
            self.stats.count("errors", now)
            if len(self.stats.error_messages) < 5:
                self.stats.error_messages.append(resp.error.message)
            self.answered.set()

    async def pace(self, t0: float, end: float, send: Any) -> None:
        """Send frames at the spec's rate (never catching up in bursts, as a game would not)."""
        period = 1.0 / self.spec.rate_hz if self.spec.rate_hz > 0 else 0.0
        next_at = t0 + self.offset * period
        while True:
            now = time.perf_counter()
            if now >= end:
                return
            if period:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                    now = time.perf_counter()
                next_at = max(next_at + period, now)
            else:
                self.answered.clear()
            await send(self.frame_bytes(now, t0))
            if not period:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.answered.wait(), timeout=5.0)


class _Stats:
    def __init__(self, measure_from: float, measure_to: float) -> None:
        self.lo, self.hi = measure_from, measure_to
        self.counts = {"sent": 0, "guidance": 0, "superseded": 0, "errors": 0}
        self.latencies: list[float] = []
        self.error_messages: list[str] = []

    def count(self, what: str, at: float, answered_at: float | None = None) -> None:
        if self.lo <= at < self.hi:
            self.counts[what] += 1
            if answered_at is not None:
                self.latencies.append((answered_at - at) * 1000.0)


async def _run_ws(spec: LoadSpec, s: _Session, t0: float, end: float) -> None:
    headers = {"Authorization": f"Bearer {spec.token}"} if spec.token else {}
    async with connect(spec.target, additional_headers=headers, compression=None, max_size=2**20) as ws:
        await ws.send(s.hello_bytes())
        first = await ws.recv()
        assert isinstance(first, bytes)
        welcome = pb.SessionResponse.FromString(first)
        if welcome.WhichOneof("kind") != "welcome":
            raise RuntimeError(f"no welcome: {welcome}")

        async def read() -> None:
            async for msg in ws:
                assert isinstance(msg, bytes)
                s.on_response(msg)

        reader = asyncio.create_task(read())
        await s.pace(t0, end, ws.send)
        await asyncio.sleep(0.5)  # answers still in flight count (they were sent in the window)
        reader.cancel()


async def _run_grpc(spec: LoadSpec, channel: grpc.aio.Channel, s: _Session, t0: float, end: float) -> None:
    call = channel.stream_stream(SESSION_METHOD, request_serializer=None, response_deserializer=None)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def requests() -> Any:
        while (item := await queue.get()) is not None:
            yield item

    metadata = (("authorization", f"Bearer {spec.token}"),) if spec.token else None
    stream = call(requests(), metadata=metadata)
    queue.put_nowait(s.hello_bytes())
    welcome = pb.SessionResponse.FromString(await stream.read())
    if welcome.WhichOneof("kind") != "welcome":
        raise RuntimeError(f"no welcome: {welcome}")

    async def read() -> None:
        while (msg := await stream.read()) is not grpc.aio.EOF:
            s.on_response(msg)

    async def send(data: bytes) -> None:
        queue.put_nowait(data)

    reader = asyncio.create_task(read())
    await s.pace(t0, end, send)
    await asyncio.sleep(0.5)
    queue.put_nowait(None)
    reader.cancel()
    stream.cancel()


async def _worker_main(spec: LoadSpec, first: int, count: int, start_at: float) -> dict[str, Any]:
    t0 = start_at
    stats = _Stats(t0 + spec.warmup_s, t0 + spec.warmup_s + spec.duration_s)
    end = t0 + spec.warmup_s + spec.duration_s
    sessions = [_Session(spec, first + i, stats) for i in range(count)]
    if spec.transport == "grpc":
        async with grpc.aio.insecure_channel(spec.target) as channel:
            await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
            await asyncio.gather(*(_run_grpc(spec, channel, s, t0, end) for s in sessions))
    else:
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        await asyncio.gather(*(_run_ws(spec, s, t0, end) for s in sessions))
    return {**stats.counts, "latencies": stats.latencies, "error_messages": stats.error_messages}


def _worker(spec: LoadSpec, first: int, count: int, start_at: float, out: Any) -> None:
    usable = set(spec.cores) & os.sched_getaffinity(0)
    if usable:
        os.sched_setaffinity(0, usable)
    out.put(event_loop.run(_worker_main(spec, first, count, start_at)))


def run_load(spec: LoadSpec) -> LoadResult:
    """Run the load in `spec.processes` worker processes and merge what they measured."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    per = [
        spec.sessions // spec.processes + (1 if i < spec.sessions % spec.processes else 0)
        for i in range(spec.processes)
    ]
    # perf_counter is CLOCK_MONOTONIC on Linux: shared by processes on one machine.
    start_at = time.perf_counter() + 2.0 + 0.5 * spec.processes  # time for the workers to import and connect
    procs, first = [], 0
    for count in per:
        p = ctx.Process(target=_worker, args=(spec, first, count, start_at, out), daemon=True)
        p.start()
        procs.append(p)
        first += count
    deadline = start_at + spec.warmup_s + spec.duration_s + 30
    parts: list[dict[str, Any]] = []
    while len(parts) < len(procs):
        try:
            parts.append(out.get(timeout=1.0))
        except queue.Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed or time.perf_counter() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"load workers failed (exit codes {failed}) or timed out") from None
    for p in procs:
        p.join(10)
    window = (start_at + spec.warmup_s, start_at + spec.warmup_s + spec.duration_s)
    result = LoadResult(spec, measured_s=spec.duration_s, window=window)
    lat: list[float] = []
    for part in parts:
        result.sent += part["sent"]
        result.guidance += part["guidance"]
        result.superseded += part["superseded"]
        result.errors += part["errors"]
        result.error_messages += part["error_messages"]
        lat += part["latencies"]
    result.latencies_ms = np.asarray(lat, np.float32)
    return result
