"""Sessions and their registry: resume tokens, resume windows, idle timeouts. No I/O, no clock reads.

A Session is the one object for everything about one game session, as vLLM's Request is for a
request: its protocol state (sequence, game time, rate bucket, player tracks), its status, and once
the engine has joined it, its director, its model clock and its model steps in flight. (The model
state slots of its players are the scheduler's, as KV blocks are vLLM's block manager's.)

A Session outlives the connection that opened it: when a connection drops the session is detached
and can be resumed with its token until the resume window closes. Resume tokens are the session id
signed with the sidecar's secret, so a restarted sidecar that keeps its secret (--state-dir) can
accept them and start the session afresh (the welcome then says state_reset).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from sidecar.columns import Capability
from sidecar.errors import ResumeRejected, SessionLimitExceeded
from sidecar.features import KnobSet, PlayerTrack
from sidecar.limits import Limits
from sidecar.token_bucket import TokenBucket

if TYPE_CHECKING:  # the engine's parts of a session; the protocol core never imports them
    from sidecar.engine.clock import ModelClock, StepInFlight
    from sidecar.policies.director import Director

__all__ = ["IDLE_TIMEOUT", "RESUME_WINDOW_CLOSED", "Session", "SessionRegistry", "SessionSpec", "SessionStatus"]

# Why a session ended without a goodbye, as observers hear it (SessionObserver.on_close) and recordings
# keep it: either way the player went away, which the portfolio counts as the player leaving.
RESUME_WINDOW_CLOSED = "resume window closed"
IDLE_TIMEOUT = "idle timeout"

_GRANTABLE = frozenset({Capability.NPC_HINTS, Capability.INSIGHT, Capability.EXPLANATIONS, Capability.RECORDING})


@dataclass(frozen=True)
class SessionSpec:
    """What a validated hello asks for, as plain data (sidecar/wire/hello.py makes it from the message)."""

    knobs: KnobSet
    capabilities: frozenset[int] = frozenset()
    game_id: str = ""
    player_id: str = ""  # the game's stable id for the player ("" when it sends none)
    policy: str = ""  # "" for the server's default
    policy_params: dict[str, str] = field(default_factory=dict)
    band: tuple[float, float] | None = None  # the target p_fail band, when the hello sets one
    npc_tactics: frozenset[int] = frozenset()  # the NpcTactic values the game implements; empty: all
    recording_consent: bool = False
    resume_token: str = ""
    experiment_arm: str = ""  # the arm the hello asks for (with --experiment-override)
    wire: bytes = b""  # the hello as it came, for recordings


class SessionStatus(Enum):
    ATTACHED = "attached"  # a connection streams it
    DETACHED = "detached"  # its connection went away: resumable with its token until the window closes
    FINISHED = "finished"  # closed, expired or left: its director and model state are gone


@dataclass
class Session:
    session_id: str
    resume_token: str
    spec: SessionSpec
    capabilities: frozenset[int]
    created_at: float
    last_seen: float
    last_sequence: int = 0
    last_game_time: float | None = None
    start_game_time: float | None = None
    status: SessionStatus = SessionStatus.ATTACHED
    detached_at: float | None = None
    tracks: dict[str, PlayerTrack] = field(default_factory=dict)
    frames: TokenBucket = field(default_factory=lambda: TokenBucket(0.0, 0.0))  # max_frames_per_second
    frames_accepted: int = 0
    paused: bool = False  # the game's latest PAUSE / RESUME event was a PAUSE: idle up to max_pause_s
    # The director it gets: the hello's (or the server's default), or its experiment arm's.
    policy: str = ""
    policy_params: dict[str, str] = field(default_factory=dict)
    experiment: str = ""  # the experiment and arm it takes part in ("" when none)
    arm: str = ""
    assignment_propensity: float = 1.0  # the probability of its director under the assignment
    # Set by the engine when it joins the session (engine.py), cleared when the session leaves it.
    director: Director | None = None
    clock: ModelClock | None = None
    steps: list[StepInFlight] = field(default_factory=list)  # its model steps queued or running, oldest first
    # Errors of a model step whose frame was answered at once (the model failed, no state slot was free):
    # sent after the session's next answer (SessionResponse messages).
    carried: list[Any] = field(default_factory=list)

    @property
    def attached(self) -> bool:
        return self.status is SessionStatus.ATTACHED

    @property
    def knobs(self) -> KnobSet:
        return self.spec.knobs

    def has(self, capability: int) -> bool:
        return capability in self.capabilities


class SessionRegistry:
    """All sessions of one sidecar, keyed by id."""

    def __init__(self, limits: Limits, secret: bytes | None = None) -> None:
        self.limits = limits
        self.secret = secret or secrets.token_bytes(32)
        self.sessions: dict[str, Session] = {}

    def _sign(self, session_id: str) -> str:
        mac = hmac.new(self.secret, session_id.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{session_id}.{mac}"

    def _verify(self, token: str) -> str | None:
        session_id, _, _mac = token.partition(".")
        # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError).
        presented = token.encode("utf-8", "surrogatepass")
        if not session_id or not hmac.compare_digest(self._sign(session_id).encode(), presented):
            return None
        return session_id

    def open(self, hello: SessionSpec, now: float) -> tuple[Session, bool, bool]:
        """Open or resume the session for a hello; returns (session, resumed, state_reset)."""
        if hello.resume_token:
            session_id = self._verify(hello.resume_token)
            if session_id is None:
                raise ResumeRejected("hello.resume_token is not valid for this sidecar", field="hello.resume_token")
            existing = self.sessions.get(session_id)
            if existing is not None:
                # Take the session over from whichever connection held it.
                existing.status = SessionStatus.ATTACHED
                existing.detached_at = None
                existing.last_seen = now
                return existing, True, False
            session = self._create(hello, now, session_id)
            return session, True, True
        return self._create(hello, now, None), False, False

    def _create(self, hello: SessionSpec, now: float, session_id: str | None) -> Session:
        if len(self.sessions) >= self.limits.max_sessions:
            raise SessionLimitExceeded(
                f"the sidecar already holds {len(self.sessions)} sessions; "
                f"the limit is max_sessions={self.limits.max_sessions}",
                field="max_sessions",
            )
        sid = session_id or secrets.token_hex(8)
        session = Session(
            session_id=sid,
            resume_token=self._sign(sid),
            spec=hello,
            capabilities=hello.capabilities & _GRANTABLE,
            created_at=now,
            last_seen=now,
            frames=TokenBucket(self.limits.max_frames_per_second, now),
        )
        self.sessions[sid] = session
        return session

    def detach(self, session: Session, now: float) -> None:
        """The connection went away without a goodbye: keep the session for the resume window."""
        if self.sessions.get(session.session_id) is session:
            session.status = SessionStatus.DETACHED
            session.detached_at = now

    def close(self, session: Session) -> None:
        self.sessions.pop(session.session_id, None)

    def expired(self, now: float) -> tuple[list[Session], list[Session]]:
        """Sessions to free now: (detached past the resume window, attached but idle too long)."""
        gone, idle = [], []
        for s in self.sessions.values():
            if (
                not s.attached
                and s.detached_at is not None
                and now - s.detached_at > self.limits.resume_window_for(s.paused)
            ):
                gone.append(s)
            elif s.attached and now - s.last_seen > self.limits.idle_limit_s(s.paused):
                idle.append(s)
        for s in gone + idle:
            self.sessions.pop(s.session_id, None)
        return gone, idle
