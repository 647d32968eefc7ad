"""Sessions for in-process benchmarks: opened through the protocol core, joined to an engine, and fed
real simulator frames through the same parse -> validate path the transports use (the engine featurizes)."""

from __future__ import annotations

from tqdm import tqdm

from sidecar.engine.engine import Engine
from sidecar.features import FrameInput
from sidecar.limits import Limits
from sidecar.protocol import Connection, FrameAccepted, ServerInfo, Welcomed, parse_request
from sidecar.session import Session, SessionRegistry
from sidecar.wire.requests import from_message
from sidecar.wire.schema import pb
from sim.game import hello
from sim.loadgen import FrameStream


class SimulatedSessions:
    def __init__(
        self,
        engine: Engine,
        count: int,
        players: int = 1,
        progress: bool = False,
        tables: bool = True,
        compiled: bool = True,
    ) -> None:
        self.compiled = compiled  # frames read by the compiled reader where it can (else all in Python)
        # No rate limit: the benchmark decides how fast game time passes.
        self.limits = Limits(max_frames_per_second=1e9, max_sessions=max(count, Limits.max_sessions))
        registry = SessionRegistry(self.limits)
        info = ServerInfo(engine.model_version, engine.cfg.default_policy, engine.model_rate_hz)
        self.conns: list[Connection] = []
        self.streams: list[FrameStream] = []
        for i in tqdm(range(count), desc="sessions", unit="session", leave=False, disable=not progress):
            c = Connection(registry, info)
            ev = c.receive(from_message(pb.SessionRequest(hello=hello())), 0.0)
            assert isinstance(ev, Welcomed)
            engine.join(ev.session)
            self.conns.append(c)
            self.streams.append(FrameStream(i, players, tables))

    @property
    def first(self) -> Session:
        session = self.conns[0].session
        assert session is not None
        return session

    def receive(self, game_time: float, count: int | None = None) -> list[tuple[Session, FrameInput]]:
        """The first `count` sessions (all by default) each receive their next frame, as bytes."""
        frames = []
        for c, fs in zip(self.conns[:count], self.streams[:count], strict=True):
            ev = c.receive(parse_request(fs.next(game_time), self.limits, compiled=self.compiled), game_time)
            assert isinstance(ev, FrameAccepted)
            frames.append((ev.session, ev.frame))
        return frames
