"""The model failing mid-session: designer defaults with an in-stream error, then recovery next tick."""

from __future__ import annotations

import grpc

from sidecar.serving.inprocess import RunningSidecar
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
