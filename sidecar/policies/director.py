"""A session's director: its policy, knob ranges and rates, the values last sent, and the rule pieces
(range and rate guard, tactic choice) that sidecar/policies/tick.py applies to a whole tick at once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from sidecar.columns import MAX_PLAY_GAP_S, Capability, NpcTactic
from sidecar.engine.between import ease_compiled
from sidecar.features import FrameFeatures, P
from sidecar.model.player_model import TACTICS
from sidecar.policies.contextual import ContextualPolicy
from sidecar.policies.difficulty import (
    DEFAULT_BAND,
    DifficultyPolicy,
    DirectorNote,
    IntensityPolicy,
    Observation,
    PredictivePolicy,
    RubberBandPolicy,
    StaticPolicy,
)
from sidecar.policies.guarded import GuardedPolicy
from sidecar.policies.learned import LearnedPolicy, PerturbedPolicy
from sidecar.policies.params import POLICY_NAMES, parse_params
from sidecar.policies.portfolio import PORTFOLIO_RETREAT, Portfolio, PortfolioArm, portfolio_for
from sidecar.policies.retreat import Retreat
from sidecar.session import Session

POLICIES = POLICY_NAMES
# One NPC hint: (npc_id, NpcTactic value, target player id, aggression), the wire's NpcHint fields in order,
# which the engine fills in place in the guidance. A plain tuple: a crowded tick builds thousands, and
# a NamedTuple costs ~5x as much to build.
Hint = tuple[int, int, str, float]
# NpcTactic enum values of the model's tactics, in TACTICS order.
TACTIC_ENUMS = np.array(
    [NpcTactic.HOLD, NpcTactic.ADVANCE, NpcTactic.FLANK, NpcTactic.RETREAT, NpcTactic.REGROUP, NpcTactic.PRESSURE]
)
assert len(TACTIC_ENUMS) == len(TACTICS)


def make_policy(
    name: str, params: Mapping[str, str], default_level: float, band: tuple[float, float], seed: int = 0
) -> DifficultyPolicy:
    """The named policy with its parameters (raises PolicyParamError for a bad one, ValueError for an
    unknown name; the hello was checked against both before the session was welcomed)."""
    parsed = parse_params(name, params)
    if name == "static":
        return StaticPolicy(parsed, default_level)
    if name == "rubber_band":
        return RubberBandPolicy(parsed, default_level)
    if name == "intensity":
        return IntensityPolicy(parsed, default_level)
    if name == "predictive":
        return PredictivePolicy(parsed, default_level, band)
    if name == "guarded":
        return GuardedPolicy(parsed, default_level, band)
    if name == "learned":
        return LearnedPolicy(parsed, default_level)
    if name == "perturbed":
        return PerturbedPolicy(parsed, default_level, seed)
    raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")


class Director:
    def __init__(self, session: Session, default_policy: str) -> None:
        spec = session.spec
        self.session = session
        knobs = spec.knobs
        self.names = knobs.names
        self.lo, self.hi, self.rate, self.defaults = knobs.lo, knobs.hi, knobs.rate, knobs.defaults
        self.default_level = knobs.to_difficulty(self.defaults)
        self.band = spec.band or DEFAULT_BAND
        self.policy_name = session.policy or spec.policy or default_policy
        params = dict(session.policy_params) if session.policy else dict(spec.policy_params)
        seed = int.from_bytes(hashlib.sha256(session.session_id.encode()).digest()[:4], "big")
        # The portfolio gives this session one of its directors (portfolio.py) and learns from its play.
        self.portfolio: Portfolio | None = None
        self.arm: PortfolioArm | None = None
        self.evidence = ""  # the label its play counts for in the portfolio's evidence
        drawn_with = 1.0  # the probability the portfolio's draw had
        start = self.default_level  # where the drawn candidate starts (the director note's target)
        name = self.policy_name
        if name == "portfolio":
            self.portfolio = portfolio_for(spec.game_id)
            self.arm, drawn_with = self.portfolio.choose()
            if not session.experiment:  # an experiment's own arm stays what its report groups by
                session.experiment, session.arm, session.assignment_propensity = "portfolio", self.arm.label, drawn_with
            # The hello's common parameters too; a fixed or adaptive candidate's move is taken back for a
            # player it hurts unless the hello says otherwise (retreat.py; PortfolioArm.retreats).
            taken_back = {"retreat": PORTFOLIO_RETREAT} if self.arm.retreats else {}
            name, params = self.arm.policy, {**taken_back, **params, **dict(self.arm.params)}
            # What its session counts for: the candidate, and a learns_start one at the start it has now.
            offset, self.evidence = self.arm.offset, self.arm.label
            if self.arm.learns_start:
                offset, self.evidence = self.portfolio.start_of(self.arm.label)
            start = min(max(self.default_level + offset, 0.0), 1.0)
            if self.arm.learns_start:
                params["start"] = f"{start:.6f}"
        if name == "contextual":
            parse_params(name, params)  # checked like any other (the hello was checked before the welcome)
            self.policy: DifficultyPolicy = ContextualPolicy(
                params, self.default_level, self.band, spec.game_id, seed, make_policy
            )
            if not session.experiment:
                session.experiment = "contextual"
        else:
            self.policy = make_policy(name, params, self.default_level, self.band, seed)
        if self.arm is not None and self.portfolio is not None and self.policy.note is None:
            # Why this session got this director: the risk it answers, the chance it is the best of the
            # candidates (the draw's probability) and what its players have gained so far.
            managing = self.arm.manages
            if self.arm.learns_start and abs(start - self.default_level) > 0.01:
                managing = "boredom" if start > self.default_level else "frustration"
            self.policy.note = DirectorNote(
                managing=managing,
                target_level=start,
                designer_level=self.default_level,
                expected_gain_s=self.portfolio.expected_gain_s(self.arm.label),
                confidence=drawn_with,
                propensity=drawn_with,
                candidate=self.arm.label,
            )
        self.hints_on = session.has(Capability.NPC_HINTS) and params.get("npc_hints", "on") != "off"
        retreat = float(parse_params(name, {"retreat": params["retreat"]})["retreat"]) if "retreat" in params else 0.0
        self.retreat = Retreat(self.default_level, retreat) if retreat > 0 else None
        allowed = set(spec.npc_tactics) or set(TACTIC_ENUMS.tolist())
        # The model's tactic indices that the game implements.
        self.allowed = np.array([i for i, t in enumerate(TACTIC_ENUMS.tolist()) if t in allowed], np.int64)
        self.allowed_enums = TACTIC_ENUMS[self.allowed]
        self.values = self.defaults.copy()  # the knob values we last sent
        # What the latest model step asked for, for the frames until the next step (the model clock):
        # the knob values of its target (approached at each knob's rate), its hints and insights.
        self.wanted = self.defaults.copy()
        self.fallback = False  # the latest step failed: the frames after it ease toward the defaults too
        self.last_hints: list[Hint] = []
        self.template: Any = None  # the latest step's SessionResponse: frames until the next copy it
        self.template_npcs: list[int] = []  # the NPC ids of that step's frame
        self._lo, self._hi = self.lo.tolist(), self.hi.tolist()  # plain floats for the per-frame work
        self._rate = self.rate.tolist()
        # The same for the compiled easing (engine/between.py): each knob's rate, lo, hi; and the buffer
        # it eases into, which `values` then is (rewritten by the next frame between steps: copy to keep).
        self._limits = np.array([self._rate, self._lo, self._hi], np.float64).T.copy()
        self._eased = np.zeros(len(self.values), np.float32)
        self.last_time: float | None = None
        # The game time of the session's first frame, answered or not (frames superseded while its first
        # step ran are play too): what a recording counts from, and so what the portfolio counts from.
        self.first_seen: float | None = None
        self.played_s = 0.0  # game seconds since the first frame (gaps over MAX_PLAY_GAP_S count as that)
        self._unreported_s = 0.0  # of which the portfolio has not heard yet (it hears once a PLAY_REPORT_S)

    @property
    def note(self) -> DirectorNote | None:
        """What the director is doing for the session and why (Guidance.director): its policy's note, and
        what a retreat took back of it."""
        return self.policy.note if self.retreat is None else self.retreat.explained(self.policy.note)

    def finish(self, by_player: bool = True) -> None:
        """The session ended, by the player leaving (False: cut short otherwise, as by a time limit)."""
        if self.portfolio is not None and self.arm is not None:
            self.report_play()
            # A learns_start candidate's next start follows the level this session ended at.
            end = None
            if self.arm.learns_start:
                # Where the candidate had taken the player (the knobs sent last, and what a retreat held
                # back of its move): a player who leaves disengages first, which says nothing of the start.
                # Recordings say the same (session_outcomes.end_level).
                back = self.retreat.taken_back if self.retreat is not None else 0.0
                end = self.session.spec.knobs.to_difficulty(self.values) + back - self.default_level
            self.portfolio.ended(self.evidence, by_player, end, self.played_s)
        self.policy.ended(by_player)

    def ease(self, game_time: float, compiled: bool = True) -> tuple[list[float], list[str]]:
        """A frame between model steps: the knobs go on toward what the latest step wanted, at each
        knob's rate (the guard every frame gets, with no new decision), then `checked`. Returns them as
        plain floats for the wire, and the names of any that were not finite and in range (sent as their
        defaults). By the compiled kernel where it is built and `compiled` (engine/between.py), else
        `guard`'s arithmetic on plain floats: a handful of knobs, every frame."""
        dt = self.elapsed(game_time)
        got = ease_compiled(self._eased, self.values, self.wanted, self._limits, dt) if compiled else None
        if got is None:
            self.values = self._ease_in_python(dt)
        else:
            self.values = self._eased
            if got[1]:  # every value finite and in range
                return got[0], []
        values, wrong = self.checked(self.values)
        return values.tolist(), wrong

    def _ease_in_python(self, dt: float) -> np.ndarray:
        out = []
        for w, v, r, lo, hi in zip(
            self.wanted.tolist(), self.values.tolist(), self._rate, self._lo, self._hi, strict=True
        ):
            if r > 0:
                step = r * dt
                w = min(max(w, v - step), v + step)
            out.append(min(max(w, lo), hi))
        return np.array(out, np.float32)

    def start_from(self, applied: np.ndarray) -> None:
        """Before the first guidance: start from the knob values the game reports applying (a session
        resumed without its state, or a game that starts off its defaults), so that the first answer
        moves from where the game is, within each knob's rate, not from the defaults. NaN (a knob the
        frame did not report) keeps the default."""
        if self.last_time is None and len(applied) == len(self.values):
            seen = np.isfinite(applied)
            self.values = np.where(seen, np.clip(applied, self.lo, self.hi), self.defaults).astype(np.float32)

    def toward_defaults(self, game_time: float) -> np.ndarray:
        """The fallback when the model cannot answer: the designer's defaults, approached at each knob's
        max_change_per_second like any other change (a sudden jump is what the rate limit forbids)."""
        self.wanted = self.defaults
        self.fallback = True
        self.values = guard(self.defaults, self.values, self.rate, self.elapsed(game_time), self.lo, self.hi)
        return self.values

    def checked(self, values: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The last guard before knob values leave the sidecar: each finite and inside its range. A value
        that is not is a bug upstream: it is replaced by the designer's default and named."""
        vals = values.tolist()
        bad = [i for i, (v, lo, hi) in enumerate(zip(vals, self._lo, self._hi, strict=True)) if not lo <= v <= hi]
        if not bad:
            return values, []
        fixed = values.copy()
        fixed[bad] = self.defaults[bad]
        self.values = fixed
        return fixed, [f"{self.names[i]}={vals[i]}" for i in bad]

    def seen(self, game_time: float) -> None:
        """A frame of the session arrived (whether it will be answered or superseded)."""
        if self.first_seen is None:
            self.first_seen = game_time

    def elapsed(self, game_time: float) -> float:
        """Game seconds since the last knob values (0 the first time: the knobs start where they are)."""
        if self.last_time is not None and game_time < self.last_time:
            # A step answered after later frames were (EngineConfig.answer_steps_at_once): its decision
            # applies from now on; the knobs' clock never goes back, or the next frame's ease would count
            # those frames' time again and move faster than the knob's rate.
            return 0.0
        dt = 0.0 if self.last_time is None else max(game_time - self.last_time, 0.0)
        since = self.last_time if self.last_time is not None else self.first_seen
        played = 0.0 if since is None else min(max(game_time - since, 0.0), MAX_PLAY_GAP_S)
        self.last_time = game_time
        self.played_s += played
        if self.portfolio is not None and self.arm is not None:
            self._unreported_s += played
            if self._unreported_s >= PLAY_REPORT_S:
                self.report_play()
        return dt

    def report_play(self) -> None:
        """Tell the portfolio the play it has not heard of (it hears at least once a PLAY_REPORT_S of play,
        not every frame: at 60 Hz a lock and a lookup a frame were a tenth of a frame's cost)."""
        if self.portfolio is not None and self.arm is not None and self._unreported_s:
            self.portfolio.played(self.evidence, self._unreported_s)
            self._unreported_s = 0.0


PLAY_REPORT_S = 1.0  # seconds of a session's play the portfolio may hear of late (sessions last minutes)


def guard(
    wanted: np.ndarray, prev: np.ndarray, rate: np.ndarray, dt: float | np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Knob values toward `wanted`, at most rate * dt from `prev` (no limit where rate is 0), in [lo, hi]."""
    step = np.where(rate > 0, rate * dt, np.inf)
    # np.clip's own, as ufuncs: clip's Python wrapper costs more than the arithmetic on a few knobs
    eased = np.minimum(np.maximum(wanted, prev - step), prev + step)
    return np.asarray(np.minimum(np.maximum(eased, lo), hi), np.float32)


# NPC hints keep a player near the band where the knobs do not (a fixed level, a rubber band): below the
# band the NPCs' most effective tactic, above it the least, inside it the median. Where the director
# steers the knobs to the band itself (`predictive`), hints act only where the knobs have run out: above
# the band at the easiest level the least effective tactic, below it at the hardest the most effective,
# elsewhere NO_HINT (sent as NPC_TACTIC_UNSPECIFIED: the game's own behaviour). Why: both at once calm
# fights twice over; on 1,000 default players `predictive` played 480 s with every hint and 504 s with
# hints only at the knobs' ends, while a fixed 0.4 fell from 416 s to 342 s without its hints
# (docs/director-eval-2026-12-01.md, thirteenth session).
NO_HINT = -1
KNOBS_AT_EDGE = 0.05  # a target level this close to 0 (or 1) has the knobs at their easiest (hardest)


def choose_tactics(
    p: np.ndarray,
    p_fail_now: np.ndarray,
    lo: float | np.ndarray,
    hi: float | np.ndarray,
    level: float | np.ndarray,
    steers: bool | np.ndarray,
) -> np.ndarray:
    """p: [H, A] chance each NPC lands damage under each tactic; p_fail_now, lo, hi, level, steers: [H] (or
    scalars), of the player each NPC is hinted for: the difficulty the director wants now, and whether it
    steers the knobs to the band. Returns [H] indices into the tactics (or NO_HINT)."""
    best, worst = p.argmax(axis=-1), p.argmin(axis=-1)
    band_rule = np.where(p_fail_now < lo, best, np.where(p_fail_now > hi, worst, _median_index(p)))
    ease = (p_fail_now > hi) & (level <= KNOBS_AT_EDGE)
    press = (p_fail_now < lo) & (level >= 1.0 - KNOBS_AT_EDGE)
    knobs_first = np.where(ease, worst, np.where(press, best, NO_HINT))
    return np.where(steers, knobs_first, band_rule)


def aggression(p_fail_now: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    """How hard NPCs should press, per player: 0.5 at the band's middle, more when the player is safe."""
    return np.minimum(np.maximum(0.5 + 2.0 * (0.5 * (lo + hi) - p_fail_now), 0.0), 1.0)  # clip, as ufuncs


def _median_index(p: np.ndarray) -> np.ndarray:
    """Index of the median along the last axis; of two middle ones (an even count), the lower index."""
    order = p.argsort(axis=-1, kind="stable")
    a = p.shape[-1]
    return order[..., a // 2] if a % 2 else np.minimum(order[..., a // 2 - 1], order[..., a // 2])


def observation(
    features: FrameFeatures,
    p_fail: np.ndarray,
    p_quit: np.ndarray,
    levels: np.ndarray,
    value: np.ndarray | None = None,
    horizons: tuple[float, float] = (10.0, 300.0),
    skill: float = -1.0,
) -> Observation:
    """horizons: the model's (fail, value) horizons in seconds."""
    return Observation(
        game_time=features.game_time,
        dt=float(features.players[0, P["dt"]]),
        difficulty=features.difficulty,
        players=features.players,
        p_fail=p_fail,
        p_quit=p_quit,
        levels=levels,
        value=value if value is not None else np.zeros((0, 0, 0), np.float32),
        fail_horizon_s=horizons[0],
        value_horizon_s=horizons[1],
        skill=skill,
    )
