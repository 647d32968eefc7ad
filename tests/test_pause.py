"""A game in its pause menu: it says so (EVENT_TYPE_PAUSE) and may then send nothing for up to
max_pause_s; the session, its model state and its director wait for it. A game that goes quiet without
saying so is closed after idle_timeout_s, as before."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import grpc
import pytest

from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.operations.metrics import SidecarMetrics
from sidecar.serving.inprocess import RunningSidecar
from sidecar.wire.schema import pb
from tests.conftest import make_sidecar
from tests.helpers import GrpcSession, frame_req, game_frames, hello_req

FRAMES = game_frames(6)


def _closed_with(c: GrpcSession) -> str:
    """The message the sidecar closed the stream with (an error response, or the stream's status)."""
    try:
        while True:
            resp = c.recv(timeout=10.0)
            if resp.WhichOneof("kind") == "error":
                return resp.error.message
    except grpc.RpcError as exc:
        return str(exc.details())


@contextlib.contextmanager
def _served(checkpoint: Checkpoint, limits: Limits) -> Iterator[tuple[RunningSidecar, grpc.Channel]]:
    """A sidecar with these limits, sweeping for idle sessions every 0.1 s, and a channel to it."""
    sc = make_sidecar(checkpoint, limits=limits, sweep_interval_s=0.1)
    channel = grpc.insecure_channel(sc.grpc_address)
    try:
        yield sc, channel
    finally:
        channel.close()
        sc.stop()


def _paused_gauge(sc: RunningSidecar) -> float:
    """metabrain_sessions_paused as a scrape would read it."""
    metrics = SidecarMetrics(sc.sidecar.ctx.registry, sc.sidecar.engine, "predictive")
    value = metrics.registry.get_sample_value("metabrain_sessions_paused")
    assert value is not None
    return value


def test_a_paused_session_waits_and_a_quiet_one_is_closed(tiny_checkpoint: Checkpoint) -> None:
    limits = Limits(idle_timeout_s=0.6, max_pause_s=2.5, max_frames_per_second=1e6)
    with _served(tiny_checkpoint, limits) as (sc, channel):
        paused, quiet = GrpcSession(channel), GrpcSession(channel)
        for c in (paused, quiet):
            c.send(hello_req())
            w = c.recv()
            assert w.WhichOneof("kind") == "welcome" and w.welcome.limits.max_pause_s == 2.5  # the game is told
        paused.send(frame_req(FRAMES[0], pb.EVENT_TYPE_PAUSE))
        quiet.send(frame_req(FRAMES[0]))
        for c in (paused, quiet):
            assert c.recv().WhichOneof("kind") == "guidance"
        assert _paused_gauge(sc) == 1  # what an operator sees: one session held through a pause
        time.sleep(1.5)  # past idle_timeout_s, within max_pause_s
        assert "idle_timeout_s" in _closed_with(quiet)
        paused.send(frame_req(FRAMES[1], pb.EVENT_TYPE_RESUME))  # back from the menu: the same session goes on
        g = paused.recv()
        assert g.WhichOneof("kind") == "guidance" and g.guidance.sequence == FRAMES[1].sequence
        assert len(sc.sidecar.engine.sessions) == 1 and _paused_gauge(sc) == 0
        paused.send(frame_req(FRAMES[2], pb.EVENT_TYPE_PAUSE))  # paused again, and never back
        assert paused.recv().WhichOneof("kind") == "guidance"
        started = time.monotonic()
        message = _closed_with(paused)
        assert "max_pause_s" in message and time.monotonic() - started > 2.0, message
        deadline = time.monotonic() + 5.0
        while sc.sidecar.engine.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sc.sidecar.engine.sessions  # its model state was freed
        for c in (paused, quiet):
            c.close()


@pytest.mark.parametrize("events", [(pb.EVENT_TYPE_PAUSE, pb.EVENT_TYPE_RESUME), ()])
def test_a_session_not_paused_is_closed_after_idle_timeout(
    tiny_checkpoint: Checkpoint, events: tuple[int, ...]
) -> None:
    """A frame whose last pause event is a RESUME, or that has none, leaves idle_timeout_s in force."""
    limits = Limits(idle_timeout_s=0.5, max_pause_s=60.0, max_frames_per_second=1e6)
    with _served(tiny_checkpoint, limits) as (_, channel):
        c = GrpcSession(channel)
        c.send(hello_req())
        assert c.recv().WhichOneof("kind") == "welcome"
        c.send(frame_req(FRAMES[0], *events))
        assert c.recv().WhichOneof("kind") == "guidance"
        started = time.monotonic()
        assert "idle_timeout_s" in _closed_with(c)
        assert time.monotonic() - started < 5.0
        c.close()
