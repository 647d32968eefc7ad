"""The gRPC transport: BrainService over grpc.aio, plus health checking and reflection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sidecar.auth import TokenAuth
from sidecar.errors import MetabrainError, Unauthenticated
from sidecar.schema import PROTOCOL_VERSION, SERVICE_NAME, pb, pb_grpc
from sidecar.service import ServiceContext, StreamHandler
from sidecar.transports.status import grpc_status

_EOF = object()


def _token(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key in ("authorization", "x-metabrain-token"):
            return str(value)
    return None


class BrainServicer(pb_grpc.BrainServiceServicer):
    def __init__(self, ctx: ServiceContext, auth: TokenAuth) -> None:
        self.ctx = ctx
        self.auth = auth

    async def GetInfo(self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext) -> pb.GetInfoResponse:
        if not self.auth.check(_token(context)):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token (metadata 'authorization')")
        from sidecar.policies.director import POLICIES

        return pb.GetInfoResponse(
            model_version=self.ctx.info.model_version,
            capabilities=[
                pb.CAPABILITY_NPC_HINTS,
                pb.CAPABILITY_INSIGHT,
                pb.CAPABILITY_EXPLANATIONS,
                pb.CAPABILITY_RECORDING,
            ],
            limits=self.ctx.limits.to_proto(),
            policies=list(POLICIES),
            protocol_version=PROTOCOL_VERSION,
            device=self.ctx.engine.device,
            default_policy=self.ctx.info.default_policy,
        )

    async def Session(
        self, request_iterator: AsyncIterator[pb.SessionRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SessionResponse]:
        if not self.auth.check(_token(context)):
            err = Unauthenticated("missing or wrong token: send metadata 'authorization: Bearer <token>'")
            await context.abort(grpc_status(err), err.message)
        try:
            self.ctx.admit_connection()
        except MetabrainError as err:
            await context.abort(grpc_status(err), err.message)
        queue: asyncio.Queue[object] = asyncio.Queue()
        handler = StreamHandler(self.ctx, "grpc", queue.put_nowait, queue.put_nowait)

        async def read() -> None:
            try:
                async for req in request_iterator:
                    handler.on_request(req)
                    await asyncio.sleep(0)  # one message per loop pass (see ws_server)
                await handler.drain()
                queue.put_nowait(_EOF)
            except MetabrainError as err:
                queue.put_nowait(err)
            except (asyncio.CancelledError, grpc.aio.AioRpcError):
                queue.put_nowait(_EOF)
                raise

        reader = asyncio.create_task(read())
        try:
            while True:
                item = await queue.get()
                if item is _EOF:
                    return
                if isinstance(item, MetabrainError):
                    yield pb.SessionResponse(error=item.to_proto())
                    await context.abort(grpc_status(item), item.message)
                assert isinstance(item, pb.SessionResponse)
                yield item
        finally:
            reader.cancel()
            handler.on_disconnect()


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
    pb_grpc.add_BrainServiceServicer_to_server(BrainServicer(ctx, auth), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    address = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
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
