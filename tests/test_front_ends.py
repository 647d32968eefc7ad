"""`metabrain serve --front-ends N`: front-end processes sharing the ports, one model runner process."""

from __future__ import annotations

import signal
from pathlib import Path

import grpc

from sidecar.wire.schema import pb
from tests.helpers import GrpcSession, WsSession, frame_req, game_frames, hello_req
from tests.processes import SidecarProcess, wait_for

Session = GrpcSession | WsSession


def _workers(sc: SidecarProcess) -> list[int]:
    """The processes `serve` spawned to work (not multiprocessing's resource tracker)."""
    return [p for p in sc.processes()[1:] if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _opened(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("metabrain_sessions_opened_total"))


def _guidance(s: Session) -> pb.Guidance:
    while True:
        r = s.recv()
        if r.WhichOneof("kind") == "guidance":
            return r.guidance
        assert r.WhichOneof("kind") == "superseded", r


def test_front_ends_share_the_ports_and_one_runner_keeps_every_sessions_state(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--front-ends", "2") as sc:
        assert len(_workers(sc)) == 3, "one runner and two front ends"
        # Separate TCP connections (gRPC would otherwise share one channel's connection).
        channels = [grpc.insecure_channel(sc.target("grpc"), [("grpc.use_local_subchannel_pool", 1)]) for _ in range(4)]
        sessions: list[Session] = [WsSession(sc.ws_url) for _ in range(12)] + [GrpcSession(ch) for ch in channels]
        for s in sessions:
            s.send(hello_req())
            assert s.recv().WhichOneof("kind") == "welcome"
        # Every session plays the same frames: whichever front end holds it and however the runner
        # batched it with the other front end's rows, its predictions must be the same.
        for f in game_frames(12, frame_every=6):  # 5 Hz: each frame is a model step
            for s in sessions:
                s.send(frame_req(f))
            answers = [_guidance(s) for s in sessions]
            assert not any(g.fallback for g in answers)
            p = [g.insights[0].p_fail for g in answers]
            assert max(p) - min(p) < 1e-4, p
        # The kernel spread the 16 connections over both front ends (each has its own /metrics).
        first, second = _opened(sc.metrics()), _opened(sc.metrics("metrics_1"))
        assert first + second == len(sessions) and first > 0 and second > 0, (first, second)
        for s in sessions:
            s.close()
        for ch in channels:
            ch.close()
        sc.signal(signal.SIGTERM)
        assert sc.proc.wait(30) == 0
        assert "metabrain stopped" in sc.log()


def test_a_session_resumes_on_whichever_front_end_its_reconnect_lands(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--front-ends", "2") as sc:
        frames = game_frames(2)
        reset = []
        for attempt in range(12):  # reconnects land on either front end: each must accept the token
            s = WsSession(sc.ws_url)
            s.send(hello_req())
            token = s.recv().welcome.resume_token
            s.send(frame_req(frames[0]))
            _guidance(s)
            s.close()
            again = WsSession(sc.ws_url)
            again.send(hello_req(resume_token=token))
            w = again.recv()
            assert w.WhichOneof("kind") == "welcome" and w.welcome.resumed, (attempt, w)
            # Same front end: the state is still there; the other one: resumed with a fresh state.
            reset.append(w.welcome.state_reset)
            again.send(frame_req(frames[1]))
            assert not _guidance(again).fallback
            again.close()
        assert any(reset) and not all(reset), reset  # both paths taken (each misses with p = 2**-12)
        wait_for(lambda: _opened(sc.metrics()) + _opened(sc.metrics("metrics_1")) == 24, what="24 welcomes")


def test_killing_serve_takes_its_front_ends_and_runner_with_it(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--front-ends", "2") as sc:
        workers = _workers(sc)
        assert len(workers) == 3
        sc.kill()  # SIGKILL: no chance to stop them itself

        def gone(pid: int) -> bool:
            try:
                state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return True
            return state == "Z"

        wait_for(lambda: all(gone(p) for p in workers), timeout=30, what="no orphaned front end or runner")
