"""SIGTERM: the sidecar stops accepting, answers what is in flight, says goodbye, flushes, exits 0."""

from __future__ import annotations

import signal
import time
import warnings
from pathlib import Path

import grpc

from sidecar.operations.recording import read_recording
from tests.helpers import GrpcSession, frame_req, game_frames, hello_req
from tests.processes import SidecarProcess


def test_sigterm_drains_says_goodbye_and_flushes_recordings(tmp_path: Path) -> None:
    records = tmp_path / "rec"
    with SidecarProcess(tmp_path, "--record-dir", str(records)) as sc:
        client = GrpcSession(sc.channel)
        client.send(hello_req(consent=True))
        assert client.recv().WhichOneof("kind") == "welcome"
        frames = game_frames(5)
        for f in frames:
            client.send(frame_req(f))
        time.sleep(0.3)  # the frames are on the wire and in the server before the signal
        sc.signal(signal.SIGTERM)
        kinds = []
        try:
            while True:
                kinds.append(client.recv(timeout=20).WhichOneof("kind"))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
        answered = kinds.count("guidance") + kinds.count("superseded")
        assert answered == len(frames), kinds  # everything received was answered
        assert "goodbye" in kinds and kinds.index("goodbye") > max(i for i, k in enumerate(kinds) if k == "guidance")
        assert sc.proc.wait(30) == 0
        assert "metabrain stopped" in sc.log()
    (path,) = records.glob("*.mbrec")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a truncated file would warn
        rec = read_recording(path)
    out = [r.WhichOneof("kind") for _, r in rec.responses()]
    assert [r.frame.sequence for _, r in rec.requests() if r.HasField("frame")] == [f.sequence for f in frames]
    assert out.count("guidance") + out.count("superseded") == len(frames) and out[-1] == "goodbye"
