"""`metabrain serve --front-ends N`: N sidecar processes on the same ports and one model runner.

The per-frame Python work (reading messages, validating, featurizing, directing, answering) is what
bounds one sidecar process (BENCHMARKS.md), so on a many-core box N front-end processes listen on
the same gRPC and WebSocket ports (SO_REUSEPORT: the kernel spreads connections over them) and all
send their step plans to one runner process that owns the model and the recurrent state
(engine/remote_runner.py). A session lives on the front end its connection landed on. Resume tokens
are signed with one key shared by all front ends (kept in --state-dir, or a private temporary
directory), so a client that reconnects to another front end is accepted, with `state_reset` (its
recurrent state stays in the first front end's block until that session times out).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sidecar.engine.remote_runner import serve_runner
from sidecar.operations.orphans import die_with_parent
from sidecar.serving.ports_file import read_ports_file, write_ports_file
from sidecar.serving.server import FrontEndLink, ServeConfig, resume_secret

START_TIMEOUT_S = 120.0


def free_port(host: str) -> int:
    """A port nobody listens on now, for the front ends to share (0 cannot be shared: each would get its own)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _offset(port: int | None, index: int) -> int | None:
    """Per-front-end ops ports (metrics, dashboard): port + index, or a free one each when 0."""
    return None if port is None else (port + index if port else 0)


def _runner_main(*args: object) -> None:
    die_with_parent()
    serve_runner(*args)  # type: ignore[arg-type]


def _front_end_main(config: ServeConfig, ports_file: str, log: tuple[str, str]) -> None:
    from sidecar.operations.logs import configure_logging
    from sidecar.serving import event_loop
    from sidecar.serving.server import serve_forever

    die_with_parent()
    configure_logging(*log)
    event_loop.run(serve_forever(config, ports_file))


def serve_front_ends(
    config: ServeConfig, n: int, ports_file: str | None = None, log: tuple[str, str] = ("INFO", "text")
) -> int:
    """Start the runner and n front ends; on SIGTERM/SIGINT stop the front ends (they drain), then the runner."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="metabrain-") as tmp:
        state_dir = config.state_dir or tmp
        resume_secret(state_dir)  # create it once, before the front ends read it
        address = str(Path(tmp) / "runner.sock")
        authkey = secrets.token_bytes(16)
        grpc_port = free_port(config.host) if config.grpc_port == 0 else config.grpc_port
        ws_port = free_port(config.host) if config.ws_port == 0 else config.ws_port
        ready = ctx.Event()
        runner = ctx.Process(
            target=_runner_main,
            args=(address, authkey, config.checkpoint, config.engine, n, ready),
            name="metabrain-runner",
        )
        runner.start()
        if not ready.wait(START_TIMEOUT_S):
            runner.kill()
            raise OSError("the model runner process did not start")
        fronts: list[mp.process.BaseProcess] = []
        front_ports = [str(Path(tmp) / f"front-{i}.ports") for i in range(n)]
        for i in range(n):
            cfg = replace(
                config,
                grpc_port=grpc_port,
                ws_port=ws_port,
                state_dir=state_dir,
                metrics_port=_offset(config.metrics_port, i),
                dashboard_port=_offset(config.dashboard_port, i),
                front_end=FrontEndLink(address, authkey, i),
            )
            p = ctx.Process(target=_front_end_main, args=(cfg, front_ports[i], log), name=f"metabrain-front-{i}")
            p.start()
            fronts.append(p)
        stop = {"now": False}

        def on_signal(signum: int, frame: object) -> None:
            stop["now"] = True

        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            ports = _wait_for_ports(front_ports, fronts, runner)
            if ports is None:
                print("metabrain serve: a front end or the runner did not start (see the log above)", file=sys.stderr)
                return 2
            merged: dict[str, int | None] = {"grpc": ports[0].get("grpc"), "ws": ports[0].get("ws")}
            for i, fp in enumerate(ports):
                for name in ("metrics", "dashboard"):
                    if name in fp:
                        merged[name if i == 0 else f"{name}_{i}"] = fp[name]
            listening = " ".join(f"{k}={config.host}:{v}" for k, v in merged.items() if v is not None)
            print(f"metabrain serving {listening} front_ends={n} runner_pid={runner.pid}", flush=True)
            if ports_file:
                write_ports_file(ports_file, merged)
            while not stop["now"] and all(p.is_alive() for p in fronts) and runner.is_alive():
                time.sleep(0.2)
        finally:
            for front in fronts:
                if front.is_alive() and front.pid is not None:
                    os.kill(front.pid, signal.SIGTERM)  # each drains its sessions and says goodbye
            for front in fronts:
                front.join(30)
                if front.is_alive():
                    front.kill()
            runner.join(10)  # exits once its last front end has disconnected
            if runner.is_alive():
                runner.kill()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        print("metabrain stopped", flush=True)
        return 0 if stop["now"] else 1


def _wait_for_ports(
    files: list[str], fronts: list[mp.process.BaseProcess], runner: mp.process.BaseProcess
) -> list[dict[str, int]] | None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not runner.is_alive() or not all(p.is_alive() for p in fronts):
            return None
        if all(Path(f).exists() for f in files):
            with contextlib.suppress(ValueError):
                return [read_ports_file(f) for f in files]
        time.sleep(0.05)
    return None
