"""An engine-like client: plays simulated sessions against a running sidecar over gRPC or WebSocket.

Like a real engine plugin it never waits for the sidecar: every frame is sent as soon as the game
produced it, a background reader keeps only the newest guidance (older or stale guidance is
dropped), and the game applies whatever guidance has arrived when it next ticks.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import numpy as np

from sidecar.features import KnobSet
from sidecar.wire.frames import to_tables
from sidecar.wire.schema import pb, pb_grpc
from sim.game import FrameTimer, Game, goodbye, hello
from sim.players import PlayerModel


@dataclass
class LiveSummary:
    index: int
    archetype: str
    skill: float
    seconds: float
    quit: bool
    kills: int
    deaths: int
    frames_sent: int = 0
    guidance: int = 0
    superseded: int = 0
    errors: int = 0
    stale_dropped: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    curve: list[tuple[float, float, float]] = field(default_factory=list)  # (game time, difficulty, p_fail)
    model_version: str = ""
    policy: str = ""
    lost: str = ""  # why the stream ended before the session did (the sidecar went away), else ""
    arm: str = ""  # the experiment arm the sidecar drew for this player, if it runs one


@dataclass
class ClientConfig:
    target: str  # host:port for gRPC, ws://host:port/path for WebSocket
    transport: str = "grpc"
    realtime: bool = True
    max_seconds: float = 30.0
    telemetry_hz: float = 5.0  # frames a second the game sends (the arena ticks at 30 Hz)
    policy: str = ""
    params: dict[str, str] = field(default_factory=dict)
    consent: bool = False
    token: str = ""
    seed: int = 0
    tables: bool = True  # send frames in the table form, as the engine plugins do
    # Sessions played at once when not in real time (0: all). Hundreds of clients flooding frames as fast
    # as they can starve each other's hellos; in real time each waits on its own clock and all can run.
    max_concurrent: int = 64
    # Frames a fast client may have unanswered: it waits for answers beyond that, as a game that
    # renders frame by frame cannot run minutes ahead of the sidecar (without a bound it queued a whole
    # session, ended it, and the sidecar had answered and recorded only its start).
    max_in_flight: int = 16


class _Mailbox:
    """The newest guidance that has arrived; anything older is dropped as stale."""

    def __init__(self) -> None:
        self.latest: pb.Guidance | None = None
        self.applied_sequence = 0
        self.sent_at: dict[int, float] = {}  # frames sent and not yet answered, by sequence
        self.answered = asyncio.Event()  # set whenever an answer (or a refusal) arrives


async def play_session(
    index: int, player: PlayerModel, cfg: ClientConfig, on_frame: Callable[[], None] | None = None
) -> LiveSummary:
    game = Game(cfg.seed * 1_000_003 + index)
    summary = LiveSummary(index, player.traits.archetype, player.traits.skill, 0.0, False, 0, 0)
    box = _Mailbox()
    outbox: asyncio.Queue[pb.SessionRequest | None] = asyncio.Queue()
    welcome = asyncio.get_running_loop().create_future()

    def on_response(resp: pb.SessionResponse) -> None:
        kind = resp.WhichOneof("kind")
        if kind == "welcome":
            if not welcome.done():
                welcome.set_result(resp.welcome)
        elif kind == "guidance":
            g = resp.guidance
            summary.guidance += 1
            sent = box.sent_at.pop(g.sequence, None)
            if sent is not None:
                summary.latencies_ms.append((time.perf_counter() - sent) * 1e3)
            if box.latest is None or g.sequence > box.latest.sequence:
                box.latest = g
            else:
                summary.stale_dropped += 1
        elif kind == "goodbye" and resp.goodbye.reason != "goodbye acknowledged":
            summary.lost = f"the sidecar ended the session: {resp.goodbye.reason}"
        elif kind == "superseded":
            summary.superseded += 1
            box.sent_at.pop(resp.superseded.sequence, None)
        elif kind == "error":
            summary.errors += 1
            box.sent_at.pop(resp.error.sequence, None)
            if resp.error.fatal:
                if not welcome.done():
                    refused = ValueError(f"the sidecar at {cfg.target} refused the session: {resp.error.message}")
                    welcome.set_exception(refused)
                else:
                    summary.lost = resp.error.message
        box.answered.set()

    h = hello(
        policy=cfg.policy,
        params=cfg.params,
        consent=cfg.consent,
        tick_rate_hz=cfg.telemetry_hz,
        player_id=f"sim-player-{cfg.seed}-{index}",  # the same simulated player: the same experiment arm
    )
    knobs = KnobSet.from_specs(list(h.knobs))
    await outbox.put(pb.SessionRequest(hello=h))
    if cfg.transport == "grpc":
        io_task = asyncio.create_task(_grpc_io(cfg, outbox, on_response))
    else:
        io_task = asyncio.create_task(_ws_io(cfg, outbox, on_response))
    io_task.add_done_callback(lambda t: _transport_ended(t, welcome, summary, cfg.target))
    try:
        w = await asyncio.wait_for(welcome, 30.0)
    except TimeoutError as exc:
        io_task.cancel()
        raise ConnectionError(f"no welcome from the sidecar at {cfg.target} within 30 s") from exc
    summary.model_version, summary.policy, summary.arm = w.model_version, w.policy, w.arm
    start = time.perf_counter()
    # Faster than real time, the client keeps under the connection's message rate (the welcome's limits):
    # the sidecar drops what is over it, and a dropped frame is never answered, so the client would wait
    # out _wait_for_answers' 10 s for it.
    rate = w.limits.max_messages_per_second_per_connection
    gap = 1.0 / (0.9 * rate) if rate > 0 else 0.0
    next_send = start
    timer = FrameTimer(cfg.telemetry_hz)
    last_curve = -1e9
    while not game.over and game.t < cfg.max_seconds:
        g = box.latest
        if g is not None and g.sequence > box.applied_sequence:
            box.applied_sequence = g.sequence
            game.apply_knobs({k.name: k.value for k in g.knobs})
            for hint in g.npc_hints:
                game.apply_hint(hint.npc_id, hint.tactic, hint.aggression)
        if game.t - last_curve >= 1.0:
            # Every game second, whether or not guidance came (a client that outruns the sidecar plays
            # at the designer's defaults meanwhile): the difficulty played and the latest p_fail.
            last_curve = game.t
            d = knobs.to_difficulty(np.array([game.knobs[n] for n in knobs.names], np.float32))
            latest = box.latest
            summary.curve.append((game.t, d, latest.insights[0].p_fail if latest and latest.insights else math.nan))
        timer.play(game, player.act)
        frame = game.frame(timer.interval(game))
        if cfg.tables:
            frame = to_tables(frame, knobs.names)
        box.sent_at[frame.sequence] = time.perf_counter()
        outbox.put_nowait(pb.SessionRequest(frame=frame))
        summary.frames_sent += 1
        if on_frame is not None:
            on_frame()
        if cfg.realtime:
            ahead = start + game.t - time.perf_counter()
            await asyncio.sleep(max(ahead, 0.0))
        else:
            next_send = max(next_send + gap, time.perf_counter() - 1.0)  # at most a second's burst saved up
            await asyncio.sleep(max(next_send - time.perf_counter(), 0.0))
            await _wait_for_answers(box, cfg.max_in_flight, io_task)
    outbox.put_nowait(goodbye(game.over))
    outbox.put_nowait(None)
    try:
        await asyncio.wait_for(io_task, 10.0)
    except TimeoutError:
        io_task.cancel()
    except ConnectionError:
        pass  # the sidecar went away: recorded in summary.lost by _transport_ended
    st = game.stats
    summary.seconds, summary.quit, summary.kills, summary.deaths = game.t, game.over, st.kills, st.deaths
    return summary


async def _wait_for_answers(box: _Mailbox, limit: int, io_task: asyncio.Task[None]) -> None:
    """Until fewer than `limit` frames are unanswered (or the stream has ended, or 10 s pass without any
    answer: the session goes on and the summary shows what went unanswered)."""
    while len(box.sent_at) >= limit and not io_task.done():
        box.answered.clear()
        try:
            await asyncio.wait_for(box.answered.wait(), 10.0)
        except TimeoutError:
            return


def _transport_ended(
    task: asyncio.Task[None], welcome: asyncio.Future[pb.Welcome], summary: LiveSummary, target: str
) -> None:
    """The stream's task ended: before any welcome, the sidecar is not there; after it, if the task
    failed, the sidecar went away mid-session."""
    exc = None if task.cancelled() else task.exception()
    if welcome.done():
        if exc is not None and not summary.lost:
            summary.lost = f"{type(exc).__name__}: {exc}"
        return
    why = f"{type(exc).__name__}: {exc}" if exc is not None else "the connection closed"
    welcome.set_exception(
        ConnectionError(f"cannot reach a sidecar at {target} ({why}); is `metabrain serve` running there?")
    )


async def _grpc_io(
    cfg: ClientConfig,
    outbox: asyncio.Queue[pb.SessionRequest | None],
    on_response: Callable[[pb.SessionResponse], None],
) -> None:
    async def requests():  # type: ignore[no-untyped-def]
        while (item := await outbox.get()) is not None:
            yield item

    metadata = (("authorization", f"Bearer {cfg.token}"),) if cfg.token else ()
    async with grpc.aio.insecure_channel(cfg.target) as channel:
        call = pb_grpc.BrainServiceStub(channel).Session(requests(), metadata=metadata)
        try:
            async for resp in call:
                on_response(resp)
        except grpc.aio.AioRpcError as exc:
            message = f"{exc.code().name}: {exc.details()}"
            if exc.code() == grpc.StatusCode.UNAVAILABLE:  # no sidecar there, or it went away
                raise ConnectionError(message) from None
            if exc.code() != grpc.StatusCode.CANCELLED:
                on_response(
                    pb.SessionResponse(error=pb.Error(code=pb.ERROR_CODE_INTERNAL, message=message, fatal=True))
                )


async def _ws_io(
    cfg: ClientConfig,
    outbox: asyncio.Queue[pb.SessionRequest | None],
    on_response: Callable[[pb.SessionResponse], None],
) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
    async with connect(cfg.target, additional_headers=headers, max_size=2**20, compression=None) as ws:

        async def pump() -> None:
            while (item := await outbox.get()) is not None:
                await ws.send(item.SerializeToString())

        sender = asyncio.create_task(pump())
        try:
            async for data in ws:
                assert isinstance(data, bytes)
                resp = pb.SessionResponse.FromString(data)
                on_response(resp)
                if resp.WhichOneof("kind") == "goodbye":
                    break
        except ConnectionClosed as exc:
            if exc.rcvd is None or exc.rcvd.code not in (1000, 1001):  # not a goodbye or a drain
                why = f"the connection dropped ({exc})"
                on_response(pb.SessionResponse(error=pb.Error(code=pb.ERROR_CODE_INTERNAL, message=why, fatal=True)))
        finally:
            sender.cancel()


async def play_many(
    players: list[PlayerModel], cfg: ClientConfig, on_frame: Callable[[], None] | None = None
) -> list[LiveSummary]:
    if cfg.realtime or cfg.max_concurrent <= 0:
        return list(await asyncio.gather(*(play_session(i, p, cfg, on_frame) for i, p in enumerate(players))))
    gate = asyncio.Semaphore(cfg.max_concurrent)

    async def one(i: int, p: PlayerModel) -> LiveSummary:
        async with gate:
            return await play_session(i, p, cfg, on_frame)

    return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(players))))


def resolve_target(target: str, transport: str | None) -> tuple[str, str]:
    """(target, transport) from what a user typed: a ws:// or wss:// URL is WebSocket, host:port is gRPC.
    Raises ValueError with the fix when neither fits (a bare host would silently try port 443)."""
    if target.startswith(("ws://", "wss://")):
        if transport == "grpc":
            raise ValueError(f"--target {target} is a WebSocket URL but --transport is grpc: drop --transport")
        return target, "websocket"
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(
            f"--target {target!r}: give host:port for gRPC (for example 127.0.0.1:50051) or a WebSocket URL "
            "(ws://127.0.0.1:50052/metabrain/v1/session)"
        )
    if transport == "websocket":
        raise ValueError(f"--target {target} is a gRPC address but --transport is websocket: give a ws:// URL")
    return target, "grpc"
