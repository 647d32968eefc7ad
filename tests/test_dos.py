"""Cheap floods against a real sidecar process while a healthy session plays at 10 Hz.

- a GET flood: thousands of plain HTTP requests without an Upgrade header to the WebSocket port (each
  used to hold a handshake slot for 30 s: 35 of them locked a `--max-connections 30` sidecar out);
- a ping flood: WebSocket clients that send pings as fast as they can and never read the pongs (each
  used to grow the sidecar's memory without bound: 1.6M pings, +187 MB).

During each, the healthy session must get every frame answered with p99 <= 50 ms, new sessions must
still get in afterwards, and the sidecar's RSS must end within 20 MB of where it began.
`METABRAIN_DOS_GETS` and `METABRAIN_DOS_PINGS` size the floods (default 12,000 GETs, 1.6M pings
offered over 20 connections: each is cut off long before it has sent its share).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from tests.helpers import WsSession, frame_req, game_frames, hello_req
from tests.processes import SidecarProcess

GETS = int(os.environ.get("METABRAIN_DOS_GETS", "12000"))
PINGS = int(os.environ.get("METABRAIN_DOS_PINGS", "1600000"))
MIN_FRAMES = 30  # answers the healthy session must have had, flood and after, for its p99 to mean something

GET_FLOOD = r"""
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
statuses = {}
t0 = time.time()
for i in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET /metabrain/v1/session HTTP/1.1\r\nHost: x\r\n\r\n")
    status = s.recv(64).split(b" ")[1:2]
    statuses[status[0] if status else b"?"] = statuses.get(status[0] if status else b"?", 0) + 1
    s.close()
print({k.decode(): v for k, v in statuses.items()}, round(time.time() - t0, 1), flush=True)
"""

PING_FLOOD = r"""
import base64, os, socket, sys, time
host, port, n, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ping = bytes([0x89, 0x80]) + os.urandom(4)  # a masked, empty ping frame
sent = dropped = 0
for c in range(conns):
    s = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /metabrain/v1/session HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in s.recv(4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read: pongs pile up on the server
    try:
        for i in range(n // conns // 64):
            s.sendall(ping * 64)
            sent += 64
        s.settimeout(3.0)  # then read: a connection the server cut off ends; a live one would hand us pongs
        while s.recv(65536):
            pass
        dropped += 1
    except socket.timeout:
        pass
    except OSError:
        dropped += 1
    s.close()
print({"pings_sent": sent, "connections_dropped": dropped}, flush=True)
"""


class Healthy(threading.Thread):
    """A session sending a frame every 100 ms over WebSocket and timing each answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.latencies_ms: list[float] = []
        self.sent = 0
        self.errors: list[str] = []

    def run(self) -> None:
        c = WsSession(self.url)
        c.send(hello_req())
        assert c.recv().WhichOneof("kind") == "welcome"
        frames = game_frames(3000, seed=11)
        next_at = time.perf_counter()
        while not self.stop.is_set() and self.sent < len(frames):
            f = frames[self.sent]
            t0 = time.perf_counter()
            c.send(frame_req(f))
            self.sent += 1
            try:
                resp = c.recv(timeout=5)
            except Exception as exc:  # a missed answer is what this test looks for
                self.errors.append(repr(exc))
                return
            if resp.WhichOneof("kind") != "guidance" or resp.guidance.sequence != f.sequence:
                self.errors.append(str(resp))
                return
            self.latencies_ms.append((time.perf_counter() - t0) * 1e3)
            next_at += 0.1
            time.sleep(max(next_at - time.perf_counter(), 0.0))
        c.close()


def _rss(sc: SidecarProcess) -> float:
    return sc.metrics()["process_resident_memory_bytes"] / 2**20


def _flood(sc: SidecarProcess, script: str, *args: str) -> tuple[Healthy, str, float, float]:
    healthy = Healthy(sc.ws_url)
    healthy.start()
    time.sleep(1.0)
    rss_before = _rss(sc)
    port = sc.ws_url.split(":")[2].split("/")[0]
    out = subprocess.run(
        [sys.executable, "-c", script, "127.0.0.1", port, *args], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    # A flood cut off quickly can end before the healthy session has sent enough frames for a p99:
    # it plays on a little (at most 10 s) so every run judges at least MIN_FRAMES answers.
    deadline = time.monotonic() + 10.0
    while healthy.is_alive() and healthy.sent < MIN_FRAMES and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    healthy.stop.set()
    healthy.join(10)
    time.sleep(0.5)
    return healthy, out.stdout.strip(), rss_before, _rss(sc)


def _assert_healthy(healthy: Healthy) -> float:
    assert not healthy.errors, healthy.errors[:3]
    assert len(healthy.latencies_ms) == healthy.sent and healthy.sent >= MIN_FRAMES
    p99 = float(np.percentile(healthy.latencies_ms, 99))
    assert p99 <= 50.0, f"healthy session p99 {p99:.1f} ms during the flood"
    return p99


def test_get_flood_takes_no_slots(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--max-connections", "30", "--max-fps", "1000") as sc:
        healthy, report, before, after = _flood(sc, GET_FLOOD, str(GETS))
        p99 = _assert_healthy(healthy)
        assert f"'426': {GETS}" in report, report  # every one refused at once: Upgrade Required
        fresh = WsSession(sc.ws_url)  # the door is still open
        fresh.send(hello_req())
        assert fresh.recv(timeout=5).WhichOneof("kind") == "welcome"
        fresh.close()
        assert after - before <= 20.0, f"RSS {before:.1f} -> {after:.1f} MB"
        print(f"GET flood: {report}; healthy p99 {p99:.1f} ms, {healthy.sent} frames; RSS {before:.1f} -> {after:.1f}")


def test_ping_flood_is_cut_off(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--max-fps", "1000") as sc:
        healthy, report, before, after = _flood(sc, PING_FLOOD, str(PINGS), "20")
        p99 = _assert_healthy(healthy)
        assert "'connections_dropped': 20" in report, report  # every flooding connection was cut off
        assert after - before <= 20.0, f"RSS {before:.1f} -> {after:.1f} MB"
        assert "pings a second" in sc.log()
        print(f"ping flood: {report}; healthy p99 {p99:.1f} ms, {healthy.sent} frames; RSS {before:.1f} -> {after:.1f}")
