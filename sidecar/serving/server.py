"""The sidecar process: one engine, one session registry, gRPC and WebSocket in front."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import grpc
import torch
from websockets.asyncio.server import Server

from sidecar.engine.between import compiled_between_available
from sidecar.engine.engine import Engine, EngineConfig
from sidecar.engine.remote_runner import RemoteRunner
from sidecar.errors import ShuttingDown
from sidecar.features.featurizer import compiled_featurizer_available
from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint, load_checkpoint
from sidecar.operations.dashboard import DashboardFeed, start_dashboard
from sidecar.operations.key_files import read_or_create_key
from sidecar.operations.metrics import SidecarMetrics, serve_metrics
from sidecar.operations.portfolio_store import PortfolioStore
from sidecar.operations.recording import SessionRecorder
from sidecar.policies.experiments import Experiment, ExperimentSet
from sidecar.protocol import ServerInfo
from sidecar.serving.auth import TokenAuth
from sidecar.serving.ports_file import write_ports_file
from sidecar.serving.service import ServiceContext, SessionObserver
from sidecar.serving.transports.grpc_server import start_grpc
from sidecar.serving.transports.ws_server import start_ws
from sidecar.session import SessionRegistry
from sidecar.wire import responses as wire_responses
from sidecar.wire.table_reader import compiled_reader_available

log = logging.getLogger("metabrain.server")


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    grpc_port: int | None = 0  # None: transport off; 0: pick a free port
    ws_port: int | None = 0
    checkpoint: str | None = None
    engine: EngineConfig = field(default_factory=EngineConfig)
    limits: Limits = field(default_factory=Limits)
    token_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    state_dir: str | None = None  # keeps the resume secret and the portfolio's evidence across restarts
    portfolio_sync_s: float = 5.0  # how often the portfolio's evidence is exchanged through state_dir
    record_dir: str | None = None
    record_key_file: str | None = None
    record_retention_days: float = 30.0
    sweep_interval_s: float = 1.0
    metrics_port: int | None = None  # None: off; 0: pick a free port
    metrics_host: str | None = None  # metrics address; None: the same as host
    dashboard_port: int | None = None
    # The dashboard shows every session's insight curves: loopback unless given its own address.
    dashboard_host: str = "127.0.0.1"
    dashboard_max_viewers: int = 16
    allowed_origins: tuple[str, ...] = ()  # browser origins allowed to open WebSocket sessions; () any
    experiments: tuple[Experiment, ...] = ()  # live experiments (sidecar/policies/experiments.py)
    experiment_override: bool = False  # hellos may ask for their arm
    # SIGUSR1 makes the next model step raise CUDA out-of-memory (for fault-injection tests and drills).
    fault_injection: bool = False
    front_end: FrontEndLink | None = None  # set in each process of `serve --front-ends N`
    # Table-form frames read by the compiled reader (sidecar/wire/table_reader.py); False: all in Python
    # (`serve --pure-python`, which also sets EngineConfig.compiled False).
    compiled_frame_reader: bool = True


@dataclass(frozen=True)
class FrontEndLink:
    """How a front-end process reaches the shared model runner, and which block of its slots it owns."""

    runner_address: str
    authkey: bytes
    index: int


def resume_secret(state_dir: str | None) -> bytes:
    """The key resume tokens are signed with: kept in state_dir (so restarts and sibling front ends
    accept each other's tokens), else new for this process."""
    if not state_dir:
        return secrets.token_bytes(32)
    return read_or_create_key(Path(state_dir) / "resume.secret")


def experiment_secret(state_dir: str | None, needed: bool) -> bytes:
    """The key players are hashed into experiment arms with: kept in state_dir, so that a player keeps
    their arm across restarts and on every sidecar sharing the directory; else new for this process."""
    if not needed:
        return b""
    if not state_dir:
        log.warning("experiments without --state-dir: a player's arm holds only until this sidecar restarts")
        return secrets.token_bytes(32)
    return read_or_create_key(Path(state_dir) / "experiment.secret")


class Sidecar:
    def __init__(self, config: ServeConfig, checkpoint: Checkpoint | None = None) -> None:
        self.config = config
        self.checkpoint = checkpoint or load_checkpoint(config.checkpoint)
        link = config.front_end
        remote = RemoteRunner(link.runner_address, link.authkey, link.index) if link else None
        self.engine = Engine(self.checkpoint, config.engine, remote)
        self.registry = SessionRegistry(config.limits, resume_secret(config.state_dir))
        secret = experiment_secret(config.state_dir, bool(config.experiments))
        experiments = ExperimentSet(config.experiments, secret, config.experiment_override)
        info = ServerInfo(self.checkpoint.version, config.engine.default_policy, self.engine.model_rate_hz, experiments)
        # Whether the plugins' frames are read (those between model steps folded and eased, and each tick's
        # featurized) by the compiled code: unless turned off or not built.
        built = compiled_reader_available() and compiled_between_available() and compiled_featurizer_available()
        self.frame_reader = "compiled" if config.compiled_frame_reader and built else "python"
        if config.compiled_frame_reader and not built:
            log.warning(
                "the compiled frame code is not built (no C compiler when the package was installed): every "
                "frame is read, folded and featurized in Python, at about twice the CPU a frame (BENCHMARKS.md, run 10)"
            )
        self.ctx = ServiceContext(
            self.engine, self.registry, config.limits, info, compiled_reader=self.frame_reader == "compiled"
        )
        self.auth = TokenAuth.from_sources(config.token_file)
        self.grpc_server: grpc.aio.Server | None = None
        self.ws_server: Server | None = None
        self.grpc_port: int | None = None
        self.ws_port: int | None = None
        self._health = None
        self._sweeper: asyncio.Task[None] | None = None
        # The portfolio directors' evidence, kept and shared through the state dir (portfolio_store.py).
        self.portfolio_store = PortfolioStore(config.state_dir) if config.state_dir else None
        self._portfolio_sync: asyncio.Task[None] | None = None
        self.recorder: SessionRecorder | None = None
        self.metrics: SidecarMetrics | None = None
        self.metrics_port: int | None = None
        self._metrics_server: WSGIServer | None = None
        self.dashboard: DashboardFeed | None = None
        self.dashboard_port: int | None = None
        self._dashboard_server: Server | None = None
        if config.dashboard_port is not None:
            self.dashboard = DashboardFeed(self.checkpoint.version, self.engine.device, config.engine.default_policy)
            self.add_observer(self.dashboard)
        if config.metrics_port is not None:
            self.metrics = SidecarMetrics(self.registry, self.engine, config.engine.default_policy)
            self.add_observer(self.metrics)

    def add_observer(self, observer: SessionObserver) -> None:
        self.ctx.observers.append(observer)

    async def start(self) -> None:
        cfg = self.config
        if cfg.record_dir:
            self.recorder = SessionRecorder(
                cfg.record_dir, self.checkpoint.version, cfg.record_key_file, cfg.record_retention_days
            )
            self.add_observer(self.recorder)  # opt-in per session: the hello's recording_consent
        # Everything loaded so far (torch, grpc, the model: ~170k objects) lives as long as the
        # process: keep it out of the collector, whose full passes over it took 70-85 ms (measured).
        gc.collect()
        gc.freeze()
        if self.portfolio_store is not None:
            games = self.portfolio_store.load()
            if games:
                log.info("portfolio: loaded what %d game(s) taught it from %s", games, self.portfolio_store.directory)
            self._portfolio_sync = asyncio.create_task(self._sync_portfolios())
        await self.engine.start()
        if self.metrics is not None and cfg.metrics_port is not None:
            self._metrics_server, self.metrics_port = serve_metrics(self.metrics, self.ops_host, cfg.metrics_port)
        if self.dashboard is not None and cfg.dashboard_port is not None:
            self._dashboard_server, self.dashboard_port = await start_dashboard(
                self.dashboard, cfg.dashboard_host, cfg.dashboard_port, self.auth, cfg.dashboard_max_viewers
            )
        if cfg.fault_injection:
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.inject_device_failure)
        tls_pair = None
        if cfg.tls_cert and cfg.tls_key:
            tls_pair = (Path(cfg.tls_cert).read_bytes(), Path(cfg.tls_key).read_bytes())
        try:
            if cfg.grpc_port is not None:
                self.grpc_server, self.grpc_port, self._health = await start_grpc(
                    self.ctx, cfg.host, cfg.grpc_port, self.auth, tls_pair, reuse_port=cfg.front_end is not None
                )
            if cfg.ws_port is not None:
                tls_files = (cfg.tls_cert, cfg.tls_key) if cfg.tls_cert and cfg.tls_key else None
                self.ws_server, self.ws_port = await start_ws(
                    self.ctx,
                    cfg.host,
                    cfg.ws_port,
                    self.auth,
                    tls_files,
                    reuse_port=cfg.front_end is not None,
                    allowed_origins=cfg.allowed_origins,
                )
        except OSError:
            await self.stop(grace=0)
            raise
        self._sweeper = asyncio.create_task(self._sweep())

    @property
    def ops_host(self) -> str:
        return self.config.metrics_host or self.config.host

    def inject_device_failure(self) -> None:
        log.warning("fault injection: the next model step raises CUDA out of memory")
        self.engine.runner.fail_next = torch.cuda.OutOfMemoryError("CUDA out of memory (injected by SIGUSR1)")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.config.sweep_interval_s)
            try:
                self.ctx.sweep(time.monotonic())
            except Exception:  # a bug in one sweep must not end every later one (sessions would never be freed)
                log.exception("the session sweep failed; it runs again in %g s", self.config.sweep_interval_s)

    async def _sync_portfolios(self) -> None:
        assert self.portfolio_store is not None
        while True:
            await asyncio.sleep(self.config.portfolio_sync_s)
            await asyncio.to_thread(self.portfolio_store.sync)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, answer what is in flight, say goodbye to every session, flush recordings."""
        self.ctx.shutting_down = True
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        if self._sweeper is not None:
            self._sweeper.cancel()
        handlers = list(self.ctx.handlers.values())
        if handlers:
            await asyncio.gather(*(h.drain(grace) for h in handlers))
        for h in handlers:
            h.send(wire_responses.goodbye("sidecar shutting down; reconnect with your resume token"))
            h.close(ShuttingDown("the sidecar is shutting down; reconnect with your resume token"))
        if self.ws_server is not None:
            self.ws_server.close()
            await self.ws_server.wait_closed()
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace)
        await self.engine.stop()
        if isinstance(self.engine.runner, RemoteRunner):
            self.engine.runner.close()  # the runner process exits when its last front end has gone
        if self._portfolio_sync is not None:
            self._portfolio_sync.cancel()
        if self.portfolio_store is not None:
            self.portfolio_store.sync()  # what this run learned, for the next
        if self.recorder is not None:
            self.recorder.close_all()
        if self._dashboard_server is not None:
            self._dashboard_server.close()
            await self._dashboard_server.wait_closed()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()

    def ports(self) -> dict[str, int | None]:
        return {
            "grpc": self.grpc_port,
            "ws": self.ws_port,
            "metrics": self.metrics_port,
            "dashboard": self.dashboard_port,
        }

    def ports_line(self) -> str:
        hosts = {"metrics": self.ops_host, "dashboard": self.config.dashboard_host}
        listening = " ".join(
            f"{k}={hosts.get(k, self.config.host)}:{v}" for k, v in self.ports().items() if v is not None
        )
        return f"metabrain serving {listening}"


async def serve_forever(config: ServeConfig, ports_file: str | None = None) -> int:
    sidecar = Sidecar(config)
    await sidecar.start()
    line = sidecar.ports_line()
    print(
        f"{line} model={sidecar.checkpoint.version} device={sidecar.engine.device} frames={sidecar.frame_reader}",
        flush=True,
    )
    if ports_file:
        write_ports_file(ports_file, sidecar.ports())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining sessions")
    await sidecar.stop()
    print("metabrain stopped", flush=True)
    return 0
