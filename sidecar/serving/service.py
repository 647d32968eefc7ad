"""What both transports share: the service context and the per-stream handler.

A transport reads messages and calls StreamHandler.on_bytes; the handler decodes them at the wire
seam, runs the protocol core, hands frames to the engine, and pushes every response to the
transport's `send` callback in order.
Fatal errors propagate as exceptions for the transport to turn into its close status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.engine.engine import Engine, Responses
from sidecar.errors import (
    IdleTimeout,
    Internal,
    LimitExceeded,
    MetabrainError,
    SessionTakenOver,
    ShuttingDown,
)
from sidecar.limits import Limits
from sidecar.protocol import Connection, FrameAccepted, ServerInfo, SessionEnded, State, Welcomed
from sidecar.serving.admission import Admissions
from sidecar.serving.between_lane import BetweenLane, LaneObserver
from sidecar.session import IDLE_TIMEOUT, RESUME_WINDOW_CLOSED, Session, SessionRegistry
from sidecar.token_bucket import TokenBucket
from sidecar.wire import responses as wire_responses
from sidecar.wire.requests import GOODBYE_TAG, HelloRequest, Request, RequestMessage, decode
from sidecar.wire.responses import Response

log = logging.getLogger("metabrain.service")


class SessionObserver(LaneObserver):
    """Hooks for recording, metrics and the dashboard; all optional. A hook may raise a non-fatal
    MetabrainError to warn the stream in-stream (the answer is sent first); any other exception is
    logged and the stream goes on: an observer never costs a game its guidance."""

    # Whether it must see every frame and answer as messages (an observer that does not say: yes). False:
    # a frame answered in the compiled lane (between_lane.py) reaches it only as on_between.
    needs_messages = True

    def needs_messages_of(self, session: Session) -> bool:
        """Whether it must see this session's every frame and answer as messages (asked at the welcome;
        the recorder: only for the sessions it records)."""
        return self.needs_messages

    def on_open(self, session: Session, transport: str) -> None: ...
    def on_request(self, session: Session | None, req: RequestMessage, raw: bytes | None) -> None: ...
    def on_response(self, session: Session | None, resp: Response) -> None: ...
    def on_close(self, session: Session | None, reason: str) -> None: ...


def notify(
    observers: list[SessionObserver], hook: Callable[[SessionObserver], None], session_id: str | Callable[[], str]
) -> list[MetabrainError]:
    """Run an observer hook on every observer: one observer's bug is logged and ends nothing. Returns
    the in-stream warnings they raised (MetabrainError), for a stream to send. `session_id`, for the log,
    may be a function that says it (asked only when an observer fails: hooks run on every frame)."""
    warnings: list[MetabrainError] = []
    for o in observers:
        try:
            hook(o)
        except MetabrainError as err:
            warnings.append(err)
        except Exception:
            sid = session_id() if callable(session_id) else session_id
            log.exception("observer %s failed", type(o).__name__, extra={"session_id": sid})
    return warnings


@dataclass
class ServiceContext:
    engine: Engine
    registry: SessionRegistry
    limits: Limits
    info: ServerInfo
    observers: list[SessionObserver] = field(default_factory=list)
    handlers: dict[str, StreamHandler] = field(default_factory=dict)  # attached session -> its handler
    shutting_down: bool = False
    compiled_reader: bool = True  # frames read by the compiled reader where it can (sidecar/wire/table_reader.py)
    admissions: Admissions = field(init=False)

    def __post_init__(self) -> None:
        self.admissions = Admissions(self.limits)

    @property
    def connections(self) -> int:
        """Open streams on both transports (handshakes on their way are counted apart)."""
        return self.admissions.streams

    def sweep(self, now: float) -> None:
        """Free sessions whose resume window closed; close attached ones idle for too long; forget
        handshakes that never became streams."""
        self.admissions.sweep(now)
        gone, idle = self.registry.expired(now)
        for s in gone:
            self._player_went_away(s, RESUME_WINDOW_CLOSED, "session freed: resume window closed")
        for s in idle:
            self._player_went_away(s, IDLE_TIMEOUT, "session closed: idle")
            handler = self.handlers.pop(s.session_id, None)
            if handler is not None:
                handler.idle_out(s.paused)

    def _player_went_away(self, session: Session, why: str, message: str) -> None:
        """A session the sweep ends: its state goes, and the observers close it (its recording ends here
        with `why`, not at shutdown)."""
        log.info(message, extra={"session_id": session.session_id})
        try:
            self.engine.leave(session.session_id)
        except Exception:  # the registry has let it go already: the others in this sweep still must be freed
            log.exception("freeing the session's model state failed", extra={"session_id": session.session_id})
        sid = session.session_id
        for err in notify(self.observers, lambda o: o.on_close(session, why), sid):
            log.error("observer warning with no stream to send it to: %s", err, extra={"session_id": sid})


class StreamHandler:
    """One stream of either transport. `send` queues a response, `close` ends the stream with a fatal
    error (in-stream, then the transport's status), `finish` ends it cleanly after what was queued.
    The stream's admission slot (`admission`, already taken) is released when it disconnects.
    `send_bytes`, where the transport has it, sends a response already serialized: frames between model
    steps are then answered in the compiled lane where they can be (between_lane.py)."""

    def __init__(
        self,
        ctx: ServiceContext,
        transport: str,
        send: Callable[[Response], None],
        close: Callable[[MetabrainError], None],
        finish: Callable[[], None],
        admission: object,
        send_bytes: Callable[[bytes], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.transport = transport
        self._send = send
        self._close = close
        self._finish = finish
        self._send_bytes = send_bytes
        self.lane: BetweenLane | None = None  # made at the welcome, where the stream can have one
        self._admission = admission
        ctx.admissions.became_stream(admission)
        self.conn = Connection(ctx.registry, ctx.info)
        self.pending: set[asyncio.Future[Responses]] = set()
        self._disconnected = False
        self._ended = False
        # Per-connection message rate (every message, valid or not): a token bucket of one second.
        self._messages = TokenBucket(ctx.limits.max_messages_per_second_per_connection, time.monotonic())
        self._refused_at = -1.0
        self._goodbye_seen = False
        # A stream that never says hello gives its slot back after hello_timeout_s.
        self._hello_timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            ctx.limits.hello_timeout_s, self._no_hello
        )

    @property
    def session(self) -> Session | None:
        return self.conn.session

    def _sid(self) -> str:
        return self.conn.session.session_id if self.conn.session is not None else ""

    def send(self, resp: Response) -> None:
        observers = self.ctx.observers
        if not observers:
            self._send(resp)
            return
        session = self.conn.session
        warnings = notify(observers, lambda o: o.on_response(session, resp), self._sid)
        self._send(resp)
        if warnings:
            self._warn(warnings)  # an observer's in-stream warning, after the answer

    def _observe(self, hook: Callable[[SessionObserver], None]) -> list[MetabrainError]:
        """Run an observer hook on every observer; returns their in-stream warnings, for the caller to
        send where they belong (after the welcome, say)."""
        observers = self.ctx.observers
        return notify(observers, hook, self._sid) if observers else []

    def _warn(self, warnings: list[MetabrainError]) -> None:
        for err in warnings:
            self.send(wire_responses.error(err))

    def on_bytes(self, data: bytes) -> None:
        """Raises MetabrainError when the stream must end (its transport maps it to a status). A bug in
        handling the message ends this stream with INTERNAL, never stalls it."""
        now = time.monotonic()
        if not self._within_rate(now, data):
            return
        ctx = self.ctx
        try:
            if self.lane is not None and self._answered_in_lane(data, now):
                return
            self._on_request(*decode(data, ctx.limits, compiled=ctx.compiled_reader), data, now)
        except MetabrainError:
            raise
        except Exception as exc:
            log.exception("unexpected error handling a message; the stream ends", extra={"session_id": self._sid()})
            raise Internal(
                f"internal error handling a message ({type(exc).__name__}); this session ends, others are unaffected"
            ) from exc

    def _answered_in_lane(self, data: bytes, now: float) -> bool:
        """A frame between model steps, answered in one compiled call where it can be (between_lane.py);
        only while nothing is still to be sent before it, so answers keep the frames' order. The observers
        hear of it as on_between (their warnings, as ever, after the answer)."""
        lane, session = self.lane, self.conn.session
        if lane is None or self.pending or self.conn.state is not State.OPEN or session is not lane.session:
            return False
        got = lane.answer(data, now)
        if got is None:
            return False
        answer, processing_us = got
        assert self._send_bytes is not None  # a stream has a lane only where it sends bytes
        observers = self.ctx.observers
        if not observers:
            self._send_bytes(answer)
            return True
        transport = self.transport
        warnings = notify(observers, lambda o: o.on_between(session, transport, processing_us, answer), self._sid)
        self._send_bytes(answer)
        if warnings:
            self._warn(warnings)
        return True

    def _within_rate(self, now: float, data: bytes) -> bool:
        """Drop messages beyond the connection's rate, with at most one error a second (no amplification).
        The first goodbye of a connection is never dropped: a client that sent too fast still ends its
        session, and says how (a quit or cut short: the portfolio's evidence); dropped, the session would
        wait out its resume window and then count as a quit."""
        if self._messages.take(now):
            return True
        if data[:1] == GOODBYE_TAG and not self._goodbye_seen:
            self._goodbye_seen = True  # one a connection: a stream of goodbyes is dropped as anything else
            return True
        rate = self._messages.rate
        if now - self._refused_at >= 1.0:
            self._refused_at = now
            err = LimitExceeded(
                f"this connection sent more than max_messages_per_second_per_connection={rate:g}; "
                "messages over the rate are dropped",
                field="max_messages_per_second_per_connection",
            )
            self.send(wire_responses.error(err))
        return False

    def _on_request(self, req: Request, message: RequestMessage, raw: bytes | None, now: float) -> None:
        try:
            if self.ctx.shutting_down and isinstance(req, HelloRequest):
                raise ShuttingDown("the sidecar is shutting down; connect to another one")
            event = self.conn.receive(req, now)
        except MetabrainError as err:
            if err.fatal:
                log.warning(
                    "stream refused: %s",
                    err.message,
                    extra={"session_id": self._sid(), "transport": self.transport, "field": err.field},
                )
                raise
            self.send(wire_responses.error(err))
            return
        self._warn(self._observe(lambda o: o.on_request(self.session, message, raw)))
        if isinstance(event, Welcomed):
            self._welcomed(event)
        elif isinstance(event, FrameAccepted):
            got = self.ctx.engine.submit(event)
            if isinstance(got, list):  # answered at once (between model steps)
                if not self.pending:  # nothing before it still to be sent: no loop pass in between
                    for resp in got:
                        self.send(resp)
                    return
                fut: asyncio.Future[Responses] = asyncio.get_running_loop().create_future()
                fut.set_result(got)
                got = fut
            # After the answers already on their way (their callbacks were scheduled first).
            self.pending.add(got)
            got.add_done_callback(self._deliver)
        elif isinstance(event, SessionEnded):
            # Every frame accepted before the goodbye is answered first, then the goodbye is acknowledged.
            task = asyncio.ensure_future(self._end(event))
            self.pending.add(task)  # type: ignore[arg-type]
            task.add_done_callback(self.pending.discard)

    def _welcomed(self, event: Welcomed) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        self.ctx.engine.join(event.session, event.state_reset)
        old = self.ctx.handlers.get(event.session.session_id)
        if old is not None and old is not self:
            old.taken_over()  # the session moved to this stream
        self.ctx.handlers[event.session.session_id] = self
        self.lane = self._lane_for(event.session)
        w = event.welcome
        log.info(
            "session opened",
            extra={
                "session_id": w.session_id,
                "transport": self.transport,
                "resumed": w.resumed,
                "state_reset": w.state_reset,
                "policy": w.policy,
                "experiment": w.experiment,
                "arm": w.arm,
                "game_id": event.session.spec.game_id,
            },
        )
        warnings = self._observe(lambda o: o.on_open(event.session, self.transport))
        self.send(wire_responses.welcome(w))
        self._warn(warnings)

    def _lane_for(self, session: Session) -> BetweenLane | None:
        """The compiled lane for this stream's frames between model steps: where the transport sends
        bytes, the compiled code is on and built, and no observer needs this session's every message."""
        ctx = self.ctx
        if self._send_bytes is None or not ctx.compiled_reader or not ctx.engine.cfg.compiled:
            return None
        if any(o.needs_messages_of(session) for o in ctx.observers):
            return None
        lane = BetweenLane(session, ctx.engine, ctx.limits)
        return lane if lane.reader is not None else None

    async def _end(self, event: SessionEnded) -> None:
        frames = [f for f in self.pending if f is not asyncio.current_task()]
        if frames:
            await asyncio.wait(frames, timeout=30.0)
        sid = event.session.session_id
        log.info("session ended: %s", event.reason, extra={"session_id": sid})
        if self.ctx.handlers.get(sid) is self:
            self.ctx.handlers.pop(sid, None)
        self.ctx.engine.leave(sid, by_player=not event.cut_short)
        warnings = self._observe(lambda o: o.on_close(event.session, event.reason))
        self._warn(warnings)
        self.send(wire_responses.goodbye("goodbye acknowledged"))
        self._ended = True
        self._finish()

    def _deliver(self, fut: asyncio.Future[Responses]) -> None:
        self.pending.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:  # the engine resolves with responses; an exception here is a bug
            log.error("a frame's answer failed: %r", exc, extra={"session_id": self._sid()})
            return
        for resp in fut.result():
            self.send(resp)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every accepted frame of this stream has been answered."""
        if self.pending:
            await asyncio.wait(list(self.pending), timeout=timeout)

    def close(self, err: MetabrainError) -> None:
        """End this stream with a fatal error (sent in-stream, then the transport's close status)."""
        self._close(err)

    def _no_hello(self) -> None:
        self._hello_timer = None
        if self.conn.session is None and not self._disconnected:
            limit = self.ctx.limits.hello_timeout_s
            log.info("stream closed: no hello within %g s", limit, extra={"transport": self.transport})
            self._close(
                IdleTimeout(f"no hello within {limit:g} s; the limit is hello_timeout_s", field="hello_timeout_s")
            )

    def taken_over(self) -> None:
        """Another stream resumed this stream's session with its token: end this one, saying so."""
        session = self.conn.session
        self.conn.session = None
        self.conn.state = State.CLOSED
        sid = session.session_id if session is not None else ""
        self._close(
            SessionTakenOver(
                f"session {sid} was resumed on another stream with its resume token; this stream is closed",
                field="hello.resume_token",
            )
        )

    def idle_out(self, paused: bool = False) -> None:
        limit = self.ctx.limits.idle_limit_s(paused)
        if paused:
            err = IdleTimeout(f"paused with no frame for {limit:g} s; the limit is max_pause_s")
        else:
            err = IdleTimeout(f"no frame for {limit:g} s; the limit is idle_timeout_s")
        self.conn.session = None
        self._close(err)

    def on_disconnect(self) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        if not self._disconnected:
            self._disconnected = True
            self.ctx.admissions.release(self._admission)
        session = self.conn.lost(time.monotonic())
        if session is not None and self.ctx.handlers.get(session.session_id) is self:
            self.ctx.handlers.pop(session.session_id, None)
            log.info("session detached: waiting for a resume", extra={"session_id": session.session_id})
