"""Per-connection limits: how many streams may be open, and how fast one stream may send."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from websockets.exceptions import InvalidStatus

from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.serving.inprocess import RunningSidecar
from sidecar.wire.schema import pb
from tests.conftest import make_sidecar
from tests.helpers import GrpcSession, WsSession, frame_req, game_frames, hello_req


def test_max_connections_refuses_the_next_stream_by_name(tiny_checkpoint: Checkpoint) -> None:
    sc = make_sidecar(tiny_checkpoint, limits=Limits(max_connections=2, max_frames_per_second=1e6))
    try:
        ch = grpc.insecure_channel(sc.grpc_address)
        first, second = GrpcSession(ch), WsSession(sc.ws_url)
        for c in (first, second):
            c.send(hello_req())
            assert c.recv().WhichOneof("kind") == "welcome"
        third = GrpcSession(ch)
        third.send(hello_req())
        with pytest.raises(grpc.RpcError) as info:
            third.recv()
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_connections=2" in str(info.value.details())
        with pytest.raises(InvalidStatus) as ws_info:
            WsSession(sc.ws_url)
        assert ws_info.value.response.status_code == 503 and b"max_connections=2" in ws_info.value.response.body
        second.close()  # a slot frees when a stream ends
        deadline = time.time() + 5
        while sc.sidecar.ctx.connections >= 2 and time.time() < deadline:
            time.sleep(0.02)
        again = WsSession(sc.ws_url)
        again.send(hello_req())
        assert again.recv().WhichOneof("kind") == "welcome"
        again.close()
        first.close()
        ch.close()
    finally:
        sc.stop()


@contextmanager
def _stream_at_50_messages_a_second(
    checkpoint: Checkpoint, transport: str
) -> Iterator[tuple[RunningSidecar, GrpcSession | WsSession, pb.Welcome]]:
    """A sidecar whose connections may send 50 messages a second, and one stream welcomed on it."""
    limits = Limits(max_messages_per_second_per_connection=50, max_frames_per_second=1e6)
    sc = make_sidecar(checkpoint, limits=limits)
    ch = grpc.insecure_channel(sc.grpc_address)
    try:
        c = GrpcSession(ch) if transport == "grpc" else WsSession(sc.ws_url)
        c.send(hello_req())
        welcome = c.recv()
        assert welcome.WhichOneof("kind") == "welcome"
        yield sc, c, welcome.welcome
        c.close()
    finally:
        ch.close()
        sc.stop()


@pytest.mark.parametrize("transport", ["grpc", "websocket"])
def test_connection_rate_drops_the_excess_with_one_error_and_keeps_the_stream(
    tiny_checkpoint: Checkpoint, transport: str
) -> None:
    with _stream_at_50_messages_a_second(tiny_checkpoint, transport) as (_, c, _):
        frames = game_frames(201)
        for f in frames[:200]:  # four times the bucket, as fast as possible
            c.send(frame_req(f))
        kinds: list[str] = []
        errors: list[pb.Error] = []
        try:
            while True:
                r = c.recv(timeout=2)
                kinds.append(str(r.WhichOneof("kind")))
                if r.HasField("error"):
                    errors.append(r.error)
        except Exception:
            pass  # quiet: everything sent has been answered or dropped
        answered = kinds.count("guidance") + kinds.count("superseded")
        assert 40 <= answered < 120  # about one second of the rate; the rest dropped
        assert len(errors) == 1 and errors[0].field == "max_messages_per_second_per_connection"
        assert not errors[0].fatal and "=50" in errors[0].message
        time.sleep(0.5)  # the bucket refills; the stream is still open
        c.send(frame_req(frames[200]))
        assert c.recv().guidance.sequence == frames[200].sequence


@pytest.mark.parametrize("transport", ["grpc", "websocket"])
def test_a_goodbye_over_the_connection_rate_still_ends_the_session(tiny_checkpoint: Checkpoint, transport: str) -> None:
    """A client that sent too fast and then says goodbye: the goodbye is not dropped with the excess, so the
    session ends now and as the client said (cut short here), not as a quit when its resume window closes."""
    with _stream_at_50_messages_a_second(tiny_checkpoint, transport) as (sc, c, welcome):
        sid = welcome.session_id
        for f in game_frames(200):  # four times the bucket, as fast as possible: the bucket is empty
            c.send(frame_req(f))
        engine = sc.sidecar.engine
        ended: list[tuple[str, bool]] = []
        leave = engine.leave
        engine.leave = lambda session_id, by_player=True: (
            ended.append((session_id, by_player)),
            leave(session_id, by_player),
        )[-1]  # type: ignore[method-assign]
        c.send(pb.SessionRequest(goodbye=pb.Goodbye(reason="time limit", cut_short=True)))
        reasons = []
        try:
            while True:
                r = c.recv(timeout=2)
                if r.HasField("goodbye"):
                    reasons.append(r.goodbye.reason)
                    break
        except Exception:
            pass
        assert reasons == ["goodbye acknowledged"]
        assert ended == [(sid, False)]  # left the engine, cut short (not a quit)
        assert sid not in engine.sessions


def test_max_connections_holds_for_websocket_handshakes_arriving_together(tiny_checkpoint: Checkpoint) -> None:
    """Handshakes in flight count against max_connections: a burst of clients gets exactly the limit."""
    import asyncio

    from websockets.asyncio.client import connect

    sc = make_sidecar(tiny_checkpoint, limits=Limits(max_connections=3, max_frames_per_second=1e6))

    async def burst() -> tuple[int, list[int]]:
        async def one() -> object:
            try:
                return await connect(sc.ws_url)
            except InvalidStatus as exc:
                return exc.response.status_code

        results = await asyncio.gather(*(one() for _ in range(60)))
        opened = [r for r in results if not isinstance(r, int)]
        for ws in opened:
            await ws.close()  # type: ignore[attr-defined]
        return len(opened), [r for r in results if isinstance(r, int)]

    try:
        opened, refused = asyncio.run(burst())
        assert opened == 3 and refused == [503] * 57
        deadline = time.time() + 5  # every slot comes back once the streams close
        while sc.sidecar.ctx.connections and time.time() < deadline:
            time.sleep(0.02)
        assert sc.sidecar.ctx.admissions.open == 0
    finally:
        sc.stop()


def test_handshakes_in_flight_hold_a_slot_until_they_become_streams_or_time_out() -> None:
    from sidecar.errors import ConnectionLimitExceeded
    from sidecar.serving.admission import Admissions

    limits = Limits(max_connections=2, hello_timeout_s=5.0)
    a = Admissions(limits)
    a.admit("a", "10.0.0.1", 0.0, stream=False)
    a.admit("b", "10.0.0.2", 0.0, stream=False)
    with pytest.raises(ConnectionLimitExceeded, match="open or opening; the limit is max_connections=2"):
        a.admit("c", "10.0.0.3", 0.0)
    a.became_stream("a")
    with pytest.raises(ConnectionLimitExceeded):
        a.admit("c", "10.0.0.3", 1.0)
    a.sweep(6.0)  # "b" never finished its handshake within hello_timeout_s: its slot comes back
    a.admit("c", "10.0.0.3", 6.0, stream=False)
    assert set(a.slots) == {"a", "c"} and a.streams == 1 and a.handshakes == 1


def test_one_client_address_cannot_take_every_slot() -> None:
    from sidecar.errors import ConnectionLimitExceeded
    from sidecar.serving.admission import Admissions, client_of_grpc_peer

    a = Admissions(Limits(max_connections=10, max_connections_per_client=2))
    a.admit(1, "10.0.0.1", 0.0)
    a.admit(2, "10.0.0.1", 0.0)
    with pytest.raises(ConnectionLimitExceeded, match="max_connections_per_client=2") as e:
        a.admit(3, "10.0.0.1", 0.0)
    assert e.value.field == "max_connections_per_client"
    a.admit(4, "10.0.0.2", 0.0)  # another address still gets in
    a.release(1)
    a.admit(5, "10.0.0.1", 0.0)  # a slot released is a slot free
    assert client_of_grpc_peer("ipv4:127.0.0.1:50000") == "127.0.0.1"
    assert client_of_grpc_peer("ipv6:[::1]:50000") == "::1"
