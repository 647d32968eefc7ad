"""The sans-I/O session protocol: bytes and messages in, decisions out. Never imports grpc.

One Connection per stream, whatever the transport. It enforces the order (hello, frames, goodbye),
versions, sequencing, rate and size limits, validates frames, and raises the typed errors of
sidecar.errors; the transports only move bytes and map those errors to their status. An accepted frame
carries what featurizing it needs; the engine featurizes each tick's frames together.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from sidecar.columns import EventType
from sidecar.errors import (
    InvalidHello,
    LimitExceeded,
    MetabrainError,
    ProtocolViolation,
    SessionLimitExceeded,
    StaleSequence,
    UnsupportedVersion,
)
from sidecar.features import FrameInput
from sidecar.limits import Limits
from sidecar.policies.experiments import ExperimentSet
from sidecar.policies.portfolio import LEARNING_POLICIES, room_for_game
from sidecar.session import Session, SessionRegistry, SessionSpec
from sidecar.versions import SUPPORTED_PROTOCOL_VERSIONS
from sidecar.wire import responses as wire_responses
from sidecar.wire.requests import FrameRequest, GoodbyeRequest, HelloRequest, Request, decode

__all__ = [
    "Connection",
    "Event",
    "FrameAccepted",
    "ServerInfo",
    "SessionEnded",
    "State",
    "Welcomed",
    "error_response",
    "parse_request",
]


class State(enum.Enum):
    AWAIT_HELLO = "await_hello"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class ServerInfo:
    model_version: str
    default_policy: str
    model_rate_hz: float = 0.0  # model steps per second of game time (0: every frame), for the welcome
    experiments: ExperimentSet = field(default_factory=ExperimentSet)


@dataclass
class Welcomed:
    """The hello was accepted: send the welcome, and let the engine know the session (re)joined."""

    session: Session
    resumed: bool
    state_reset: bool
    info: ServerInfo
    limits: Limits

    @property
    def welcome(self) -> wire_responses.WelcomeMessage:
        """The Welcome message (built at the wire seam)."""
        return wire_responses.welcome_message(
            self.session, self.resumed, self.state_reset, self.info.model_version, self.info.model_rate_hz, self.limits
        )


@dataclass
class FrameAccepted:
    """A valid frame for the engine (featurized with the rest of its tick)."""

    session: Session
    frame: FrameInput
    received_at: float


@dataclass
class SessionEnded:
    """A goodbye: the session is over and its state can be freed."""

    session: Session
    reason: str
    cut_short: bool = False  # ended by the game for its own reasons, not by the player (Goodbye.cut_short)


Event = Welcomed | FrameAccepted | SessionEnded


def parse_request(data: bytes, limits: Limits, *, compiled: bool = True) -> Request:
    """Bytes from the wire -> a plain request, refusing oversized or malformed input (`compiled`: a frame
    may be read by the compiled reader, sidecar/wire/table_reader.py)."""
    return decode(data, limits, compiled=compiled)[0]


class Connection:
    """Protocol state of one stream."""

    def __init__(self, registry: SessionRegistry, info: ServerInfo) -> None:
        self.registry = registry
        self.limits = registry.limits
        self.info = info
        self.state = State.AWAIT_HELLO
        self.session: Session | None = None

    def receive(self, req: Request, now: float) -> Event | None:
        """Handle one request; raises a MetabrainError on refusal (its .fatal says if the stream ends)."""
        kind = _KINDS[type(req)]
        if self.state is State.CLOSED:
            raise ProtocolViolation("the session is closed; open a new stream", field=kind)
        if isinstance(req, HelloRequest):
            return self._hello(req, now)
        if self.state is State.AWAIT_HELLO or self.session is None:
            raise ProtocolViolation(f"received {kind} before hello; the first message must be a hello", field=kind)
        if isinstance(req, FrameRequest):
            return self._frame(req, now)
        session = self.session
        self.registry.close(session)
        self.state = State.CLOSED
        return SessionEnded(session, req.reason or "client goodbye", req.cut_short)

    def _hello(self, hello: HelloRequest, now: float) -> Welcomed:
        if self.state is not State.AWAIT_HELLO:
            raise ProtocolViolation("a second hello on an open session", field="hello")
        if hello.protocol_version not in SUPPORTED_PROTOCOL_VERSIONS:
            raise UnsupportedVersion(
                f"hello.protocol_version={hello.protocol_version} is not supported; this sidecar speaks "
                f"{sorted(SUPPORTED_PROTOCOL_VERSIONS)}",
                field="hello.protocol_version",
            )
        spec = hello.spec(self.limits, self.info.default_policy)
        session, resumed, state_reset = self.registry.open(spec, now)
        try:
            if not resumed or state_reset or not session.policy:
                self._direct(session, spec)
            self._check_game(spec.game_id, session.policy or self.info.default_policy)
        except MetabrainError:
            if not resumed or state_reset:  # the session this hello opened goes with its refusal
                self.registry.close(session)
            raise
        self.session = session
        self.state = State.OPEN
        return Welcomed(session, resumed, state_reset, self.info, self.limits)

    def _check_game(self, game_id: str, policy: str) -> None:
        """Room for the game's evidence (max_games) when the session's director learns from its play."""
        if policy in LEARNING_POLICIES and not room_for_game(game_id, self.limits.max_games):
            raise SessionLimitExceeded(
                f"hello.game_id={game_id!r}: this sidecar already learns for max_games={self.limits.max_games} "
                "games; a new one needs a sidecar of its own or a director that does not learn (e.g. policy "
                "'static')",
                field="max_games",
            )

    def _direct(self, session: Session, hello: SessionSpec) -> None:
        """The session's director: its experiment's arm for this player, else the hello's or the default."""
        experiments = self.info.experiments
        experiment = experiments.for_game(hello.game_id)
        if experiment is None:
            session.policy, session.policy_params = hello.policy or self.info.default_policy, dict(hello.policy_params)
            return
        arm = None
        if hello.experiment_arm:
            if not experiments.allow_override:
                raise InvalidHello(
                    "hello.experiment_arm: this sidecar does not let hellos choose their arm "
                    "(`metabrain serve --experiment-override` allows it)",
                    field="hello.experiment_arm",
                )
            arm = experiment.arm(hello.experiment_arm)
            if arm is None:
                arms = ", ".join(a.label for a in experiment.arms)
                raise InvalidHello(
                    f"hello.experiment_arm={hello.experiment_arm!r} is not an arm of experiment "
                    f"{experiment.name!r} ({arms})",
                    field="hello.experiment_arm",
                )
        # Without a player id the session itself is the unit (not sticky across sessions).
        arm = arm or experiment.assign(hello.player_id or session.session_id, experiments.secret)
        session.policy, session.policy_params = arm.policy, dict(arm.params)
        session.experiment, session.arm, session.assignment_propensity = experiment.name, arm.label, arm.weight

    def _frame(self, frame: FrameRequest, now: float) -> FrameAccepted:
        session = self.session
        assert session is not None
        seq = frame.sequence
        session.last_seen = now
        if not session.frames.take(now):
            raise LimitExceeded(
                f"frame {seq} exceeds max_frames_per_second={session.frames.rate:g} for this session",
                field="max_frames_per_second",
                sequence=seq,
            )
        if seq <= session.last_sequence:
            why = (
                "sequences start at 1 and increase by at least one per frame"
                if seq == 0
                else f"it is not after the last accepted sequence {session.last_sequence}"
            )
            raise StaleSequence(f"frame.sequence={seq}: {why}", field="frame.sequence", sequence=seq)
        frame.check_counts(self.limits, len(session.knobs.names))
        if session.last_game_time is not None and frame.game_time < session.last_game_time:
            raise StaleSequence(
                f"frame.game_time={frame.game_time} goes back from {session.last_game_time}",
                field="frame.game_time",
                sequence=seq,
            )
        raw = frame.read(self.limits, session.knobs.names)
        if len(raw.events):
            session.paused = _paused_after(raw.events, session.paused)
        if session.start_game_time is None:
            session.start_game_time = frame.game_time
        accepted = FrameInput(
            raw, seq, frame.game_time, session.last_game_time, session.start_game_time, session.tracks, session.knobs
        )
        session.last_sequence = seq
        session.last_game_time = frame.game_time
        session.frames_accepted += 1
        return FrameAccepted(session, accepted, now)

    def lost(self, now: float) -> Session | None:
        """The stream ended without a goodbye; the session waits for a resume."""
        session = self.session
        if session is not None and self.state is State.OPEN:
            self.registry.detach(session, now)
        self.state = State.CLOSED
        return session


_PAUSE, _RESUME = float(EventType.PAUSE), float(EventType.RESUME)


def _paused_after(events: np.ndarray, paused: bool) -> bool:
    """Whether the game is paused after a frame's events ([E, 4], type first): its last PAUSE or RESUME
    decides (a pause is the game's, whichever player it names)."""
    for t in reversed(events[:, 0].tolist()):
        if t == _PAUSE:
            return True
        if t == _RESUME:
            return False
    return paused


_KINDS: dict[type, str] = {HelloRequest: "hello", FrameRequest: "frame", GoodbyeRequest: "goodbye"}


def error_response(err: MetabrainError) -> wire_responses.Response:
    return wire_responses.error(err)
