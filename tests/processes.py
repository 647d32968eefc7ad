"""A sidecar in a real child process, for tests that send it signals and kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import grpc
from prometheus_client.parser import text_string_to_metric_families

from sidecar.transports.ws_server import WS_PATH


class SidecarProcess:
    def __init__(self, tmp: Path, *args: str, name: str = "sidecar") -> None:
        self.ports_file = tmp / f"{name}.ports"
        self.log_path = tmp / f"{name}.log"
        self.ports_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "sidecar.cli", "serve", "--grpc-port", "0", "--ws-port", "0"]
        cmd += ["--metrics-port", "0", "--ports-file", str(self.ports_file), *args]
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 90
        while not self.ports_file.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"sidecar did not start (exit {self.proc.poll()}):\n{self.log()}")
            time.sleep(0.05)
        self.ports = {k: int(v) for k, v in (line.split("=") for line in self.ports_file.read_text().split())}
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.ports['grpc']}")
        grpc.channel_ready_future(self.channel).result(timeout=30)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ports['ws']}{WS_PATH}"

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def metrics(self) -> dict[str, float]:
        """Scrape /metrics: {'name{label="v",...}': value} for every sample."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['metrics']}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        self.channel.close()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._log.close()

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
