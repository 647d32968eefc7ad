"""A sidecar in a real child process, for tests that send it signals and kill it."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import grpc
from prometheus_client.parser import text_string_to_metric_families

from sim.bench.process import ServerProcess


class SidecarProcess(ServerProcess):
    """`metabrain serve` on free ports (gRPC, WebSocket, metrics), with a gRPC channel to it."""

    def __init__(self, tmp: Path, *args: str, name: str = "sidecar") -> None:
        cmd = [sys.executable, "-m", "sidecar.cli", "serve", "--grpc-port", "0", "--ws-port", "0"]
        super().__init__(name, [*cmd, "--metrics-port", "0", *args], tmp)
        self.channel = grpc.insecure_channel(self.target("grpc"))
        grpc.channel_ready_future(self.channel).result(timeout=30)

    @property
    def ws_url(self) -> str:
        return self.target("ws")

    def metrics(self, port: str = "metrics") -> dict[str, float]:
        """Scrape /metrics: {'name{label="v",...}': value} for every sample (port: its ports-file name)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[port]}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        self.channel.close()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        """SIGKILL if still running (a test's end needs no drain), then close the log."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.stop()

    def __enter__(self) -> SidecarProcess:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def wait_for(predicate: object, timeout: float = 20.0, what: str = "condition") -> None:
    assert callable(predicate)
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)
