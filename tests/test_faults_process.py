"""Faults injected into real processes: a failing device, a killed client, a killed sidecar.

Each test starts the sidecar as a child process (`metabrain serve`) and observes it only from the
outside: its streams, its /metrics endpoint, its files.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sidecar.operations.recording import read_recording
from tests.helpers import GrpcSession, expect_fallback_then_error, frame_req, game_frames, hello_req
from tests.processes import SidecarProcess, wait_for

UNAVAILABLE = 'metabrain_errors_total{code="ERROR_CODE_MODEL_UNAVAILABLE"}'


def test_device_failure_answers_defaults_counts_it_and_recovers(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--fault-injection") as sc:
        c = GrpcSession(sc.channel)
        c.send(hello_req(policy="static", params={"level": "0.9"}))
        assert c.recv().WhichOneof("kind") == "welcome"
        frames = game_frames(8, frame_every=6)  # 5 Hz, the model rate: every frame steps the model
        for f in frames[:3]:
            c.send(frame_req(f))
            last = c.recv().guidance
            assert not last.fallback
        sc.signal(signal.SIGUSR1)  # the next model step raises torch.cuda.OutOfMemoryError
        wait_for(lambda: "fault injection" in sc.log(), what="the sidecar to arm the fault")
        c.send(frame_req(frames[3]))
        expect_fallback_then_error(c, frames[3], last, frames[3].game_time - frames[2].game_time)
        for f in frames[4:]:
            c.send(frame_req(f))
            assert not c.recv().guidance.fallback
        m = sc.metrics()
        assert m["metabrain_model_failures_total"] == 1 and m[UNAVAILABLE] == 1
        assert m['metabrain_guidance_out_total{transport="grpc"}'] == len(frames)
        assert "OutOfMemoryError" in sc.log()
        c.close()


CLIENT = """
import sys, time, grpc
from tests.helpers import GrpcSession, frame_req, game_frames, hello_req
c = GrpcSession(grpc.insecure_channel(sys.argv[1]))
c.send(hello_req())
assert c.recv().WhichOneof("kind") == "welcome"
for f in game_frames(5):
    c.send(frame_req(f))
    assert c.recv().WhichOneof("kind") == "guidance"
print("ready", flush=True)
time.sleep(600)
"""


def test_killed_client_frees_its_slot_after_the_resume_window(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--resume-window", "2") as sc:
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, f"127.0.0.1:{sc.ports['grpc']}"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert client.stdout is not None and client.stdout.readline().strip() == "ready"
            m = sc.metrics()
            assert m['metabrain_sessions_active{state="attached"}'] == 1 and m["metabrain_state_slots_in_use"] == 1
            client.send_signal(signal.SIGKILL)
            client.wait(10)
            killed_at = time.monotonic()
            wait_for(lambda: sc.metrics()['metabrain_sessions_active{state="detached"}'] == 1, what="detach")
            # Held for the resume window, then freed with its model state slot.
            wait_for(lambda: sc.metrics()["metabrain_state_slots_in_use"] == 0, timeout=10, what="slot freed")
            assert time.monotonic() - killed_at >= 1.5
            m = sc.metrics()
            assert m['metabrain_sessions_active{state="detached"}'] == 0
            assert m['metabrain_sessions_active{state="attached"}'] == 0
        finally:
            client.kill()


def test_sigkill_keeps_recordings_to_the_last_answer_and_clients_resume(tmp_path: Path) -> None:
    state, records = tmp_path / "state", tmp_path / "rec"
    args = ("--state-dir", str(state), "--record-dir", str(records))
    frames = game_frames(40)
    with SidecarProcess(tmp_path, *args, name="first") as sc:
        c = GrpcSession(sc.channel)
        c.send(hello_req(consent=True))
        welcome = c.recv().welcome
        acked = 0
        for f in frames[:30]:
            c.send(frame_req(f))
            assert c.recv().guidance.sequence == f.sequence
            acked += 1
        sc.kill()  # SIGKILL: no drain, no close, no flush beyond what was written
    files = list(records.glob("*.mbrec"))
    assert len(files) == 1
    rec = read_recording(files[0])
    recorded_frames = [r.frame.sequence for _, r in rec.requests() if r.WhichOneof("kind") == "frame"]
    recorded_guidance = [r.guidance.sequence for _, r in rec.responses() if r.WhichOneof("kind") == "guidance"]
    assert recorded_frames == [f.sequence for f in frames[:acked]]  # every acknowledged frame, in order
    assert recorded_guidance == recorded_frames

    with SidecarProcess(tmp_path, *args, name="second") as sc2:
        c2 = GrpcSession(sc2.channel)
        c2.send(hello_req(resume_token=welcome.resume_token))
        w2 = c2.recv().welcome
        assert w2.resumed and w2.state_reset and w2.session_id == welcome.session_id
        for f in frames[30:]:
            c2.send(frame_req(f))
            assert c2.recv().guidance.sequence == f.sequence
        c2.close()
