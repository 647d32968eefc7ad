"""The WebSocket transport: the same SessionRequest/SessionResponse envelopes as binary messages."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import ssl
import time
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event, State

from sidecar.errors import Internal, Malformed, MetabrainError, Unauthenticated
from sidecar.serving.auth import TokenAuth
from sidecar.serving.service import ServiceContext, StreamHandler
from sidecar.serving.transports.status import ws_close_code, ws_http_status, ws_reason
from sidecar.token_bucket import TokenBucket
from sidecar.wire import responses as wire_responses
from sidecar.wire.schema import pb

WS_PATH = "/metabrain/v1/session"
_END = object()
log = logging.getLogger("metabrain.websocket")


def _token(request: Request) -> str | None:
    header = request.headers.get("Authorization") or request.headers.get("X-Metabrain-Token")
    if header:
        return header
    query = parse_qs(urlparse(request.path).query)
    tokens = query.get("token")
    return tokens[0] if tokens else None


class SessionConnection(ServerConnection):
    """A session's WebSocket connection: each whole binary message handled as it is parsed, its answers
    written at once, and no buffering without bound for a peer that does not read.

    Messages: `deliver_to(callback)` has every whole binary message handed to the callback inside
    data_received, and `write_now` writes an answer from there (or from anywhere on the loop): no
    message queue, no reading task to wake, no writer task between a frame and its answer (the
    hand-offs cost ~4.5 us of a served frame's ~54, BENCHMARKS.md run 10). A fragmented or text
    message goes the library's way (`async for message in ws`) and so does every message after it, so
    that they keep their order; messages that arrive before `deliver_to` wait for it.

    Bounds: websockets answers every ping with a pong by itself, and a client that floods pings without
    reading the pongs would grow this process's memory. Pings beyond a rate, or a write buffer past the
    limit, end the connection."""

    ping_rate = 20.0  # pings per second, with a burst of one second's worth
    max_buffer_bytes = 1 << 20
    slice_bytes = 2048

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pings = TokenBucket(self.ping_rate, time.monotonic())
        self._refused = False
        self._on_message: Callable[[bytes], None] | None = None
        self._early: list[bytes] = []  # whole binary messages before deliver_to
        self._library_way = False  # a fragmented or text message came: this and the rest via recv()

    def deliver_to(self, on_message: Callable[[bytes], None]) -> None:
        """Hand every whole binary message to `on_message` from now on (those that came already first)."""
        self._on_message = on_message
        early, self._early = self._early, []
        for data in early:
            on_message(data)

    def stop_delivering(self) -> None:
        """Drop the messages still to come (the stream is ending with an error already sent)."""
        self._on_message = _drop

    def write_now(self, data: bytes) -> bool:
        """Send one binary message now; False when the connection is no longer open (or the write
        failed), for the caller to hand it to the library's send, which reports the close."""
        if self.protocol.state is not State.OPEN:
            return False
        try:
            self.protocol.send_binary(data)
            self.send_data()
        except Exception:
            return False
        return True

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame):
            if event.opcode is Opcode.PING and (self._refused or not self._pings.take(time.monotonic())):
                self._refuse(f"more than {self.ping_rate:g} pings a second")
                return
            if event.opcode in _DATA and not self._library_way:
                if event.opcode is Opcode.BINARY and event.fin:
                    data = bytes(event.data)
                    if self._on_message is None:
                        self._early.append(data)
                    else:
                        self._on_message(data)
                    return
                self._library_way = True  # after the early ones: deliver_to hands those over first
        super().process_event(event)

    def data_received(self, data: bytes) -> None:
        # In slices: the protocol parses (and answers) every frame of what it is fed before any is
        # seen here, so 64 KiB of pings would cost the event loop ~100 ms before the rate check.
        for i in range(0, len(data), self.slice_bytes):
            if self._refused:
                return
            super().data_received(data[i : i + self.slice_bytes])
            if self.transport.get_write_buffer_size() > self.max_buffer_bytes:
                self._refuse(f"the client does not read: over {self.max_buffer_bytes} bytes wait to be sent")

    def _refuse(self, why: str) -> None:
        if not self._refused:
            self._refused = True
            log.warning("WebSocket connection dropped: %s", why)
            self.transport.abort()  # no close handshake: the peer is not reading anyway


def _client_of(connection: ServerConnection) -> str:
    address = connection.remote_address
    return str(address[0]) if address else "?"


class _Endpoint:
    """The session endpoint: who may upgrade (path, origin, token, an admission slot), and each stream."""

    def __init__(self, ctx: ServiceContext, auth: TokenAuth, allowed_origins: tuple[str, ...]) -> None:
        self.ctx, self.auth, self.allowed_origins = ctx, auth, allowed_origins

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        # A slot only for a real upgrade on the served path, from an allowed origin, with the token.
        path = urlparse(request.path).path
        if path != WS_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"not found: the session endpoint is {WS_PATH}\n")
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return connection.respond(
                HTTPStatus.UPGRADE_REQUIRED, f"{WS_PATH} speaks WebSocket only: send an Upgrade: websocket request\n"
            )
        origin = request.headers.get("Origin")
        if self.allowed_origins and origin is not None and origin not in self.allowed_origins:
            return connection.respond(HTTPStatus.FORBIDDEN, f"origin {origin!r} is not allowed (--allowed-origin)\n")
        try:
            if not self.auth.check(_token(request)):
                raise Unauthenticated("missing or wrong token (header 'Authorization: Bearer <token>')")
            self.ctx.admissions.admit(connection, _client_of(connection), time.monotonic(), stream=False)
        except MetabrainError as err:
            return connection.respond(ws_http_status(err), err.message + "\n")
        return None

    def process_response(self, connection: ServerConnection, request: Request, response: Response) -> None:
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            self.ctx.admissions.release(connection)  # the handshake failed: its slot comes back at once

    async def handle(self, ws: ServerConnection) -> None:
        assert isinstance(ws, SessionConnection)
        # Answers are written as they come while nothing waits before them; after an error or a goodbye
        # (or while the writer task has any), they queue behind it in order.
        out: asyncio.Queue[bytes | MetabrainError | object] = asyncio.Queue()

        def send_bytes(data: bytes) -> None:  # a serialized answer (the compiled lane writes them so)
            if not (out.empty() and ws.write_now(data)):
                out.put_nowait(data)

        def send(resp: pb.SessionResponse) -> None:
            send_bytes(resp.SerializeToString())

        def on_message(data: bytes) -> None:
            try:
                handler.on_bytes(data)
            except Exception as exc:
                ws.stop_delivering()
                out.put_nowait(_status_of(exc))

        handler = StreamHandler(
            self.ctx, "websocket", send, out.put_nowait, lambda: out.put_nowait(_END), ws, send_bytes
        )
        writer = asyncio.create_task(_write(ws, out))
        ws.deliver_to(on_message)
        try:
            async for message in ws:
                if isinstance(message, str):
                    raise Malformed("text message received; send SessionRequest protobuf bytes as binary messages")
                handler.on_bytes(message)
                # Yield after every message: one loop pass costs (connections x one message), so the
                # engine's tick and the answers never queue behind a burst from a few connections.
                await asyncio.sleep(0)
            await handler.drain()
        except ConnectionClosed:
            pass
        except Exception as exc:
            out.put_nowait(_status_of(exc))
        finally:
            handler.on_disconnect()
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(_flush(out, writer), timeout=5.0)
            writer.cancel()


GOODBYE_GRACE_S = 0.5
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


def _drop(data: bytes) -> None:
    pass


def _status_of(exc: Exception) -> MetabrainError:
    """What ends a stream whose message handling raised: its own error, or INTERNAL for a bug (logged),
    never no status. Called inside the `except`, so the log has the traceback."""
    if isinstance(exc, MetabrainError):
        return exc
    log.exception("WebSocket stream failed")
    return Internal(f"internal error reading the stream ({type(exc).__name__})")


async def _write(ws: ServerConnection, out: asyncio.Queue[bytes | MetabrainError | object]) -> None:
    """A stream's answers in order; an error is sent and closes it with its code, a goodbye with 1000."""
    try:
        while True:
            item = await out.get()
            if isinstance(item, MetabrainError):
                await ws.send(wire_responses.error(item).SerializeToString())
                await ws.close(ws_close_code(item), ws_reason(item))
                return
            if item is _END:  # a goodbye was acknowledged: the session is over
                # The client closes first, or after GOODBYE_GRACE_S we do: Godot's WebSocketPeer drops a
                # message that lands in the same poll as the close behind it (godotengine/godot#107442),
                # and the acknowledgement is what a client ending its session waits for.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), GOODBYE_GRACE_S)
                await ws.close(1000, "goodbye")
                return
            assert isinstance(item, bytes)
            await ws.send(item)
    except ConnectionClosed:
        return


async def start_ws(
    ctx: ServiceContext,
    host: str,
    port: int,
    auth: TokenAuth,
    tls_files: tuple[str, str] | None = None,
    reuse_port: bool = False,
    allowed_origins: tuple[str, ...] = (),
) -> tuple[Server, int]:
    """allowed_origins: the browser origins whose pages may open a session ('https://game.example');
    empty: any (native clients send no Origin, and are always allowed)."""
    endpoint = _Endpoint(ctx, auth, allowed_origins)
    ssl_ctx = None
    if tls_files is not None:
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(tls_files[0], tls_files[1])
    try:
        server = await serve(
            endpoint.handle,
            host,
            port,
            max_size=ctx.limits.max_message_bytes,
            process_request=endpoint.process_request,
            process_response=endpoint.process_response,
            ssl=ssl_ctx,
            compression=None,
            ping_interval=20,
            ping_timeout=20,
            open_timeout=ctx.limits.hello_timeout_s,
            create_connection=SessionConnection,
            reuse_port=reuse_port,  # front-end processes share the port (front_ends.py)
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OSError(f"cannot listen for WebSocket on {host}:{port}: the port is already in use") from exc
        raise OSError(f"cannot listen for WebSocket on {host}:{port}: {exc.strerror}") from exc
    bound = next(iter(server.sockets)).getsockname()[1]
    return server, int(bound)


async def _flush(out: asyncio.Queue[pb.SessionResponse | MetabrainError | object], writer: asyncio.Task[None]) -> None:
    while not out.empty() and not writer.done():
        await asyncio.sleep(0.001)
