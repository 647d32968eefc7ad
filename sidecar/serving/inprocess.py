"""Run a sidecar on a background thread of this process (demo, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from sidecar.model.checkpoint import Checkpoint
from sidecar.serving.server import ServeConfig, Sidecar

__all__ = [
    "RunningSidecar",
    "start_in_thread",
]


@dataclass
class RunningSidecar:
    sidecar: Sidecar
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def grpc_address(self) -> str:
        return f"{self.sidecar.config.host}:{self.sidecar.grpc_port}"

    @property
    def ws_url(self) -> str:
        from sidecar.serving.transports.ws_server import WS_PATH

        scheme = "wss" if self.sidecar.config.tls_cert else "ws"
        return f"{scheme}://{self.sidecar.config.host}:{self.sidecar.ws_port}{WS_PATH}"

    def call(self, coro: object, timeout: float = 30.0) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self, grace: float = 2.0) -> None:
        if self.loop.is_running():
            self.call(self.sidecar.stop(grace))
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_in_thread(config: ServeConfig, checkpoint: Checkpoint | None = None) -> RunningSidecar:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                sc = Sidecar(config, checkpoint)
                await sc.start()
                box["sidecar"] = sc
            except BaseException as exc:
                box["error"] = exc
            finally:
                ready.set()

        loop.run_until_complete(boot())
        if "sidecar" in box:
            loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="metabrain-sidecar", daemon=True)
    thread.start()
    ready.wait(60)
    if "error" in box:
        thread.join(5)
        raise box["error"]  # type: ignore[misc]
    sc = box["sidecar"]
    assert isinstance(sc, Sidecar)
    return RunningSidecar(sc, loop, thread)
