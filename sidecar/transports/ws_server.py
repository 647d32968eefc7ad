"""The WebSocket transport: the same SessionRequest/SessionResponse envelopes as binary messages."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
import time
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sidecar.auth import TokenAuth
from sidecar.errors import Malformed, MetabrainError, Unauthenticated
from sidecar.schema import pb
from sidecar.service import ServiceContext, StreamHandler
from sidecar.transports.status import ws_close_code, ws_http_status, ws_reason

WS_PATH = "/metabrain/v1/session"


def _token(request: Request) -> str | None:
    header = request.headers.get("Authorization") or request.headers.get("X-Metabrain-Token")
    if header:
        return header
    query = parse_qs(urlparse(request.path).query)
    tokens = query.get("token")
    return tokens[0] if tokens else None


async def start_ws(
    ctx: ServiceContext,
    host: str,
    port: int,
    auth: TokenAuth,
    tls_files: tuple[str, str] | None = None,
    reuse_port: bool = False,
) -> tuple[Server, int]:
    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        try:
            if not auth.check(_token(request)):
                raise Unauthenticated("missing or wrong token (header 'Authorization: Bearer <token>')")
            ctx.admit_connection(connection, time.monotonic())
        except MetabrainError as err:
            return connection.respond(ws_http_status(err), err.message + "\n")
        return None

    async def handle(ws: ServerConnection) -> None:
        out: asyncio.Queue[pb.SessionResponse | MetabrainError] = asyncio.Queue()
        ctx.handshake_done(ws)  # the slot it held passes to the stream
        handler = StreamHandler(ctx, "websocket", out.put_nowait, out.put_nowait)

        async def write() -> None:
            try:
                while True:
                    item = await out.get()
                    if isinstance(item, MetabrainError):
                        await ws.send(pb.SessionResponse(error=item.to_proto()).SerializeToString())
                        await ws.close(ws_close_code(item), ws_reason(item))
                        return
                    await ws.send(item.SerializeToString())
            except ConnectionClosed:
                return

        writer = asyncio.create_task(write())
        try:
            async for message in ws:
                if isinstance(message, str):
                    raise Malformed("text message received; send SessionRequest protobuf bytes as binary messages")
                handler.on_bytes(message)
                # Yield after every message: one loop pass costs (connections x one message), so the
                # engine's tick and the answers never queue behind a burst from a few connections.
                await asyncio.sleep(0)
            await handler.drain()
        except MetabrainError as err:
            out.put_nowait(err)
        except ConnectionClosed:
            pass
        finally:
            handler.on_disconnect()
            with contextlib.suppress(TimeoutError, ConnectionClosed):
                await asyncio.wait_for(_flush(out, writer), timeout=5.0)
            writer.cancel()

    ssl_ctx = None
    if tls_files is not None:
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.load_cert_chain(tls_files[0], tls_files[1])
    try:
        server = await serve(
            handle,
            host,
            port,
            max_size=ctx.limits.max_message_bytes,
            process_request=process_request,
            ssl=ssl_ctx,
            compression=None,
            ping_interval=20,
            ping_timeout=20,
            reuse_port=reuse_port,  # front-end processes share the port (front_ends.py)
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise OSError(f"cannot listen for WebSocket on {host}:{port}: the port is already in use") from exc
        raise OSError(f"cannot listen for WebSocket on {host}:{port}: {exc.strerror}") from exc
    bound = next(iter(server.sockets)).getsockname()[1]
    return server, int(bound)


async def _flush(out: asyncio.Queue[pb.SessionResponse | MetabrainError], writer: asyncio.Task[None]) -> None:
    while not out.empty() and not writer.done():
        await asyncio.sleep(0.001)
