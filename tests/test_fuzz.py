"""Fuzzing both transports with random bytes and mutated valid messages while a healthy session runs.

The server must never crash and the healthy session must never miss guidance. CI sends a few thousand
messages; `METABRAIN_FUZZ_MESSAGES=100000 pytest tests/test_fuzz.py` runs the full count.
"""

from __future__ import annotations

import os
import random

import grpc
from websockets.exceptions import ConnectionClosed, InvalidStatus

from sidecar.serving.inprocess import RunningSidecar
from sidecar.wire.schema import pb
from tests.helpers import GrpcSession, WsSession, frame_req, game_frames, hello_req

MESSAGES = int(os.environ.get("METABRAIN_FUZZ_MESSAGES", "2000"))
VALID = [hello_req().SerializeToString(), *(frame_req(f).SerializeToString() for f in game_frames(20))]


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if op < 0.4 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.6 and b:
            del b[rng.randrange(len(b))]
        elif op < 0.8:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        else:
            cut = rng.randrange(len(b) + 1)
            b = b[:cut]
    return bytes(b)


def fuzz_input(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return rng.randbytes(rng.randint(0, 300))
    return mutate(rng.choice(VALID), rng)


def test_fuzz_both_transports(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    rng = random.Random(20261128)
    healthy = GrpcSession(channel)
    healthy.send(hello_req())
    assert healthy.recv().WhichOneof("kind") == "welcome"
    frames = iter(game_frames(MESSAGES // 5 + 50, seed=3))
    sent = answered = 0
    ws: WsSession | None = None
    ws_messages = 0
    i = 0
    while ws_messages < MESSAGES:  # messages delivered to the server, not attempts
        i += 1
        if ws is None:
            ws = WsSession(sidecar.ws_url)
            if rng.random() < 0.5:  # half the connections get a valid hello first, to fuzz deeper states
                ws.send(hello_req())
        try:
            ws.send_bytes(fuzz_input(rng))
            ws_messages += 1
        except (ConnectionClosed, InvalidStatus):
            ws.close()
            ws = None
        if i % 10 == 0:
            # The healthy session: one frame, one guidance, every time.
            f = next(frames)
            healthy.send(frame_req(f))
            sent += 1
            resp = healthy.recv(timeout=10)
            assert resp.WhichOneof("kind") == "guidance" and resp.guidance.sequence == f.sequence
            answered += 1
        if i % 500 == 499 and ws is not None:
            ws.close()
            ws = None
    # Also over gRPC: mutated messages that still parse as SessionRequest (bytes that do not parse are
    # refused by the gRPC library before our code runs).
    grpc_messages = 0
    for _ in range(min(MESSAGES // 10, 500)):
        c = GrpcSession(channel)
        for _ in range(rng.randint(1, 5)):
            data = mutate(rng.choice(VALID), rng)
            try:
                c.send(pb.SessionRequest.FromString(data))
                grpc_messages += 1
            except Exception:
                continue
        c.close()
    f = next(frames)
    healthy.send(frame_req(f))
    assert healthy.recv(timeout=10).guidance.sequence == f.sequence
    print(
        f"fuzz: {ws_messages} WebSocket + {grpc_messages} gRPC messages fuzzed; "
        f"healthy session {answered + 1}/{sent + 1} guidance"
    )
    assert answered == sent and ws_messages >= MESSAGES
    assert sidecar.thread.is_alive()
