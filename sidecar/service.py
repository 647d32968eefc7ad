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
from sidecar.errors import IdleTimeout, MetabrainError, ShuttingDown
from sidecar.limits import Limits
from sidecar.protocol import Connection, FrameAccepted, ServerInfo, SessionEnded, Welcomed, parse_request
from sidecar.schema import pb
from sidecar.session import Session, SessionRegistry

log = logging.getLogger("metabrain.service")


@dataclass
class Counters:
    frames_in: dict[str, int] = field(default_factory=dict)
    guidance_out: dict[str, int] = field(default_factory=dict)
    superseded: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def bump(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


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
    counters: Counters = field(default_factory=Counters)
    observers: list[SessionObserver] = field(default_factory=list)
    handlers: dict[str, StreamHandler] = field(default_factory=dict)  # attached session -> its handler
    shutting_down: bool = False

    def sweep(self, now: float) -> None:
        """Free sessions whose resume window closed; close attached ones idle for too long."""
        gone, idle = self.registry.expired(now)
        for s in gone:
            self.engine.leave(s.session_id)
            for o in self.observers:
                o.on_close(s, "resume window closed")
        for s in idle:
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

    @property
    def session(self) -> Session | None:
        return self.conn.session

    def send(self, resp: pb.SessionResponse) -> None:
        kind = resp.WhichOneof("kind")
        counters = self.ctx.counters
        if kind == "guidance":
            counters.bump(counters.guidance_out, self.transport)
        elif kind == "superseded":
            counters.superseded += 1
        elif kind == "error":
            counters.bump(counters.errors, pb.ErrorCode.Name(resp.error.code))
        for o in self.ctx.observers:
            o.on_response(self.session, resp)
        self._send(resp)

    def on_bytes(self, data: bytes) -> None:
        self.on_request(parse_request(data, self.ctx.limits), data)

    def on_request(self, req: pb.SessionRequest, raw: bytes | None = None) -> None:
        """Raises MetabrainError; non-fatal ones are reported in-stream here and not re-raised."""
        now = time.monotonic()
        try:
            if self.ctx.shutting_down and req.WhichOneof("kind") == "hello":
                raise ShuttingDown("the sidecar is shutting down; connect to another one")
            event = self.conn.receive(req, now)
        except MetabrainError as err:
            if err.fatal:
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
            for o in self.ctx.observers:
                o.on_open(event.session, self.transport)
            self.send(pb.SessionResponse(welcome=event.welcome))
        elif isinstance(event, FrameAccepted):
            self.ctx.counters.bump(self.ctx.counters.frames_in, self.transport)
            fut = self.ctx.engine.submit(event)
            self.pending.add(fut)
            fut.add_done_callback(self._deliver)
        elif isinstance(event, SessionEnded):
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
        session = self.conn.lost(time.monotonic())
        if session is not None and self.ctx.handlers.get(session.session_id) is self:
            self.ctx.handlers.pop(session.session_id, None)
