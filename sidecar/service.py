"""What both transports share: the service context and the per-stream handler.

A transport reads messages and calls StreamHandler.on_request; the handler runs the protocol core,
hands frames to the engine, and pushes every response to the transport's `send` callback in order.
Fatal errors propagate as exceptions for the transport to turn into its close status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.engine.engine import Engine, Responses
from sidecar.errors import ConnectionLimitExceeded, IdleTimeout, LimitExceeded, MetabrainError, ShuttingDown
from sidecar.limits import Limits
from sidecar.protocol import Connection, FrameAccepted, ServerInfo, SessionEnded, Welcomed, parse_request
from sidecar.schema import pb
from sidecar.session import Session, SessionRegistry

log = logging.getLogger("metabrain.service")
HANDSHAKE_TIMEOUT_S = 30.0  # websockets gives up on an opening handshake after 10 s


class SessionObserver:
    """Hooks for recording, metrics and the dashboard; all optional."""

    def on_open(self, session: Session, transport: str) -> None: ...
    def on_request(self, session: Session | None, req: pb.SessionRequest, raw: bytes | None) -> None: ...
    def on_response(self, session: Session | None, resp: pb.SessionResponse) -> None: ...
    def on_close(self, session: Session | None, reason: str) -> None: ...


@dataclass
class ServiceContext:
    engine: Engine
    registry: SessionRegistry
    limits: Limits
    info: ServerInfo
    observers: list[SessionObserver] = field(default_factory=list)
    handlers: dict[str, StreamHandler] = field(default_factory=dict)  # attached session -> its handler
    shutting_down: bool = False
    connections: int = 0  # open streams on both transports
    # WebSocket handshakes admitted but not yet streams (the handshake awaits between the two), by
    # connection, with when they were admitted: they count against max_connections meanwhile.
    handshakes: dict[object, float] = field(default_factory=dict)

    def admit_connection(self, handshake: object | None = None, now: float = 0.0) -> None:
        """Refuse a new stream beyond max_connections (raised before any handler exists). A handshake
        key holds the slot until `handshake_done(key)` (or HANDSHAKE_TIMEOUT_S, for one that died)."""
        open_ = self.connections + len(self.handshakes)
        if open_ >= self.limits.max_connections:
            raise ConnectionLimitExceeded(
                f"{open_} streams are open or opening; the limit is max_connections={self.limits.max_connections}",
                field="max_connections",
            )
        if handshake is not None:
            self.handshakes[handshake] = now

    def handshake_done(self, handshake: object) -> None:
        self.handshakes.pop(handshake, None)

    def sweep(self, now: float) -> None:
        """Free sessions whose resume window closed; close attached ones idle for too long; forget
        handshakes that never became streams."""
        for key in [k for k, at in self.handshakes.items() if now - at > HANDSHAKE_TIMEOUT_S]:
            del self.handshakes[key]
        gone, idle = self.registry.expired(now)
        for s in gone:
            log.info("session freed: resume window closed", extra={"session_id": s.session_id})
            self.engine.leave(s.session_id)
            for o in self.observers:
                o.on_close(s, "resume window closed")
        for s in idle:
            log.info("session closed: idle", extra={"session_id": s.session_id})
            self.engine.leave(s.session_id)
            handler = self.handlers.pop(s.session_id, None)
            if handler is not None:
                handler.idle_out()


class StreamHandler:
    def __init__(
        self,
        ctx: ServiceContext,
        transport: str,
        send: Callable[[pb.SessionResponse], None],
        close: Callable[[MetabrainError], None],
    ) -> None:
        self.ctx = ctx
        self.transport = transport
        self._send = send
        self._close = close
        self.conn = Connection(ctx.registry, ctx.info)
        self.pending: set[asyncio.Future[Responses]] = set()
        ctx.connections += 1
        self._disconnected = False
        # Per-connection message rate (every message, valid or not): a token bucket of one second.
        rate = ctx.limits.max_messages_per_second_per_connection
        self._tokens = rate
        self._tokens_at = time.monotonic()
        self._refused_at = -1.0

    @property
    def session(self) -> Session | None:
        return self.conn.session

    def _sid(self) -> str:
        return self.conn.session.session_id if self.conn.session is not None else ""

    def send(self, resp: pb.SessionResponse) -> None:
        for o in self.ctx.observers:
            o.on_response(self.session, resp)
        self._send(resp)

    def on_bytes(self, data: bytes) -> None:
        now = time.monotonic()
        if self._within_rate(now):
            self._on_request(parse_request(data, self.ctx.limits), data, now)

    def on_request(self, req: pb.SessionRequest, raw: bytes | None = None) -> None:
        """Raises MetabrainError; non-fatal ones are reported in-stream here and not re-raised."""
        now = time.monotonic()
        if self._within_rate(now):
            self._on_request(req, raw, now)

    def _within_rate(self, now: float) -> bool:
        """Drop messages beyond the connection's rate, with at most one error a second (no amplification)."""
        rate = self.ctx.limits.max_messages_per_second_per_connection
        self._tokens = min(rate, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if now - self._refused_at >= 1.0:
            self._refused_at = now
            err = LimitExceeded(
                f"this connection sent more than max_messages_per_second_per_connection={rate:g}; "
                "messages over the rate are dropped",
                field="max_messages_per_second_per_connection",
            )
            self.send(pb.SessionResponse(error=err.to_proto()))
        return False

    def _on_request(self, req: pb.SessionRequest, raw: bytes | None, now: float) -> None:
        try:
            if self.ctx.shutting_down and req.WhichOneof("kind") == "hello":
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
            self.send(pb.SessionResponse(error=err.to_proto()))
            return
        for o in self.ctx.observers:
            o.on_request(self.session, req, raw)
        if isinstance(event, Welcomed):
            self.ctx.engine.join(event.session, event.state_reset)
            old = self.ctx.handlers.get(event.session.session_id)
            if old is not None and old is not self:
                old.conn.session = None  # the session moved to this stream
            self.ctx.handlers[event.session.session_id] = self
            w = event.welcome
            log.info(
                "session opened",
                extra={
                    "session_id": w.session_id,
                    "transport": self.transport,
                    "resumed": w.resumed,
                    "state_reset": w.state_reset,
                    "policy": w.policy,
                    "game_id": event.session.hello.game_id,
                },
            )
            for o in self.ctx.observers:
                o.on_open(event.session, self.transport)
            self.send(pb.SessionResponse(welcome=event.welcome))
        elif isinstance(event, FrameAccepted):
            fut = self.ctx.engine.submit(event)
            self.pending.add(fut)
            fut.add_done_callback(self._deliver)
        elif isinstance(event, SessionEnded):
            log.info("session ended: %s", event.reason, extra={"session_id": event.session.session_id})
            self.ctx.handlers.pop(event.session.session_id, None)
            self.ctx.engine.leave(event.session.session_id)
            for o in self.ctx.observers:
                o.on_close(event.session, event.reason)
            self.send(pb.SessionResponse(goodbye=pb.Goodbye(reason="goodbye acknowledged")))

    def _deliver(self, fut: asyncio.Future[Responses]) -> None:
        self.pending.discard(fut)
        if fut.cancelled():
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

    def idle_out(self) -> None:
        err = IdleTimeout(f"no frame for {self.ctx.limits.idle_timeout_s:g} s; the limit is idle_timeout_s")
        self.conn.session = None
        self._close(err)

    def on_disconnect(self) -> None:
        if not self._disconnected:
            self._disconnected = True
            self.ctx.connections -= 1
        session = self.conn.lost(time.monotonic())
        if session is not None and self.ctx.handlers.get(session.session_id) is self:
            self.ctx.handlers.pop(session.session_id, None)
            log.info("session detached: waiting for a resume", extra={"session_id": session.session_id})
