"""Test helpers: frames from the simulator, and synchronous session clients for both transports."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

import grpc
from websockets.sync.client import ClientConnection, connect

from sidecar.wire.schema import pb, pb_grpc
from sim.game import Action, Game, hello

__all__ = ["GrpcSession", "WsSession", "game_frames", "hello"]


def game_frames(n: int, seed: int = 1, frame_every: int = 3) -> list[pb.Frame]:
    """n consecutive frames of a simulated session (a scripted, aggressive player)."""
    g = Game(seed)
    out = []
    for _ in range(n):
        for _ in range(frame_every):
            t = g.nearest_npc()
            g.step(Action(move_x=0.4, aim_at=t.npc_id if t else -1, shoot=True, hit_chance=0.4))
        out.append(g.frame(frame_every / 30.0))  # frame_every=6: 5 Hz, the rate the model steps at
    return out


class GrpcSession:
    """A bidirectional Session stream driven from a test: send() never waits for answers."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._q: queue.Queue[pb.SessionRequest | None] = queue.Queue()
        stub = pb_grpc.BrainServiceStub(channel)
        self.call = stub.Session(self._requests(), metadata=metadata)
        self.responses: queue.Queue[pb.SessionResponse | BaseException] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _requests(self) -> Iterator[pb.SessionRequest]:
        while True:
            item = self._q.get()
            if item is None:
                return
            yield item

    def _read(self) -> None:
        try:
            for resp in self.call:
                self.responses.put(resp)
        except BaseException as exc:  # the status that ended the stream
            self.responses.put(exc)

    def send(self, req: pb.SessionRequest) -> None:
        self._q.put(req)

    def close(self) -> None:
        self._q.put(None)

    def recv(self, timeout: float = 10.0) -> pb.SessionResponse:
        item = self.responses.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item


class WsSession:
    def __init__(self, url: str, headers: dict[str, str] | None = None, **kw: object) -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(url, additional_headers=headers or {}, max_size=2**20, **kw)  # type: ignore[arg-type]
        )

    def send(self, req: pb.SessionRequest) -> None:
        self.ws.send(req.SerializeToString())

    def send_bytes(self, data: bytes) -> None:
        self.ws.send(data)

    def recv(self, timeout: float = 10.0) -> pb.SessionResponse:
        data = self.ws.recv(timeout=timeout)
        assert isinstance(data, bytes)
        return pb.SessionResponse.FromString(data)

    def close(self) -> None:
        self._stack.close()


def hello_req(**kw: object) -> pb.SessionRequest:
    return pb.SessionRequest(hello=hello(**kw))  # type: ignore[arg-type]


def frame_req(frame: pb.Frame, *events: int) -> pb.SessionRequest:
    """The frame as a request (a copy), with events of these types (EVENT_TYPE_*) added at its game time."""
    req = pb.SessionRequest(frame=frame)
    for t in events:
        req.frame.events.add(type=t, game_time=req.frame.game_time)  # type: ignore[arg-type]
    return req


def expect_fallback_then_error(client: GrpcSession, frame: pb.Frame, before: pb.Guidance, dt: float) -> None:
    """The answer to a frame whose model step failed: the knobs move from `before` toward the
    designer's defaults, no faster than each knob's max_change_per_second over `dt` game seconds,
    then a MODEL_UNAVAILABLE error."""
    from sim.game import KNOBS

    g = client.recv().guidance
    err = client.recv().error
    assert g.fallback and g.sequence == frame.sequence
    was = {k.name: k.value for k in before.knobs}
    now = {k.name: k.value for k in g.knobs}
    for spec in KNOBS:
        step = spec.max_change_per_second * dt + 1e-5
        moved = now[spec.name] - was[spec.name]
        toward = spec.default_value - was[spec.name]
        assert abs(moved) <= step, (spec.name, moved, step)  # never faster than its rate
        assert moved * toward >= 0 and abs(moved) <= abs(toward) + 1e-5, (
            spec.name,
            moved,
            toward,
        )  # toward the default
        assert abs(moved) >= min(abs(toward), step) - 1e-4  # and as fast as the rate allows
    assert err.code == pb.ERROR_CODE_MODEL_UNAVAILABLE and not err.fatal and "out of memory" in err.message
