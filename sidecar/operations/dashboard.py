"""The live dashboard: a static page plus a WebSocket feed of JSON snapshots (`--dashboard-port`).

DashboardFeed is a SessionObserver that keeps, per session, a short curve of difficulty and the
model's view of the player (sampled at most `sample_hz` times a second, so watching costs the hot
path next to nothing). The page draws the curves on canvases; no front-end build step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from sidecar.serving.auth import TokenAuth
from sidecar.serving.service import SessionObserver
from sidecar.session import Session
from sidecar.wire import responses as wire

FEED_PATH = "/feed"
_PAGE = resources.files("sidecar.operations").joinpath("dashboard.html")


@dataclass
class _Track:
    session_id: str
    transport: str
    policy: str
    opened: float
    frames: int = 0
    last_at: float = 0.0
    closed: str = ""
    # (seconds since the dashboard started, difficulty, p_fail, p_quit, frustration, engagement, skill)
    points: deque[tuple[float, ...]] = field(default_factory=lambda: deque(maxlen=600))
    director: dict[str, Any] | None = None  # the director's latest note (Guidance.director), if it gives one


class DashboardFeed(SessionObserver):
    needs_messages = False  # it samples answers at sample_hz: frames answered in the lane reach on_between

    def __init__(self, model_version: str, device: str, default_policy: str, sample_hz: float = 10.0) -> None:
        self.model_version = model_version
        self.device = device
        self.default_policy = default_policy
        self.min_gap = 1.0 / sample_hz
        self.t0 = time.monotonic()
        self.tracks: dict[str, _Track] = {}
        self.latencies_ms: deque[float] = deque(maxlen=2000)

    def on_open(self, session: Session, transport: str) -> None:
        now = time.monotonic()
        policy = session.policy or session.spec.policy or self.default_policy
        if session.arm:
            policy = f"{session.experiment}: {session.arm}"
        self.tracks[session.session_id] = _Track(session.session_id, transport, policy, now - self.t0)

    def on_response(self, session: Session | None, resp: wire.Response) -> None:
        if session is not None and wire.kind(resp) == "guidance":
            self._guidance(session, wire.processing_us(resp), lambda: resp)

    def on_between(self, session: Session, transport: str, processing_us: int, answer: bytes) -> None:
        # A frame answered in the compiled lane: counted, and its bytes read only when it is sampled.
        self._guidance(session, processing_us, lambda: wire.parse_response(answer))

    def _guidance(self, session: Session, processing_us: int, response: Callable[[], wire.Response]) -> None:
        track = self.tracks.get(session.session_id)
        if track is None:
            return
        track.frames += 1
        self.latencies_ms.append(processing_us / 1000.0)
        now = time.monotonic()
        if now - track.last_at < self.min_gap:
            return
        track.last_at = now
        g = wire.guidance_view(response())
        if g.director is not None:
            track.director = g.director
        knobs = session.knobs
        difficulty = knobs.to_difficulty(np.array([g.knobs.get(n, 0.0) for n in knobs.names], np.float32))
        ins = g.insight
        track.points.append(
            (
                round(now - self.t0, 3),
                round(difficulty, 4),
                *(round(ins[k], 4) if ins else -1.0 for k in ("p_fail", "p_quit", "frustration")),
                *(round(ins[k], 4) if ins else -1.0 for k in ("engagement", "skill")),
            )
        )

    def on_close(self, session: Session | None, reason: str) -> None:
        if session is not None and session.session_id in self.tracks:
            self.tracks[session.session_id].closed = reason

    def snapshot(self, max_sessions: int = 24, max_points: int = 300) -> dict[str, Any]:
        now = time.monotonic() - self.t0
        # Forget sessions closed for a minute; show the most recently active first.
        for sid in [s for s, t in self.tracks.items() if t.closed and now - (t.last_at - self.t0) > 60]:
            del self.tracks[sid]
        tracks = sorted(self.tracks.values(), key=lambda t: (bool(t.closed), -t.last_at))
        lat = np.asarray(self.latencies_ms, np.float64)
        return {
            "t": round(now, 3),
            "model_version": self.model_version,
            "device": self.device,
            "default_policy": self.default_policy,
            "active": sum(1 for t in self.tracks.values() if not t.closed),
            "latency_ms": {
                "p50": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
                "p99": round(float(np.percentile(lat, 99)), 3) if len(lat) else None,
            },
            "sessions": [
                {
                    "id": t.session_id,
                    "transport": t.transport,
                    "policy": t.policy,
                    "frames": t.frames,
                    "closed": t.closed,
                    "director": t.director,
                    "points": list(t.points)[-max_points:],
                }
                for t in tracks[:max_sessions]
            ],
        }


_COOKIE = "metabrain_token"


def _dashboard_token(request: Request) -> str | None:
    """The token of a dashboard request: Authorization header, ?token= (the page's first load and its
    feed) or the cookie the page sets."""
    header = request.headers.get("Authorization")
    if header:
        return header
    tokens = parse_qs(urlparse(request.path).query).get("token")
    if tokens:
        return tokens[0]
    for part in request.headers.get("Cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == _COOKIE:
            return unquote(value)
    return None


async def start_dashboard(
    feed: DashboardFeed,
    host: str,
    port: int,
    auth: TokenAuth | None = None,
    max_viewers: int = 16,
    interval_s: float = 0.5,
) -> tuple[Server, int]:
    """The page and its feed, behind the sidecar's token when auth is on, for at most max_viewers
    feeds at once (each is pushed a snapshot every interval_s)."""
    page = _PAGE.read_bytes()
    viewers: set[ServerConnection] = set()

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        path = urlparse(request.path).path
        if path not in (FEED_PATH, "/", "/index.html"):
            return connection.respond(404, "not found: the dashboard is at / and its feed at /feed\n")
        if auth is not None and not auth.check(_dashboard_token(request)):
            return connection.respond(401, "missing or wrong token: open the dashboard with ?token=<token>\n")
        if path == FEED_PATH:
            if len(viewers) >= max_viewers:
                return connection.respond(503, f"{len(viewers)} viewers are watching; the limit is {max_viewers}\n")
            return None  # the WebSocket upgrade
        headers = Headers({"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})
        token = parse_qs(urlparse(request.path).query).get("token")
        if token:  # the feed's WebSocket request carries the cookie (no token in the page's script)
            headers["Set-Cookie"] = f"{_COOKIE}={quote(token[0])}; HttpOnly; SameSite=Strict; Path=/"
        return Response(200, "OK", headers, page)

    async def stream(ws: ServerConnection) -> None:
        viewers.add(ws)
        try:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await ws.send(json.dumps(feed.snapshot(), separators=(",", ":")))
                    await asyncio.sleep(interval_s)
        finally:
            viewers.discard(ws)

    server = await serve(stream, host, port, process_request=process_request, compression=None)
    return server, int(next(iter(server.sockets)).getsockname()[1])
