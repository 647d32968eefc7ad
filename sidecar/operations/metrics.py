"""Prometheus metrics for one sidecar: a SessionObserver plus an engine tick hook.

Each Sidecar owns its own CollectorRegistry, so several sidecars in one process (tests, the bench)
never share series. `serve_metrics` exposes it over HTTP (`--metrics-port`).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from sidecar.engine.engine import Engine, TickStats
from sidecar.errors import ErrorCode
from sidecar.policies.portfolio import portfolios
from sidecar.serving.service import SessionObserver
from sidecar.session import Session, SessionRegistry
from sidecar.wire import responses as wire
from sidecar.wire.requests import RequestMessage, kind_of

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

# Latency buckets around one 60 Hz frame (16.7 ms), in seconds; 0.2 and 0.3 between 0.133 and 0.5
# so that an overloaded sidecar's p99 (~0.13-0.25 s here) does not jump a whole bucket on noise.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.0167, 0.033, 0.066, 0.133, 0.2, 0.3, 0.5, 1.0)
_TRANSPORTS = ("grpc", "websocket", "?")  # "?": a session whose stream closed before its answer went
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class _FrameCounts(Collector):
    """What every frame updates: frames in and guidance out by transport, the latency histogram, the
    superseded answers. Plain numbers, written by the event loop's thread alone and read by the scrape's:
    a prometheus_client Counter or Histogram takes a lock on every update (a histogram observation, two):
    ~3 µs of CPU of a between-steps frame's ~31 in process (BENCHMARKS.md, the twenty-first session's
    A/B). A scrape may see one frame's updates in part; each series only grows."""

    def __init__(self) -> None:
        self._bounds_us = [round(b * 1e6, 3) for b in _LATENCY_BUCKETS]
        self.frames_in: dict[str, int] = dict.fromkeys(_TRANSPORTS, 0)
        self.guidance_out: dict[str, int] = dict.fromkeys(_TRANSPORTS, 0)
        self.latency_counts = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last: above every bound (+Inf)
        self.latency_sum_us = 0
        self.superseded = 0

    def guidance(self, transport: str, processing_us: int) -> None:
        self.guidance_out[transport] = self.guidance_out.get(transport, 0) + 1
        self.latency_counts[bisect_left(self._bounds_us, processing_us)] += 1
        self.latency_sum_us += processing_us

    def collect(self) -> list[Metric]:
        # Copies first (each one C call under the GIL): the loop's thread may add a transport meanwhile.
        frames_in, guidance_out = dict(self.frames_in), dict(self.guidance_out)
        counts, sum_us = list(self.latency_counts), self.latency_sum_us
        fin = CounterMetricFamily("metabrain_frames_in", "Frames accepted", labels=["transport"])
        gout = CounterMetricFamily("metabrain_guidance_out", "Guidance messages sent", labels=["transport"])
        for family, values in ((fin, frames_in), (gout, guidance_out)):
            for transport, n in sorted(values.items()):
                family.add_metric([transport], n)
        superseded = CounterMetricFamily(
            "metabrain_frames_superseded", "Frames answered as superseded (a newer frame won)", value=self.superseded
        )
        cumulative, buckets = 0, []
        for bound, n in zip((*_LATENCY_BUCKETS, float("inf")), counts, strict=True):
            cumulative += n
            buckets.append((floatToGoString(bound), cumulative))
        latency = HistogramMetricFamily(
            "metabrain_frame_latency_seconds",
            "Frame received to its guidance sent, measured in the sidecar",
            buckets=buckets,
            sum_value=sum_us / 1e6,
        )
        return [fin, gout, superseded, latency]


class _LiveState(Collector):
    """Gauges read at scrape time: sessions by state, model state slots, device memory."""

    def __init__(self, sessions: SessionRegistry, engine: Engine) -> None:
        self.sessions = sessions
        self.engine = engine

    def collect(self) -> list[Metric]:
        sessions = GaugeMetricFamily("metabrain_sessions_active", "Sessions held, by state", labels=["state"])
        held = list(self.sessions.sessions.values())
        attached = sum(1 for s in held if s.attached)
        sessions.add_metric(["attached"], attached)
        sessions.add_metric(["detached"], len(held) - attached)
        paused = GaugeMetricFamily(
            "metabrain_sessions_paused", "Sessions whose game said it paused (held up to max_pause_s without frames)"
        )
        paused.add_metric([], sum(1 for s in held if s.paused))
        slots = GaugeMetricFamily("metabrain_state_slots_in_use", "Per-player recurrent state slots in use")
        slots.add_metric([], self.engine.scheduler.slots_in_use)
        memory = GaugeMetricFamily(
            "metabrain_device_memory_bytes",
            "Memory the model holds on its device (CUDA: allocated by torch; CPU: weights + state pool)",
            labels=["device"],
        )
        memory.add_metric([self.engine.device], float(self.engine.runner.memory_bytes()))
        violations = CounterMetricFamily(
            "metabrain_output_violations",
            "Values that would have left the sidecar non-finite or out of range (each a bug; the default was sent)",
        )
        violations.add_metric([], float(self.engine.output_violations))
        steps = CounterMetricFamily(
            "metabrain_model_rows_stepped", "Player rows the model stepped (the model clock: ~5 a second a player)"
        )
        steps.add_metric([], float(self.engine.rows_stepped))
        between = CounterMetricFamily(
            "metabrain_frames_between_steps", "Frames answered between model steps, from the latest prediction"
        )
        between.add_metric([], float(self.engine.between_frames))
        return [sessions, paused, slots, memory, violations, steps, between, *_portfolio_families()]


def _portfolio_families() -> list[Metric]:
    """What each game's portfolio director has learned: per candidate, its players' mean life (the
    posterior mean), sessions given and play seconds, and where `adaptive` starts (in this process, with
    what --state-dir shares)."""
    life = GaugeMetricFamily(
        "metabrain_portfolio_mean_life_seconds",
        "Portfolio director: expected session length of each candidate's players, so far",
        labels=["game", "candidate"],
    )
    given = CounterMetricFamily(
        "metabrain_portfolio_sessions",
        "Portfolio director: sessions given each candidate",
        labels=["game", "candidate"],
    )
    played = CounterMetricFamily(
        "metabrain_portfolio_play_seconds",
        "Portfolio director: seconds played by each candidate's sessions",
        labels=["game", "candidate"],
    )
    start = GaugeMetricFamily(
        "metabrain_portfolio_start_offset",
        "Portfolio director: where a candidate that learns its start (adaptive) starts, from the designer's level",
        labels=["game", "candidate"],
    )
    for game, p in sorted(portfolios().items()):
        for row in p.summary():
            labels = [game, str(row["arm"])]
            life.add_metric(labels, float(row["mean_life_s"]))
            given.add_metric(labels, float(row["sessions_assigned"]))
            played.add_metric(labels, float(row["seconds_played"]))
        for arm in p.arms:
            if arm.learns_start:
                start.add_metric([game, arm.label], p.start_offset(arm.label))
    return [life, given, played, start]


class SidecarMetrics(SessionObserver):
    needs_messages = False  # counts alone: frames answered in the compiled lane arrive as on_between

    def __init__(self, sessions: SessionRegistry, engine: Engine, default_policy: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rejected = Counter(
            "metabrain_frames_rejected", "Requests refused, by the limit or field named", ["reason"], registry=r
        )
        self.errors = Counter("metabrain_errors", "Errors sent in-stream, by code", ["code"], registry=r)
        self.recording_failures = Counter(
            "metabrain_recording_failures", "Recordings stopped by a failed write (the sessions went on)", registry=r
        )
        self.model_failures = Counter(
            "metabrain_model_failures", "Ticks whose model step failed (answered with defaults)", registry=r
        )
        self.sessions_opened = Counter(
            "metabrain_sessions_opened",
            "Sessions welcomed, by transport and experiment arm ('' outside experiments; arms are few)",
            ["transport", "arm"],
            registry=r,
        )
        self.batch = Histogram(
            "metabrain_tick_batch_size", "Player rows stepped per tick", buckets=_BATCH_BUCKETS, registry=r
        )
        self.model_seconds = Histogram(
            "metabrain_model_step_seconds", "Model time per tick", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.tick_seconds = Histogram(
            "metabrain_tick_seconds", "Whole tick: model and directors", buckets=_LATENCY_BUCKETS, registry=r
        )
        info = Info("metabrain_model", "The model this sidecar serves", registry=r)
        info.info({"version": engine.model_version, "device": engine.device, "default_policy": default_policy})
        r.register(_LiveState(sessions, engine))
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total, ...
        self.frames = _FrameCounts()  # what every frame updates
        r.register(self.frames)
        self._transport: dict[str, str] = {}  # session -> transport
        engine.on_tick.append(self.on_tick)

    # -- SessionObserver --------------------------------------------------------------------
    def on_open(self, session: Session, transport: str) -> None:
        self._transport[session.session_id] = transport
        self.sessions_opened.labels(transport, session.arm).inc()

    def on_request(self, session: Session | None, req: RequestMessage, raw: bytes | None) -> None:
        if session is not None and kind_of(req) == "frame":
            counts = self.frames.frames_in
            transport = self._transport.get(session.session_id, "?")
            counts[transport] = counts.get(transport, 0) + 1

    def on_between(self, session: Session, transport: str, processing_us: int, answer: bytes) -> None:
        counts = self.frames.frames_in
        counts[transport] = counts.get(transport, 0) + 1
        self.frames.guidance(transport, processing_us)

    def on_response(self, session: Session | None, resp: wire.Response) -> None:
        kind = wire.kind(resp)
        if kind == "guidance":
            transport = self._transport.get(session.session_id, "?") if session is not None else "?"
            self.frames.guidance(transport, wire.processing_us(resp))
        elif kind == "superseded":
            self.frames.superseded += 1
        elif kind == "error":
            code, field = wire.error_of(resp)
            label = f"ERROR_CODE_{code.name}"
            self.errors.labels(label).inc()
            if code is ErrorCode.MODEL_UNAVAILABLE:
                return  # counted per tick in model_failures
            if code is ErrorCode.RECORDING_FAILED:
                self.recording_failures.inc()
                return
            self.rejected.labels(reason_label(field or label)).inc()

    def on_close(self, session: Session | None, reason: str) -> None:
        if session is not None:
            self._transport.pop(session.session_id, None)

    # -- engine hook (runs on the runner thread; prometheus_client is thread-safe) -----------
    def on_tick(self, stats: TickStats) -> None:
        if stats.batch == 0:
            return
        self.batch.observe(stats.batch)
        self.tick_seconds.observe(stats.tick_seconds)
        if stats.fallback:
            self.model_failures.inc()
        else:
            self.model_seconds.observe(stats.model_seconds)


_INDEX = re.compile(r"\[[^\]]*\]")


def reason_label(field: str) -> str:
    """A refusal's metric label: its field path without indices or keys (frame.npcs[17].health ->
    frame.npcs[].health), so the series are bounded by the schema, never by what a client sends."""
    return _INDEX.sub("[]", field)[:80]


def serve_metrics(metrics: SidecarMetrics, host: str, port: int) -> tuple[WSGIServer, int]:
    """Serve /metrics on its own thread; port 0 picks a free port. Returns the server and its port."""
    try:
        server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
    return server, int(server.server_port)
