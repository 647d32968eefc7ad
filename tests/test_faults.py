"""Faults inside the sidecar: the model failing mid-session (designer defaults with an in-stream error,
then recovery next tick), an observer failing as the sweep closes sessions."""

from __future__ import annotations

import time

import grpc

from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.serving.inprocess import RunningSidecar
from sidecar.serving.service import SessionObserver
from sidecar.session import IDLE_TIMEOUT, Session
from sidecar.wire.requests import RequestMessage
from sidecar.wire.responses import Response
from tests.conftest import make_sidecar
from tests.helpers import GrpcSession, expect_fallback_then_error, frame_req, game_frames, hello_req


def test_model_failure_gives_defaults_then_recovers(sidecar: RunningSidecar, channel: grpc.Channel) -> None:
    c = GrpcSession(channel)
    c.send(hello_req(policy="static", params={"level": "0.9"}))
    assert c.recv().WhichOneof("kind") == "welcome"
    frames = game_frames(6, frame_every=6)  # 5 Hz, the model rate: every frame steps the model
    for f in frames[:3]:
        c.send(frame_req(f))
        last = c.recv().guidance
        assert last.sequence == f.sequence
    sidecar.sidecar.engine.runner.fail_next = RuntimeError("CUDA error: out of memory (injected)")
    c.send(frame_req(frames[3]))
    expect_fallback_then_error(c, frames[3], last, frames[3].game_time - frames[2].game_time)
    for f in frames[4:]:  # the next tick steps the model again
        c.send(frame_req(f))
        g2 = c.recv().guidance
        assert not g2.fallback and g2.insights
    c.close()


class _ClosesSeen(SessionObserver):
    def __init__(self) -> None:
        self.closed: list[str] = []

    def on_close(self, session: Session | None, reason: str) -> None:
        self.closed.append(reason)


class _BrokenObserver(_ClosesSeen):
    """An observer with a bug in on_close (a dashboard or exporter a studio added, say)."""

    def on_close(self, session: Session | None, reason: str) -> None:
        super().on_close(session, reason)
        raise RuntimeError("observer bug (injected)")


class _BrokenOnEveryFrame(SessionObserver):
    """An observer with a bug on every request and response (an exporter a studio added, say)."""

    def __init__(self) -> None:
        self.responses = 0

    def on_request(self, session: Session | None, req: RequestMessage, raw: bytes | None) -> None:
        raise RuntimeError("observer bug (injected)")

    def on_response(self, session: Session | None, resp: Response) -> None:
        self.responses += 1
        raise RuntimeError("observer bug (injected)")


def test_an_observer_failing_on_every_frame_costs_no_frame_its_answer(tiny_checkpoint: Checkpoint) -> None:
    """Observer hooks run on every frame (the hot path calls them without building the log's session id
    first): one that raises is logged, and every frame is still answered, with nothing else."""
    sc = make_sidecar(tiny_checkpoint, limits=Limits(max_frames_per_second=1e6))
    broken = _BrokenOnEveryFrame()
    sc.sidecar.ctx.observers[:0] = [broken]
    channel = grpc.insecure_channel(sc.grpc_address)
    try:
        c = GrpcSession(channel)
        c.send(hello_req())
        assert c.recv().WhichOneof("kind") == "welcome"
        frames = game_frames(12)
        for f in frames:
            c.send(frame_req(f))
            answer = c.recv()
            assert answer.WhichOneof("kind") == "guidance" and answer.guidance.sequence == f.sequence
        assert broken.responses == 1 + len(frames)  # the welcome and every answer were observed
        c.close()
    finally:
        channel.close()
        sc.stop()


def test_an_observer_failing_as_the_sweep_closes_idle_sessions_ends_nothing(tiny_checkpoint: Checkpoint) -> None:
    """The sweep called observers unguarded: one raising in on_close killed the sweeper task, and no idle
    or abandoned session was ever freed again. Now every session the sweep ends is freed, every later
    observer still hears it, and later sweeps still run."""
    sc = make_sidecar(
        tiny_checkpoint,
        limits=Limits(idle_timeout_s=0.6, max_frames_per_second=1e6),
        sweep_interval_s=0.1,
    )
    broken, counting = _BrokenObserver(), _ClosesSeen()
    sc.sidecar.ctx.observers[:0] = [broken, counting]  # the broken one first
    channel = grpc.insecure_channel(sc.grpc_address)
    try:
        for wave in range(2):  # two sweeps apart: the second proves the sweeper outlived the first failure
            sessions = [GrpcSession(channel) for _ in range(2)]
            for c in sessions:
                c.send(hello_req())
                assert c.recv().WhichOneof("kind") == "welcome"
                c.send(frame_req(game_frames(1)[0]))
                assert c.recv().WhichOneof("kind") == "guidance"
            deadline = time.monotonic() + 5.0
            while len(counting.closed) < 2 * (wave + 1) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert counting.closed == [IDLE_TIMEOUT] * 2 * (wave + 1)
            assert broken.closed == counting.closed
            assert not sc.sidecar.engine.sessions  # the model state of each was freed
            for c in sessions:
                c.close()
    finally:
        channel.close()
        sc.stop()
