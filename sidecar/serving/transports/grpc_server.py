"""The gRPC transport: BrainService over grpc.aio, plus health checking and reflection."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sidecar.errors import Internal, MetabrainError, Unauthenticated
from sidecar.policies.params import POLICY_NAMES
from sidecar.serving.admission import client_of_grpc_peer
from sidecar.serving.auth import TokenAuth
from sidecar.serving.service import ServiceContext, StreamHandler
from sidecar.serving.transports.status import grpc_status
from sidecar.wire import responses as wire_responses
from sidecar.wire.schema import PROTOCOL_VERSION, SERVICE_NAME, pb

_EOF = object()
log = logging.getLogger("metabrain.grpc")


def _token(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key in ("authorization", "x-metabrain-token"):
            return str(value)
    return None


class BrainServicer:
    """BrainService over raw bytes: Session parses its requests itself (sidecar.protocol.parse_request),
    so bytes that do not parse end the stream with MALFORMED as on WebSocket, and every stream ends
    with a status, whatever went wrong."""

    def __init__(self, ctx: ServiceContext, auth: TokenAuth) -> None:
        self.ctx = ctx
        self.auth = auth

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        if not self.auth.check(_token(context)):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token (metadata 'authorization')")
        return pb.GetInfoResponse(
            model_version=self.ctx.info.model_version,
            capabilities=[
                pb.CAPABILITY_NPC_HINTS,
                pb.CAPABILITY_INSIGHT,
                pb.CAPABILITY_EXPLANATIONS,
                pb.CAPABILITY_RECORDING,
            ],
            limits=wire_responses.limits_message(self.ctx.limits),
            policies=list(POLICY_NAMES),
            protocol_version=PROTOCOL_VERSION,
            device=self.ctx.engine.device,
            default_policy=self.ctx.info.default_policy,
        )

    async def Session(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        if not self.auth.check(_token(context)):
            err = Unauthenticated("missing or wrong token: send metadata 'authorization: Bearer <token>'")
            await context.abort(grpc_status(err), err.message)
        key = object()
        try:
            self.ctx.admissions.admit(key, client_of_grpc_peer(context.peer() or ""), time.monotonic())
        except MetabrainError as err:
            await context.abort(grpc_status(err), err.message)
        queue: asyncio.Queue[object] = asyncio.Queue()
        handler = StreamHandler(
            self.ctx,
            "grpc",
            lambda resp: queue.put_nowait(resp.SerializeToString()),
            queue.put_nowait,
            lambda: queue.put_nowait(_EOF),
            key,
            queue.put_nowait,  # serialized answers (the compiled lane writes them so)
        )

        aborted = False  # set once this stream is ending with an error status of ours

        async def read() -> None:
            try:
                async for data in request_iterator:
                    handler.on_bytes(data)
                    await asyncio.sleep(0)  # one message per loop pass (see ws_server)
                await handler.drain()
                queue.put_nowait(_EOF)
            except MetabrainError as err:
                queue.put_nowait(err)
            except (asyncio.CancelledError, grpc.aio.AioRpcError):
                queue.put_nowait(_EOF)
                raise
            except Exception as exc:  # never leave the stream without a status
                if aborted:  # our own abort ends the request stream too ("Locally aborted"): nothing failed
                    queue.put_nowait(_EOF)
                    return
                log.exception("gRPC stream reader failed")
                queue.put_nowait(Internal(f"internal error reading the stream ({type(exc).__name__})"))

        reader = asyncio.create_task(read())
        try:
            while True:
                item = await queue.get()
                if item is _EOF:
                    return
                if isinstance(item, MetabrainError):
                    yield wire_responses.error(item).SerializeToString()
                    aborted = True
                    await context.abort(grpc_status(item), item.message)
                assert isinstance(item, bytes)
                yield item
        finally:
            reader.cancel()
            handler.on_disconnect()

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                # Raw bytes both ways: requests are parsed by the protocol core, responses serialized here.
                "Session": grpc.stream_stream_rpc_method_handler(self.Session),
                "GetInfo": grpc.unary_unary_rpc_method_handler(
                    self.GetInfo,
                    request_deserializer=pb.GetInfoRequest.FromString,
                    response_serializer=pb.GetInfoResponse.SerializeToString,
                ),
            },
        )


async def start_grpc(
    ctx: ServiceContext,
    host: str,
    port: int,
    auth: TokenAuth,
    tls: tuple[bytes, bytes] | None = None,
    reuse_port: bool = False,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """reuse_port: share the port with other front-end processes (the kernel spreads connections);
    off by default so that a port already in use is an error, not a silent second server."""
    max_bytes = ctx.limits.max_message_bytes
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.so_reuseport", int(reuse_port)),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    server.add_generic_rpc_handlers((BrainServicer(ctx, auth).generic_handler(),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if port and not reuse_port:
        _check_free(host, port, address)  # before gRPC, whose own failure logs a C-core line first
    try:
        if tls is not None:
            creds = grpc.ssl_server_credentials([(tls[1], tls[0])])
            bound = server.add_secure_port(address, creds)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"cannot listen for gRPC on {address}: the port is in use or not allowed ({exc})") from exc
    if bound == 0:
        raise OSError(f"cannot listen for gRPC on {address}: the port is in use or not allowed")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound, health_servicer


def _check_free(host: str, port: int, address: str) -> None:
    """Raise a clear OSError when the port is already taken (the check gRPC would fail later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(f"cannot listen for gRPC on {address}: the port is already in use") from None
            raise OSError(f"cannot listen for gRPC on {address}: {exc.strerror}") from None
