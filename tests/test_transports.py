"""The real server on port 0, real gRPC and WebSocket clients."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from websockets.exceptions import ConnectionClosed

from sidecar.serving.inprocess import RunningSidecar
from sidecar.wire.frames import to_tables
from sidecar.wire.schema import SERVICE_NAME, pb, pb_grpc
from tests.helpers import GrpcSession, WsSession, frame_req, game_frames, hello_req

FRAMES = game_frames(600)


def _open(client: GrpcSession | WsSession, **hello_kw: object) -> pb.Welcome:
    client.send(hello_req(**hello_kw))
    resp = client.recv()
    assert resp.WhichOneof("kind") == "welcome", resp
    return resp.welcome


def _guidance_for(client: GrpcSession | WsSession, seq: int) -> pb.Guidance:
    while True:
        resp = client.recv()
        kind = resp.WhichOneof("kind")
        if kind == "guidance":
            assert resp.guidance.sequence == seq
            return resp.guidance
        raise AssertionError(f"expected guidance for {seq}, got {resp}")


def _p_fail(g: pb.Guidance) -> float:
    """The insight's p_fail; -1 before the session's first model step (one model period in: no
    prediction yet, the knobs are the designer's)."""
    return g.insights[0].p_fail if g.insights else -1.0


FIRST_STEP_S = 0.2  # the bundled model's clock: 5 Hz, from game time 0


def _clients(sidecar: RunningSidecar, channel: grpc.Channel) -> dict[str, GrpcSession | WsSession]:
    return {"grpc": GrpcSession(channel), "websocket": WsSession(sidecar.ws_url)}


@pytest.mark.parametrize("transport", ["grpc", "websocket"])
def test_600_frames_get_600_guidance(sidecar: RunningSidecar, channel: grpc.Channel, transport: str) -> None:
    client = _clients(sidecar, channel)[transport]
    welcome = _open(client)
    assert welcome.session_id and welcome.resume_token
    assert "untrained" in welcome.model_version
    seqs = []
    for f in FRAMES:
        client.send(frame_req(f))
        g = _guidance_for(client, f.sequence)
        seqs.append(g.sequence)
        names = {k.name for k in g.knobs}
        assert names == {"enemy_accuracy", "enemy_damage", "enemy_speed", "spawn_rate"}
        if f.game_time >= FIRST_STEP_S - 1e-6:
            assert g.insights and g.insights[0].player_id == "p1"
            assert 0.0 <= g.insights[0].p_fail <= 1.0
    assert seqs == [f.sequence for f in FRAMES]
    client.send(pb.SessionRequest(goodbye=pb.Goodbye(reason="done")))
    assert client.recv().WhichOneof("kind") == "goodbye"
    client.close()


@pytest.mark.parametrize("transport", ["grpc", "websocket"])
def test_table_frames_are_served(sidecar: RunningSidecar, channel: grpc.Channel, transport: str) -> None:
    """Frames in the table form (what the engine plugins send): guidance and hints for the table's NPCs;
    a malformed table is refused by name and the session goes on."""
    client = _clients(sidecar, channel)[transport]
    _open(client)
    hinted: set[int] = set()
    for i, f in enumerate(FRAMES[:120]):
        t = to_tables(f)
        if i == 60:
            bad = pb.Frame()
            bad.CopyFrom(t)
            bad.player_table.values = bad.player_table.values[:-4]
            client.send(frame_req(bad))
            err = client.recv().error
            assert err.code == pb.ERROR_CODE_INVALID_ARGUMENT and not err.fatal
            assert err.field == "frame.player_table.values" and "76 bytes" in err.message
        client.send(frame_req(t))
        g = _guidance_for(client, f.sequence)
        assert len(g.knobs) == 4 and (f.game_time < FIRST_STEP_S - 1e-6 or g.insights[0].player_id == "p1")
        ids = set(np.frombuffer(t.npc_table.npc_ids, "<u4").tolist())
        assert {h.npc_id for h in g.npc_hints} <= ids
        hinted |= {h.npc_id for h in g.npc_hints}
    assert len(hinted) >= 3
    client.close()


@pytest.mark.parametrize("transport", ["grpc", "websocket"])
def test_burst_is_answered_latest_wins(sidecar: RunningSidecar, channel: grpc.Channel, transport: str) -> None:
    """Frames sent faster than the model steps: each gets exactly one guidance or superseded, the last guidance."""
    client = _clients(sidecar, channel)[transport]
    _open(client)
    frames = FRAMES[:200]
    for f in frames:
        client.send(frame_req(f))
    answered: dict[int, str] = {}
    while len(answered) < len(frames):
        resp = client.recv()
        kind = resp.WhichOneof("kind")
        seq = resp.guidance.sequence if kind == "guidance" else resp.superseded.sequence
        assert kind in ("guidance", "superseded")
        assert seq not in answered
        answered[seq] = kind
        if kind == "superseded":
            assert resp.superseded.by_sequence > seq
    assert answered[frames[-1].sequence] == "guidance"
    client.close()


def test_sessions_do_not_share_state(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    # At the model's rate (5 Hz) every frame steps, whatever phase each session's clock drew.
    a_frames, b_frames = game_frames(40, seed=5, frame_every=6), game_frames(40, seed=9, frame_every=6)

    def run_alone(frames: list[pb.Frame]) -> list[float]:
        c = GrpcSession(channel)
        _open(c)
        out = []
        for f in frames:
            c.send(frame_req(f))
            out.append(_p_fail(_guidance_for(c, f.sequence)))
        c.close()
        return out

    alone_a = run_alone(a_frames)
    a, b = GrpcSession(channel), WsSession(sidecar.ws_url)
    _open(a)
    _open(b)
    together_a = []
    for fa, fb in zip(a_frames, b_frames, strict=True):
        a.send(frame_req(fa))
        b.send(frame_req(fb))
        together_a.append(_p_fail(_guidance_for(a, fa.sequence)))
        _guidance_for(b, fb.sequence)
    assert together_a == pytest.approx(alone_a, abs=1e-5)
    a.close()
    b.close()


@pytest.mark.parametrize("transport", ["grpc", "websocket"])
def test_resume_continues_the_session(sidecar: RunningSidecar, channel: grpc.Channel, transport: str) -> None:
    frames = game_frames(30, seed=3, frame_every=6)  # 5 Hz: the reference steps the same frames whatever its phase
    ref = GrpcSession(channel)
    _open(ref)
    expected = []
    for f in frames:
        ref.send(frame_req(f))
        expected.append(_p_fail(_guidance_for(ref, f.sequence)))
    ref.close()

    first = _clients(sidecar, channel)[transport]
    welcome = _open(first)
    got = []
    for f in frames[:15]:
        first.send(frame_req(f))
        got.append(_p_fail(_guidance_for(first, f.sequence)))
    first.close()  # dropped without a goodbye
    second = _clients(sidecar, channel)[transport]
    resumed = _open(second, resume_token=welcome.resume_token)
    assert resumed.resumed and not resumed.state_reset
    assert resumed.session_id == welcome.session_id
    assert resumed.last_sequence == frames[14].sequence
    for f in frames[15:]:
        second.send(frame_req(f))
        got.append(_p_fail(_guidance_for(second, f.sequence)))
    assert got == pytest.approx(expected, abs=1e-5)  # the recurrent state carried over
    second.close()


def test_bad_resume_token_is_refused(channel: grpc.Channel) -> None:
    c = GrpcSession(channel)
    c.send(hello_req(resume_token="deadbeef.0000"))
    resp = c.recv()
    assert resp.error.code == pb.ERROR_CODE_RESUME_REJECTED and resp.error.fatal
    with pytest.raises(grpc.RpcError) as info:
        c.recv()
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


class Healthy:
    """A session that keeps streaming while bad input hits the server; counts its guidance."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.client = GrpcSession(channel)
        _open(self.client)
        self.frames = iter(game_frames(400, seed=11))

    def tick(self) -> None:
        f = next(self.frames)
        self.client.send(frame_req(f))
        _guidance_for(self.client, f.sequence)


def _nan_frame() -> pb.Frame:
    f = pb.Frame()
    f.CopyFrom(FRAMES[0])
    f.sequence = 1
    f.players[0].position.x = math.nan
    return f


def test_bad_input_on_grpc(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    healthy = Healthy(channel)
    healthy.tick()

    # A frame before the hello ends the stream with FAILED_PRECONDITION.
    c = GrpcSession(channel)
    c.send(frame_req(FRAMES[0]))
    assert c.recv().error.code == pb.ERROR_CODE_FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as info:
        c.recv()
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    healthy.tick()

    # A wrong protocol version.
    c = GrpcSession(channel)
    req = hello_req()
    req.hello.protocol_version = 99
    c.send(req)
    err = c.recv().error
    assert err.code == pb.ERROR_CODE_UNSUPPORTED_VERSION and err.field == "hello.protocol_version"
    with pytest.raises(grpc.RpcError):
        c.recv()
    healthy.tick()

    # NaN and too many NPCs: in-stream errors naming the field; the session goes on.
    c = GrpcSession(channel)
    _open(c)
    c.send(frame_req(_nan_frame()))
    err = c.recv().error
    assert err.code == pb.ERROR_CODE_INVALID_ARGUMENT and not err.fatal
    assert err.field == "frame.players[0].position.x" and "finite" in err.message
    healthy.tick()
    many = pb.Frame()
    many.CopyFrom(FRAMES[1])
    for i in range(40):
        many.npcs.add(npc_id=1000 + i)
    c.send(frame_req(many))
    err = c.recv().error
    assert err.code == pb.ERROR_CODE_LIMIT_EXCEEDED and "max_npcs_per_frame=32" in err.message
    healthy.tick()
    c.send(frame_req(FRAMES[2]))
    assert _guidance_for(c, FRAMES[2].sequence).sequence == FRAMES[2].sequence
    # A duplicate sequence is refused in-stream too.
    c.send(frame_req(FRAMES[2]))
    assert c.recv().error.code == pb.ERROR_CODE_STALE_SEQUENCE
    healthy.tick()

    # An oversized message: RESOURCE_EXHAUSTED from gRPC itself.
    big = pb.Frame()
    big.CopyFrom(FRAMES[3])
    big.players[0].player_id = "x" * 40000
    c.send(frame_req(big))
    with pytest.raises(grpc.RpcError) as info:
        while True:
            c.recv()
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    healthy.tick()
    healthy.tick()


def test_bad_input_on_websocket(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    healthy = Healthy(channel)
    healthy.tick()

    c = WsSession(sidecar.ws_url)
    c.send_bytes(os.urandom(64) + b"\xff\xff\xff")
    resp = c.recv()
    assert resp.error.code == pb.ERROR_CODE_MALFORMED and resp.error.fatal
    with pytest.raises(ConnectionClosed) as info:
        c.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4000 + pb.ERROR_CODE_MALFORMED
    healthy.tick()

    c = WsSession(sidecar.ws_url)
    c.send(frame_req(FRAMES[0]))
    assert c.recv().error.code == pb.ERROR_CODE_FAILED_PRECONDITION
    with pytest.raises(ConnectionClosed) as info:
        c.recv()
    assert info.value.rcvd is not None and "before hello" in info.value.rcvd.reason
    healthy.tick()

    c = WsSession(sidecar.ws_url)
    _open(c)
    c.send(frame_req(_nan_frame()))
    assert c.recv().error.field == "frame.players[0].position.x"
    c.send(frame_req(FRAMES[1]))
    _guidance_for(c, FRAMES[1].sequence)
    healthy.tick()
    c.send_bytes(b"\x12" + b"\xff" * 20000)  # over max_message_bytes (16 KiB)
    with pytest.raises(ConnectionClosed) as info:
        while True:
            c.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    healthy.tick()
    healthy.tick()


def test_websocket_fragmented_and_text_messages(sidecar: RunningSidecar) -> None:
    """Whole binary messages are handled as they are parsed; a message sent in fragments goes the
    library's way, and so does every message after it: all are answered, in order. A text message is
    refused, naming what to send."""
    c = WsSession(sidecar.ws_url)
    _open(c)
    data = [frame_req(f).SerializeToString() for f in FRAMES[:6]]
    c.send_bytes(data[0])
    c.ws.send([data[1][:5], data[1][5:17], data[1][17:]])  # one message in three fragments
    for d in data[2:]:
        c.send_bytes(d)
    answered = []
    for _ in FRAMES[:6]:  # each guided, or superseded by a newer one (latest wins), in order
        resp = c.recv()
        answered.append(resp.guidance.sequence if resp.HasField("guidance") else resp.superseded.sequence)
    assert answered == [f.sequence for f in FRAMES[:6]]
    c.ws.send("hello as text")
    err = c.recv().error
    assert err.code == pb.ERROR_CODE_MALFORMED and "binary messages" in err.message
    with pytest.raises(ConnectionClosed):
        c.recv()
    c.close()


def _masked(payload: bytes) -> bytes:
    """One binary WebSocket message as a client sends it (masked), payload under 64 KiB."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x82, 0x80 | n]) if n < 126 else bytes([0x82, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _server_message(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
    """The next binary message from the server (unmasked), and what was read past it."""
    while len(buf) < 4:
        buf += sock.recv(65536)
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        n, at = int.from_bytes(buf[2:4], "big"), 4
    while len(buf) < at + n:
        buf += sock.recv(65536)
    assert buf[0] == 0x82, buf[:2]
    return buf[at : at + n], buf[at + n :]


def test_a_hello_in_the_same_packet_as_the_upgrade_is_answered(sidecar: RunningSidecar) -> None:
    """A client that sends its hello and first frame right behind the upgrade request, before the
    handshake's answer (they arrive with it, before the stream's handler exists): both are answered,
    in order."""
    port = int(sidecar.ws_url.rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        upgrade = (
            "GET /metabrain/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        sock.sendall(
            upgrade.encode()
            + _masked(hello_req().SerializeToString())
            + _masked(frame_req(FRAMES[0]).SerializeToString())
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        data, buf = _server_message(sock, buf)
        assert pb.SessionResponse.FromString(data).WhichOneof("kind") == "welcome"
        data, buf = _server_message(sock, buf)
        assert pb.SessionResponse.FromString(data).guidance.sequence == FRAMES[0].sequence


def test_health_and_reflection(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE_NAME):
        status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    reqs = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    services = {s.name for r in stub.ServerReflectionInfo(reqs, timeout=5) for s in r.list_services_response.service}
    assert SERVICE_NAME in services
    info = pb_grpc.BrainServiceStub(channel).GetInfo(pb.GetInfoRequest(), timeout=5)
    assert info.limits.max_npcs_per_frame == 32 and "predictive" in info.policies and info.device == "cpu"


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "sidecar.cli", "serve", "--grpc-port", "off", "--ws-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert f"127.0.0.1:{port}" in proc.stderr and "in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_after_a_goodbye_the_client_may_close_first_on_websocket(sidecar: RunningSidecar) -> None:
    """Godot's WebSocketPeer drops a message that lands in the same poll as the close behind it
    (godotengine/godot#107442), so the sidecar leaves the client time to read the goodbye's
    acknowledgement and close first, and closes itself (1000 "goodbye") only after GOODBYE_GRACE_S."""
    from sidecar.serving.transports.ws_server import GOODBYE_GRACE_S

    for client_closes in (True, False):
        c = WsSession(sidecar.ws_url)
        c.send(hello_req())
        assert c.recv().WhichOneof("kind") == "welcome"
        c.send(frame_req(game_frames(1)[0]))
        assert c.recv().WhichOneof("kind") == "guidance"
        c.send(pb.SessionRequest(goodbye=pb.Goodbye(reason="done")))
        acked = c.recv()
        t0 = time.monotonic()
        assert acked.WhichOneof("kind") == "goodbye"
        if client_closes:
            time.sleep(GOODBYE_GRACE_S / 2)  # the connection is still open: ours to close
            c.ws.close()
            assert c.ws.protocol.close_rcvd_then_sent is False  # we closed first; the sidecar answered
            assert c.ws.close_code == 1000
        else:
            with pytest.raises(ConnectionClosed) as closed:
                c.ws.recv(timeout=5)
            waited = time.monotonic() - t0
            rcvd = closed.value.rcvd
            assert rcvd is not None and (rcvd.code, rcvd.reason) == (1000, "goodbye")
            assert waited >= GOODBYE_GRACE_S * 0.8, f"closed {waited:.2f} s after the acknowledgement"
        c.close()
