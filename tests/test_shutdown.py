"""SIGTERM: the sidecar stops accepting, answers what is in flight, says goodbye, and exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from tests.helpers import GrpcSession, frame_req, game_frames, hello_req


def test_sigterm_drains_and_says_goodbye(tmp_path: Path) -> None:
    ports = tmp_path / "ports"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sidecar.cli",
            "serve",
            "--grpc-port",
            "0",
            "--ws-port",
            "0",
            "--ports-file",
            str(ports),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while not ports.exists() and time.time() < deadline:
            time.sleep(0.05)
        port = dict(line.split("=") for line in ports.read_text().split())["grpc"]
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        client = GrpcSession(channel)
        client.send(hello_req())
        assert client.recv().WhichOneof("kind") == "welcome"
        frames = game_frames(5)
        for f in frames:
            client.send(frame_req(f))
        time.sleep(0.3)  # the frames are on the wire and in the server before the signal
        proc.send_signal(signal.SIGTERM)
        kinds = []
        try:
            while True:
                kinds.append(client.recv(timeout=20).WhichOneof("kind"))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE
        answered = kinds.count("guidance") + kinds.count("superseded")
        assert answered == len(frames), kinds  # everything received was answered
        assert "goodbye" in kinds and kinds.index("goodbye") > max(i for i, k in enumerate(kinds) if k == "guidance")
        assert proc.wait(30) == 0
        assert "metabrain stopped" in (proc.stdout.read() if proc.stdout else "")
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()
