"""The two baselines `metabrain bench` runs beside the sidecar, each in a process of its own.

- **echo**: the transport ceiling. Answers each frame with a guidance of realistic size carrying the
  frame's sequence, with no protobuf parsing and no model: gRPC through a generic bytes handler,
  WebSocket through the same `websockets` server and connection class the sidecar uses.
- **naive**: what a user writes first. The sidecar's own protocol code (validation, featurizer),
  model and director, stepped synchronously for each frame inside its handler (`Engine.step_now`
  with that one frame): no batching across sessions, no latest-wins.

    python -m sim.bench.servers echo --ports-file ports.txt
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import AsyncIterator

import grpc
from websockets.asyncio.server import ServerConnection, serve

from sidecar.engine.engine import Engine, EngineConfig
from sidecar.errors import MetabrainError
from sidecar.limits import Limits
from sidecar.model.checkpoint import load_checkpoint
from sidecar.protocol import Connection, FrameAccepted, ServerInfo, Welcomed, parse_request
from sidecar.serving import event_loop
from sidecar.serving.ports_file import write_ports_file
from sidecar.serving.transports.ws_server import SessionConnection
from sidecar.session import SessionRegistry
from sidecar.wire import responses as wire_responses
from sidecar.wire.schema import SERVICE_NAME, pb
from sim.game import KNOBS
from sim.loadgen import varint


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7


class EchoCodec:
    """Bytes in, bytes out: a welcome for a hello, a guidance with the frame's sequence for a frame."""

    def __init__(self) -> None:
        welcome = pb.Welcome(session_id="echo", model_version="echo", protocol_version=1)
        self.welcome = pb.SessionResponse(welcome=welcome).SerializeToString()
        g = pb.Guidance(model_version="echo", policy="echo")  # the size of a real answer: knobs, hints, insight
        for k in KNOBS:
            g.knobs.add(name=k.name, value=k.default_value)
        for i in range(4):
            g.npc_hints.add(npc_id=i, tactic=pb.NPC_TACTIC_ADVANCE, aggression=0.5)
        g.insights.add(player_id="p1", p_fail=0.1, p_quit=0.05, frustration=0.2, engagement=0.6, skill=0.5)
        self.body = g.SerializeToString()

    def answer(self, data: bytes) -> bytes:
        if data[:1] != b"\x12":  # not a frame: a hello (or anything else) gets the welcome
            return self.welcome
        _, i = _read_varint(data, 1)
        if data[i : i + 1] == b"\x08":
            seq, _ = _read_varint(data, i + 1)
        else:  # sequence not first: parse properly
            seq = pb.SessionRequest.FromString(data).frame.sequence
        inner = b"\x08" + varint(seq) + self.body
        return b"\x12" + varint(len(inner)) + inner


class NaiveCodec:
    """One connection's protocol state, and the model stepped for each frame as it arrives."""

    def __init__(self, registry: SessionRegistry, engine: Engine, info: ServerInfo) -> None:
        self.conn = Connection(registry, info)
        self.engine = engine

    def answer(self, data: bytes, now: float) -> list[bytes]:
        try:
            event = self.conn.receive(parse_request(data, self.conn.limits), now)
        except MetabrainError as err:
            return [wire_responses.error(err).SerializeToString()]
        if isinstance(event, Welcomed):
            self.engine.join(event.session)
            return [pb.SessionResponse(welcome=event.welcome).SerializeToString()]
        if isinstance(event, FrameAccepted):
            out = self.engine.step_now([(event.session, event.frame)])
            return [r.SerializeToString() for r in out[event.session.session_id]]
        return []


async def run(kind: str, host: str, grpc_port: int, ws_port: int, ports_file: str | None) -> None:
    loop = asyncio.get_running_loop()
    echo = EchoCodec()
    if kind == "naive":
        checkpoint = load_checkpoint(None)
        engine = Engine(checkpoint, EngineConfig(device="cpu"))
        limits = Limits(max_frames_per_second=1e6)
        registry = SessionRegistry(limits)
        info = ServerInfo(checkpoint.version, "predictive")

    def codec() -> object:
        return echo if kind == "echo" else NaiveCodec(registry, engine, info)

    def respond(c: object, data: bytes) -> list[bytes]:
        if isinstance(c, EchoCodec):
            return [c.answer(data)]
        assert isinstance(c, NaiveCodec)
        return c.answer(data, loop.time())

    async def session(
        request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        c = codec()
        async for data in request_iterator:
            for out in respond(c, data):
                yield out

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    handler = grpc.method_handlers_generic_handler(
        SERVICE_NAME, {"Session": grpc.stream_stream_rpc_method_handler(session)}
    )
    server.add_generic_rpc_handlers((handler,))
    bound_grpc = server.add_insecure_port(f"{host}:{grpc_port}")
    await server.start()

    async def ws_handler(ws: ServerConnection) -> None:
        # The sidecar's connection class: each message answered as it is parsed (ws_server.py), so
        # that the comparison measures the sidecar's work, not a different way of moving bytes.
        assert isinstance(ws, SessionConnection)
        c = codec()

        def on_message(data: bytes) -> None:
            for out in respond(c, data):
                ws.write_now(out)

        ws.deliver_to(on_message)
        async for data in ws:  # what does not come that way (a fragmented message)
            assert isinstance(data, bytes)
            for out in respond(c, data):
                await ws.send(out)

    ws_server = await serve(
        ws_handler, host, ws_port, compression=None, max_size=2**20, create_connection=SessionConnection
    )
    bound_ws = next(iter(ws_server.sockets)).getsockname()[1]
    print(f"{kind} serving grpc={host}:{bound_grpc} ws={host}:{bound_ws}", flush=True)
    if ports_file:
        write_ports_file(ports_file, {"grpc": bound_grpc, "ws": bound_ws})
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    ws_server.close()
    await server.stop(0)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    p.add_argument("kind", choices=["echo", "naive"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--grpc-port", type=int, default=0)
    p.add_argument("--ws-port", type=int, default=0)
    p.add_argument("--ports-file")
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    event_loop.run(run(a.kind, a.host, a.grpc_port, a.ws_port, a.ports_file))
    os._exit(0)


if __name__ == "__main__":
    main()
