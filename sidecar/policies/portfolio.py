"""The portfolio director: which director keeps *this game's* players playing longest, learned from
their own play, with the designer's level always among the candidates.

Why: a director tuned on one population can make another's sessions shorter than the designer's
fixed level (the predictive director lost 45% against a fixed level on players who seek a thrill).
No model trained before launch knows a game's real players; their play does. Each new session of a
game is given one of a few candidate directors (arms) by Thompson sampling on each arm's quit hazard:
quits per second of play, from every second its sessions have been played so far (sessions still
running count as time played without a quit, so the evidence grows every step, not only when
sessions end; a session cut short by something other than the player leaving is censored, not a
quit). An arm whose players leave sooner than at the designer's level gets fewer and fewer sessions;
one whose players stay longer gets most of them. The cost is the exploration while the evidence is
thin; the gain is that the game soon runs the best of its candidates for its own players. The
fixed-level candidates form a ladder that grows at the end where the best one sits (LADDER_* below);
`predictive`'s follower, the same director with a harder band, joins likewise where it leads (FOLLOWERS).

The posterior per arm is Gamma(1 + quits, PRIOR_S + seconds played) on the hazard (a constant-hazard
survival model: crude in time, robust for ranking arms); every arm starts from the same prior. The
`adaptive` candidate, whose start moves, is weighed by its sessions from about the start it has now
(evidence_label). The
arm and the probability it had of being drawn go in the session's `experiment`/`arm`/
`assignment_propensity` (welcome, dashboard, recordings) for analysis and off-policy evaluation.
State is per game (Hello.game_id). With --state-dir it is kept across restarts and shared by every
process serving from that directory (sidecar/operations/portfolio_store.py adds each process's new
evidence into one file per game and reads back everyone's: `take_delta` / `absorb` here; the adaptive
candidate's start likewise: `take_start_moves` / `absorb_starts`).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from sidecar.policies.experiments import normal_label, parse_arm

__all__ = [
    "ADAPTIVE_ARM",
    "CONTEXT_ARMS",
    "CONTEXT_MARK",
    "DEFAULT_ARMS",
    "FIXED_ARMS",
    "FOLLOWERS",
    "LEARNING_POLICIES",
    "NO_MOVE",
    "PORTFOLIO_RETREAT",
    "PREDICTIVE_HARDER",
    "PROPENSITY_DRAWS",
    "ArmEvidence",
    "Draws",
    "Portfolio",
    "PortfolioArm",
    "SkillSpread",
    "StartMove",
    "at_a_start",
    "candidate_label",
    "candidate_of",
    "evidence_label",
    "learning_games",
    "moved",
    "portfolio_for",
    "portfolios",
    "reset_portfolios",
    "room_for_game",
    "rung",
    "skill_spread",
    "start_after",
    "start_at",
    "start_end",
    "start_range",
    "start_range_of",
    "start_within",
    "then_end",
    "then_move",
    "thompson",
]


@dataclass(frozen=True)
class PortfolioArm:
    label: str
    policy: str
    params: tuple[tuple[str, str], ...] = ()
    manages: str = "none"  # the risk it answers, for the director note: "frustration", "boredom" or "none"
    # An adaptive director whose sessions start where this game's recent sessions of it ended (START_*).
    learns_start: bool = False
    # The candidate that joins once this one is probably the best (FOLLOWERS), as a rung joins the ladder.
    then: str = ""
    # Whether a move harder than the designer's level is taken back for a player it hurts (PORTFOLIO_RETREAT).
    retreats: bool = True

    @property
    def offset(self) -> float:
        """How far from the designer's level it holds the difficulty (0 for a director that adapts)."""
        return float(dict(self.params).get("offset", "0"))

    @property
    def director(self) -> str:
        """The director it is, as an experiment's arm spells it (normal_label):
        "predictive:band_high=0.4;band_low=0.1"."""
        return (
            normal_label(f"{self.policy}:" + ";".join(f"{k}={v}" for k, v in self.params))
            if self.params
            else self.policy
        )


# Per-player adaptation from a start the game's players taught it: the rubber band with a gentle
# death step (each death -0.05, not -0.15), each session starting at the level where this game's recent
# sessions of it ended (an average over about START_MEMORY sessions, a session counting fully once it
# lasted START_FULL_S). Where players want it harder than the designer's level it starts there within a
# few dozen sessions, and still moves per player: measured against the best fixed level on the same
# players, a rubber band started there plays 11-12% longer (docs/director-eval-2026-12-01.md).
START_MEMORY = 20.0
START_FULL_S = 120.0
# Its sessions from other starts count for its present start as at most this many sessions (evidence_label).
START_ELSEWHERE = 10.0


# Its start stays among the starts its sessions have not shown to be worse than its best start's: the
# start whose sessions' mean life has the highest lower bound is the best; a start whose upper bound is
# below that walls off itself and every start beyond it (start_range). Bounds are START_Z standard errors
# of the log mean life (1 / sqrt(quits + 1) under the constant-hazard model). Why: the start follows where
# sessions end, and the rubber band's level climbs through calm play, so on players who want it easier
# than its start the ends run ahead of what keeps them (default players: +0.4 within ~200 sessions, where
# sessions lasted half as long as from +0.1).
START_Z = 1.5


def start_end(end_offset: float | None, played_s: float) -> tuple[float, float] | None:
    """What a learns_start arm's session that ended `end_offset` from the designer's level after `played_s`
    teaches its start: (weight, end offset); None for a session that teaches nothing (no play, no level)."""
    if end_offset is None or not math.isfinite(end_offset) or not math.isfinite(played_s):
        return None
    weight = min(max(played_s, 0.0) / START_FULL_S, 1.0) / START_MEMORY
    return (weight, min(max(end_offset, -1.0), 1.0)) if weight > 0 else None


def start_after(start: float, weight: float, end_offset: float) -> float:
    """The start after one more session's end (an exponential average over ~START_MEMORY full sessions)."""
    return start + weight * (end_offset - start)


def start_range(at_starts: dict[float, ArmEvidence]) -> tuple[float, float]:
    """The starts a learns_start arm may have, (lowest, highest) offset, given its evidence at each start it
    has had (keyed by the start's offset on the ladder's grid). Starts between those with evidence, and
    beyond the outermost, are open until evidence walls them off (START_Z)."""
    if not at_starts:
        return (-1.0, 1.0)
    bounds: dict[float, tuple[float, float]] = {}
    for start, e in at_starts.items():
        log_life, spread = math.log(e.mean_life_s), START_Z / math.sqrt(1.0 + max(e.quits, 0))
        bounds[start] = (log_life - spread, log_life + spread)
    best = max(bounds, key=lambda start: bounds[start][0])
    floor = bounds[best][0]
    lo, hi = -1.0, 1.0
    for start in sorted(s for s in bounds if s > best):
        if bounds[start][1] < floor:
            hi = start - LADDER_STEP
            break
    for start in sorted((s for s in bounds if s < best), reverse=True):
        if bounds[start][1] < floor:
            lo = start + LADDER_STEP
            break
    return (lo, hi)


def start_within(start: float, allowed: tuple[float, float]) -> float:
    """The start a learns_start arm's next session gets: where its sessions' ends took it (`start`), within
    the starts its evidence allows (start_range)."""
    return min(max(start, allowed[0]), allowed[1])


def start_range_of(label: str, evidence: Mapping[str, ArmEvidence]) -> tuple[float, float]:
    """start_range for candidate `label` from evidence by label (its "adaptive@+0.2" entries are read)."""
    at = {start_at(k): e for k, e in evidence.items() if candidate_label(k) == label and e.finished > 0}
    return start_range({start: e for start, e in at.items() if start is not None})


def start_at(label: str) -> float | None:
    """The start an evidence label at a start names ("adaptive@+0.2": 0.2; None for any other label, or
    one a damaged store file holds: "adaptive@x")."""
    if not at_a_start(label):
        return None
    try:
        start = float(label.partition(_AT)[2])
    except ValueError:
        return None
    return start if math.isfinite(start) and abs(start) <= 1.0 + 1e-9 else None


# Sessions' ends move a start affinely (start_after): any run of them is one move, start -> scale * start
# + shift, kept in constant space however many sessions end between two exchanges (or in a process that
# never exchanges: no --state-dir).
StartMove = tuple[float, float]
NO_MOVE: StartMove = (1.0, 0.0)


def then_end(move: StartMove, weight: float, end_offset: float) -> StartMove:
    """`move`, then one more session's end."""
    scale, shift = move
    return (1.0 - weight) * scale, (1.0 - weight) * shift + weight * end_offset


def then_move(first: StartMove, second: StartMove) -> StartMove:
    """`first`, then `second`."""
    return second[0] * first[0], second[0] * first[1] + second[1]


def moved(start: float, move: StartMove) -> float:
    """Where `move` takes `start` (bounded to [-1, 1], as every end is)."""
    return min(max(move[0] * start + move[1], -1.0), 1.0)


ADAPTIVE_ARM = PortfolioArm("adaptive", "rubber_band", (("death_step", "0.05"),), learns_start=True)

# The designer's level first: the reference the others must beat. Then `predictive`, which eases where
# the model sees the need, and the adaptive rubber band above, which finds the level this game's players
# want (where they want it harder, as far as they want) and moves per player around it. No fixed
# "harder" or "easier" from the start: fixed rungs climbed one every few hundred sessions and every arm
# costs exploration (docs/director-eval-2026-12-01.md, 11th session); the ladder below adds them around
# the designer's level where it is probably the best candidate.
_DESIGNER = PortfolioArm("designer", "static")
_HARDER = PortfolioArm("harder", "static", (("offset", "0.1"),), manages="boredom")
# Eases where the model sees the need; no retreat (PORTFOLIO_RETREAT): its band already eases a player it presses.
_PREDICTIVE = PortfolioArm("predictive", "predictive", manages="frustration", retreats=False)
# `predictive` with a harder band: no one band suits every population (docs/director-eval-2026-12-01.md,
# 32nd session: (0.10, 0.40) against the shipped (0.05, 0.30) plays default players +6%, thrill-seekers
# +16%, veterans +11%, but tilting players -12% and fragile ones -25%). As a fourth candidate from the
# start it cost fragile players 2.5% and veterans 4.3% in exploration; it joins only where `predictive`
# is probably the best (as a ladder rung joins), so games whose players want another candidate never pay.
# So, 1,000 players from nothing (33rd session): default +1.0/+4.2/+8.8% (seeds 20261128/4242/1), holdout
# +3.2%, tilt -0.7/-1.8%, fragile -1.0/-1.7% (both still far above any fixed level), thrill-seekers and
# veterans unchanged to the session (it never joined). Without the retreat on both predictive candidates
# (35th session): default 518/496/506 s (1.12x/1.06x/1.10x the rubber band; before 489/499/507), holdout
# +3.7%, fragile -3.8% on both seeds (the shipped band alone lost 2.4% there without it), tilt -0.5/-2%.
PREDICTIVE_HARDER = PortfolioArm(
    "predictive_harder",
    "predictive",
    (("band_low", "0.1"), ("band_high", "0.4")),
    manages="frustration",
    retreats=False,
)
FOLLOWERS = {a.label: a for a in (PREDICTIVE_HARDER,)}
DEFAULT_ARMS = (_DESIGNER, replace(_PREDICTIVE, then=PREDICTIVE_HARDER.label), ADAPTIVE_ARM)
# The portfolio before the adaptive candidate (and the fixed part of a contextual share): what a replay
# of a log of fixed directors can estimate (training/portfolio_replay.py).
FIXED_ARMS = (_DESIGNER, _HARDER, _PREDICTIVE)
# A fixed or adaptive candidate's move harder than the designer's level is taken back for a player who
# disengages under pressure (sidecar/policies/retreat.py), wholly at this engagement drop. Not a predictive
# candidate's: it keeps each player's predicted risk in its band, so it already eases for a player it
# presses, and what the retreat took back were the harder levels its band gave the skilled players who
# wanted them (35th session: `predictive_harder` alone on the card's 1,000 default players 533 s, with the
# retreat 516; the portfolio without it on its predictive candidates, docs/director-eval-2026-12-01.md).
# Measured on 300 players (seed 4242), a fixed 0.8 with it against without: thrill-seekers 391 s against
# 383 and their least skilled tenth 653 s against 578 (693 at the designer's 0.5); veterans 153 against
# 152. At 0.15: 371 and 146. The portfolio with it (1,000 players): thrill-seekers' least skilled tenth
# -14% / -3% against the designer's level (seeds 4242 / 1; without it -29% / -23%; a rerun of 4242:
# -16.7%, still below beyond chance), means within a trajectory's spread of before.
PORTFOLIO_RETREAT = "0.3"
_PRIOR_S = 300.0  # the prior: one quit in this many seconds of play, for every arm
PROPENSITY_DRAWS = 200

# The fixed-level candidates form a ladder around the designer's level. When the rung at one end is
# probably the best candidate (LADDER_SHARE of the draws) after LADDER_AFTER of its sessions ended,
# the next rung beyond it joins (one LADDER_STEP further, at most LADDER_MAX from the designer's
# level): players who want it harder than "harder" find it, without paying from the start for rungs
# nobody wants (a fourth arm from the start cost more exploration than it won).
LADDER_STEP = 0.1
LADDER_MAX = 0.3
LADDER_AFTER = 50
LADDER_SHARE = 0.5
# A new rung starts from its neighbour's mean life, worth this many sessions (its own evidence soon
# outweighs it): with the plain prior, a few unlucky first sessions against a neighbour with hundreds
# behind it would shut it out for good.
LADDER_PRIOR_SESSIONS = 3.0


def evidence_label(label: str, start: float) -> str:
    """What a learns_start candidate's session counts for besides its candidate: the candidate at its start,
    to the ladder's step ("adaptive@+0.2"). Why: such a candidate changes as its start moves (on players
    who want it harder, `adaptive` from +0.3 keeps them ~20% longer than from the designer's level), so
    the draw weighs it by its sessions from about the start it would have now; its sessions from
    elsewhere lend a prior worth at most START_ELSEWHERE sessions (Portfolio._prior). Its own label keeps
    every session (reports, metrics)."""
    steps = round(min(max(start, -1.0), 1.0) / LADDER_STEP)
    return f"{label}{_AT}{steps * LADDER_STEP:+.1f}"


_AT = "@"


def candidate_label(label: str) -> str:
    """The candidate an evidence label is of ("adaptive@+0.2" and "adaptive" are of "adaptive")."""
    return label.partition(_AT)[0]


def at_a_start(label: str) -> bool:
    """Whether an evidence label is a candidate's at one start (evidence_label), not the candidate's whole."""
    return _AT in label


def rung(offset: float) -> PortfolioArm:
    """The fixed-level candidate `offset` from the designer's level ("harder" is +0.1, "easier" -0.1)."""
    steps = round(offset / LADDER_STEP)
    if steps == 0:
        return PortfolioArm("designer", "static")
    name, manages = ("harder", "boredom") if steps > 0 else ("easier", "frustration")
    label = name if abs(steps) == 1 else f"{name}{steps * LADDER_STEP:+.1f}"
    return PortfolioArm(label, "static", (("offset", f"{steps * LADDER_STEP:.1f}"),), manages=manages)


def _offset(arm: PortfolioArm) -> float | None:
    """A fixed-level candidate's offset from the designer's level (None for other directors)."""
    return arm.offset if arm.policy == "static" else None


def _rung_named(label: str) -> PortfolioArm | None:
    """The ladder rung with this label, if it is one (stored evidence names arms by label)."""
    for steps in range(-round(LADDER_MAX / LADDER_STEP), round(LADDER_MAX / LADDER_STEP) + 1):
        arm = rung(steps * LADDER_STEP)
        if arm.label == label:
            return arm
    return None


def candidate_of(director: str, designer_level: float) -> str | None:
    """The candidate label a fixed director's sessions are evidence for: a served portfolio's own label
    ("harder"), a fixed level ("static:0.7", "static:level=0.7" or "static:offset=0.2" is "harder+0.2"
    where the designer's level is 0.5; plain "static" is the designer's), a director among the
    candidates with its defaults ("predictive", "rubber_band") or a follower's parameters
    ("predictive_harder"). None: no candidate (a level off the ladder's 0.1 grid or beyond its reach,
    other parameters, another director)."""
    if director in _CANDIDATE_LABELS or _rung_named(director) is not None:
        return director
    try:
        arm = parse_arm(director, 1.0)
    except ValueError:
        return None
    spelled = normal_label(director)
    for follower in FOLLOWERS.values():  # "predictive:band_low=0.1;band_high=0.4" is "predictive_harder"
        if spelled == follower.director:
            return follower.label
    params = dict(arm.params)
    if arm.policy != "static" or not set(params) <= {"level", "offset"}:
        return None
    level = float(params.get("level", designer_level)) + float(params.get("offset", 0.0))
    steps = round((level - designer_level) / LADDER_STEP)
    if abs(level - designer_level - steps * LADDER_STEP) > 1e-3 or abs(steps) * LADDER_STEP > LADDER_MAX + 1e-9:
        return None
    return rung(steps * LADDER_STEP).label


@dataclass
class ArmEvidence:
    quits: int = 0  # sessions the player ended
    seconds: float = 0.0  # play, by every session given this arm, ended or not
    finished: int = 0  # sessions ended, by the player or not
    assigned: int = 0

    def plus(self, other: ArmEvidence, sign: int = 1) -> ArmEvidence:
        return ArmEvidence(
            self.quits + sign * other.quits,
            self.seconds + sign * other.seconds,
            self.finished + sign * other.finished,
            self.assigned + sign * other.assigned,
        )

    @property
    def mean_life_s(self) -> float:
        """Expected session length under the constant-hazard model (its posterior mean life)."""
        return (_PRIOR_S + self.seconds) / (1 + self.quits)


_NOTHING = ArmEvidence()  # never changed: what an arm without evidence adds


# Thompson draws on Gamma(shape, rate) quit hazards: (the arm drawn, wins of each in PROPENSITY_DRAWS more).
Draws = Callable[[list[float], list[float], random.Random], tuple[int, list[int]]]


@dataclass
class Portfolio:
    arms: tuple[PortfolioArm, ...] = DEFAULT_ARMS
    seed: int = 0
    state: dict[str, ArmEvidence] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # How the draws are made (None: _thompson_draws): an offline replay swaps in a vectorised one.
    draws: Draws | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._draws: Draws = self.draws or _thompson_draws
        for a in self.arms:
            self.state.setdefault(a.label, ArmEvidence())
        # The totals as of the last exchange with the other processes (absorb): what state holds beyond
        # them is this process's own evidence, not yet shared.
        self._synced: dict[str, ArmEvidence] = {a.label: ArmEvidence() for a in self.arms}
        # A learns_start arm's evidence at each start it has had ("adaptive@+0.2", evidence_label), beside
        # its whole evidence in `state`: what the draw weighs it by. Exchanged like `state`.
        self.at_start: dict[str, ArmEvidence] = {}
        # The learns_start arms' labels, read as a session plays (the ladder only ever adds fixed rungs).
        self._learning = frozenset(a.label for a in self.arms if a.learns_start)
        # (quits, seconds) a new rung starts from instead of the plain prior.
        self._priors: dict[str, tuple[float, float]] = {}
        # A learns_start arm's start, as an offset from the designer's level (START_*), and how this
        # process's sessions moved it since the last exchange (the store applies that to the shared start).
        self._starts: dict[str, float] = {}
        self._start_moves: dict[str, StartMove] = {}
        # The starts each learns_start arm may have (start_range), as of its evidence at the last session end
        # or exchange: what it starts from is where its sessions' ends took it, within these.
        self._ranges: dict[str, tuple[float, float]] = {}

    def take_delta(self) -> dict[str, ArmEvidence]:
        """This process's evidence since the last exchange, per arm and per start (at_start's labels);
        from now on counted as shared."""
        with self._lock:
            delta = {label: ev.plus(self._synced.get(label, _NOTHING), -1) for label, ev in self._all()}
            for label, d in delta.items():
                self._synced[label] = self._synced.get(label, _NOTHING).plus(d)
            return delta

    def absorb(self, totals: dict[str, ArmEvidence]) -> None:
        """Everyone's evidence (the shared totals, this process's delta included): the difference from the
        last exchange is what other processes (or earlier runs) learned. A ladder rung another process
        added joins here too; other arms it does not know are ignored."""
        with self._lock:
            for label in totals:
                extra = self._joiner_named(label) if label not in self.state else None
                if extra is not None:
                    self._add(extra)
                elif at_a_start(label) and candidate_label(label) in self._learning:
                    self.at_start.setdefault(label, ArmEvidence())  # perhaps a start not drawn at here yet
            for kept in (self.state, self.at_start):
                for label, ev in kept.items():
                    total = totals.get(label)
                    if total is not None:
                        kept[label] = ev.plus(total.plus(self._synced.get(label, _NOTHING), -1))
                        self._synced[label] = total
            for label in self._learning:
                self._range_again(label)

    def choose(self, borrowed: dict[str, tuple[float, float]] | None = None) -> tuple[PortfolioArm, float]:
        """An arm for a new session (Thompson sampling), and the probability it had of being drawn
        (estimated from PROPENSITY_DRAWS more draws; logged for off-policy evaluation). borrowed: extra
        (quits, seconds) per arm label on top of each arm's prior (a skill share's siblings' evidence)."""
        with self._lock:
            keys = [self._key(a) for a in self.arms]
            priors = [self._prior(a, key) for a, key in zip(self.arms, keys, strict=True)]
            lent = [(borrowed or {}).get(a.label, (0.0, 0.0)) for a in self.arms]
            own = [
                self.state[key] if key == a.label else self.at_start.setdefault(key, ArmEvidence())
                for a, key in zip(self.arms, keys, strict=True)
            ]
            shapes = [k + q + e.quits for e, (k, _), (q, _) in zip(own, priors, lent, strict=True)]
            rates = [r + x + e.seconds for e, (_, r), (_, x) in zip(own, priors, lent, strict=True)]
            pick, wins = self._draws(shapes, rates, self._rng)
            arm = self.arms[pick]
            self.state[arm.label].assigned += 1
            if keys[pick] != arm.label:
                own[pick].assigned += 1
            self._climb([w / PROPENSITY_DRAWS for w in wins])
            return arm, max(wins[pick], 1) / PROPENSITY_DRAWS

    def _all(self) -> list[tuple[str, ArmEvidence]]:
        """Every arm's evidence and every learns_start arm's at each start, by label."""
        return [*self.state.items(), *self.at_start.items()]

    def _key(self, arm: PortfolioArm) -> str:
        """The evidence a session of `arm` drawn now counts for (its own label, or its label at its start)."""
        return self._label_now(arm.label) if arm.learns_start else arm.label

    def _label_now(self, label: str) -> str:
        """A learns_start arm's evidence label at the start it has now."""
        return evidence_label(label, self._start_now(label))

    def _start_now(self, label: str) -> float:
        """A learns_start arm's start: where its sessions' ends took it, within the starts its evidence allows."""
        return start_within(self._starts.get(label, 0.0), self._ranges.get(label, (-1.0, 1.0)))

    def _range_again(self, label: str) -> None:
        """The starts a learns_start arm may have, from its evidence at each start now (start_range)."""
        self._ranges[label] = start_range_of(label, self.at_start)

    def _prior(self, arm: PortfolioArm, key: str) -> tuple[float, float]:
        """(quits, seconds) an arm's evidence starts from: the plain prior, a new rung's neighbour's record
        (_climb), or for a learns_start arm at its present start, its sessions from other starts, worth at
        most START_ELSEWHERE sessions (a start it has hardly played from is tried again, not judged by
        hundreds of sessions from elsewhere; nor is one it has just crossed into judged by its first few)."""
        if key == arm.label:
            return self._priors.get(key, (1.0, _PRIOR_S))
        elsewhere = self.state.get(arm.label, _NOTHING).plus(self.at_start.get(key, _NOTHING), -1)
        if elsewhere.finished <= 0:
            return (1.0, _PRIOR_S)
        weight = min(1.0, START_ELSEWHERE / elsewhere.finished)
        return (1.0 + weight * elsewhere.quits, _PRIOR_S + weight * elsewhere.seconds)

    def _climb(self, best_share: list[float]) -> None:
        """Add the next ladder rung beyond an end rung that is probably the best candidate (see LADDER_*),
        and the follower of any other candidate that is (PortfolioArm.then)."""
        joining: list[tuple[int, PortfolioArm]] = [
            (i, FOLLOWERS[a.then]) for i, a in enumerate(self.arms) if a.then in FOLLOWERS
        ]
        levels = [(o, i) for i, a in enumerate(self.arms) if (o := _offset(a)) is not None]
        if levels:
            for (offset, i), direction in ((max(levels), 1), (min(levels), -1)):
                further = offset + direction * LADDER_STEP
                if abs(further) <= LADDER_MAX + 1e-9:
                    joining.append((i, rung(further)))
        for i, new in joining:
            leader = self.state[self.arms[i].label]
            if new.label not in self.state and best_share[i] >= LADDER_SHARE and leader.finished >= LADDER_AFTER:
                n = LADDER_PRIOR_SESSIONS
                self._add(new)
                self._priors.setdefault(new.label, (1.0 + n, _PRIOR_S + n * leader.mean_life_s))

    def adopt(self, labels: list[str]) -> None:
        """Ladder rungs another portfolio added (a sibling skill share's) join this one too."""
        with self._lock:
            for label in labels:
                arm = self._joiner_named(label) if label not in self.state else None
                if arm is not None:
                    self._add(arm)

    def _joiner_named(self, label: str) -> PortfolioArm | None:
        """The candidate with this label that may join this portfolio (a ladder rung, or one of its
        candidates' followers), if it is one: another process or a sibling share added it."""
        follower = FOLLOWERS.get(label)
        if follower is not None:
            return follower if any(a.then == label for a in self.arms) else None
        return _rung_named(label)

    def _add(self, arm: PortfolioArm) -> None:
        if all(a.label != arm.label for a in self.arms):
            self.arms = (*self.arms, arm)
            self.state.setdefault(arm.label, ArmEvidence())
            self._synced.setdefault(arm.label, ArmEvidence())

    def expected_gain_s(self, label: str) -> float:
        """How much longer this arm's sessions last than the designer's level's, on the evidence so far
        (posterior mean lives; 0 for the designer's own arm)."""
        with self._lock:
            base = self.state[self.arms[0].label].mean_life_s
            return self.state[label].mean_life_s - base if label in self.state else 0.0

    def _evidence_of(self, label: str) -> list[ArmEvidence]:
        """What a session given `label` adds to: its candidate's evidence, and a learns_start candidate's at
        its start (`label` names it, "adaptive@+0.2", or else the start it has now)."""
        base = candidate_label(label)
        arm = self.state.get(base)
        if arm is None:
            return []
        if base not in self._learning:
            return [arm]
        key = label if label != base else self._label_now(base)
        return [arm, self.at_start.setdefault(key, ArmEvidence())]

    def played(self, label: str, seconds: float) -> None:
        """A session given `label` (a candidate, or a learns_start one's evidence_label) was played
        `seconds` more (called as it plays)."""
        if seconds > 0 and math.isfinite(seconds):
            with self._lock:
                for ev in self._evidence_of(label):
                    ev.seconds += seconds

    def ended(self, label: str, by_player: bool, end_offset: float | None = None, played_s: float = 0.0) -> None:
        """A session given `label` ended: by the player (a quit), or cut short otherwise (censored).
        end_offset: the level it ended at, from the designer's (a learns_start arm's next start follows it)."""
        with self._lock:
            for ev in self._evidence_of(label):
                ev.finished += 1
                ev.quits += int(by_player)
            base = candidate_label(label)
            if base in self._learning:
                self._range_again(base)
            end = start_end(end_offset, played_s)
            if end is not None:
                self._starts[base] = start_after(self._starts.get(base, 0.0), *end)
                self._start_moves[base] = then_end(self._start_moves.get(base, NO_MOVE), *end)

    def start_offset(self, label: str) -> float:
        """Where a learns_start arm's next session starts, from the designer's level (0 until it has ended some)."""
        with self._lock:
            return self._start_now(label)

    def start_of(self, label: str) -> tuple[float, str]:
        """A learns_start arm's next start (as start_offset) and the evidence its session counts for."""
        with self._lock:
            start = self._start_now(label)
            return start, evidence_label(label, start)

    def take_start_moves(self) -> dict[str, StartMove]:
        """How this process's session ends moved each learns_start arm's start since the last exchange."""
        with self._lock:
            moves, self._start_moves = self._start_moves, {}
            return moves

    def untake(self, delta: dict[str, ArmEvidence], moves: dict[str, StartMove]) -> None:
        """An exchange that failed (a full disk): what take_delta and take_start_moves took is this
        process's own again, for the next exchange."""
        with self._lock:
            for label, d in delta.items():
                if label in self._synced:
                    self._synced[label] = self._synced[label].plus(d, -1)
            for label, taken in moves.items():
                self._start_moves[label] = then_move(taken, self._start_moves.get(label, NO_MOVE))

    def absorb_starts(self, starts: dict[str, float]) -> None:
        """The shared starts (every process's moves applied, in the order they reached the file): this
        process's session ends since its moves were taken apply again on top."""
        with self._lock:
            for label, start in starts.items():
                self._starts[label] = moved(start, self._start_moves.get(label, NO_MOVE))

    def evidence(self) -> dict[str, ArmEvidence]:
        """A copy of each arm's evidence, by label."""
        with self._lock:
            return {label: ArmEvidence().plus(ev) for label, ev in self.state.items()}

    def summary(self) -> list[dict[str, float | str | int]]:
        with self._lock:
            return [
                {
                    "arm": a.label,
                    "sessions_assigned": self.state[a.label].assigned,
                    "sessions_ended": self.state[a.label].finished,
                    "quits": self.state[a.label].quits,
                    "seconds_played": round(self.state[a.label].seconds, 1),
                    "mean_life_s": round(self.state[a.label].mean_life_s, 1),
                }
                for a in self.arms
            ]


_PORTFOLIOS: dict[str, Portfolio] = {}
_GAMES: set[str] = set()  # the games taken in: _PORTFOLIOS' keys' games (a contextual game's shares are one)
_REGISTRY_LOCK = threading.Lock()
LEARNING_POLICIES = frozenset({"portfolio", "contextual"})  # the directors that keep a game's evidence


# The contextual director (contextual.py) keeps one portfolio per game and skill bucket, keyed
# "<game id>#skill<b>of<n>"; its candidates add the rubber band, which keeps the middle of the skill range
# playing longest on the default population where `predictive` keeps the lowest (the model card's notes).
CONTEXT_MARK = "#skill"
# The contextual director's shares: the fixed candidates, `predictive` and the plain rubber band (a
# share's choice is already per player; its start comes from the first minute's level).
CONTEXT_ARMS = (*FIXED_ARMS, PortfolioArm("rubber_band", "rubber_band"))
_CANDIDATE_LABELS = frozenset(
    a.label for a in (*DEFAULT_ARMS, *CONTEXT_ARMS, *FOLLOWERS.values()) if a.policy != "static"
)


def portfolio_for(game_id: str) -> Portfolio:
    """This process's portfolio for a game (created on its first session), or for a game's skill bucket."""
    with _REGISTRY_LOCK:
        return _portfolio_of(game_id)


def _portfolio_of(game_id: str) -> Portfolio:
    """portfolio_for, the registry's lock held."""
    p = _PORTFOLIOS.get(game_id)
    if p is None:
        seed = int.from_bytes(hashlib.sha256(game_id.encode()).digest()[:4], "big")
        arms = CONTEXT_ARMS if CONTEXT_MARK in game_id else DEFAULT_ARMS
        p = _PORTFOLIOS[game_id] = Portfolio(arms=arms, seed=seed)
        _GAMES.add(game_id.partition(CONTEXT_MARK)[0])
    return p


def room_for_game(game_id: str, max_games: int) -> bool:
    """Whether a session of `game_id` may learn here: the game is known already, or fewer than `max_games`
    games are (the game is then taken in at once, so hellos arriving together cannot overshoot)."""
    with _REGISTRY_LOCK:
        if game_id not in _GAMES:
            if len(_GAMES) >= max_games:
                return False
            _GAMES.add(game_id)  # its portfolio (or a contextual game's shares) comes with its first draw
        return True


def thompson(
    arms: list[PortfolioArm], evidence: dict[str, ArmEvidence], rng: random.Random
) -> tuple[PortfolioArm, float]:
    """One Thompson draw among `arms` on their quit hazards (plain prior), and the probability it had
    (from PROPENSITY_DRAWS more draws)."""
    shapes = [1.0 + evidence.get(a.label, ArmEvidence()).quits for a in arms]
    rates = [_PRIOR_S + evidence.get(a.label, ArmEvidence()).seconds for a in arms]
    pick, wins = _thompson_draws(shapes, rates, rng)
    return arms[pick], max(wins[pick], 1) / PROPENSITY_DRAWS


def _thompson_draws(shapes: list[float], rates: list[float], rng: random.Random) -> tuple[int, list[int]]:
    """One Thompson draw on Gamma(shape, rate) quit hazards (the arm whose drawn hazard is lowest: players
    stay longest), and how often each arm wins PROPENSITY_DRAWS more (its probability of being drawn)."""

    def draw() -> int:
        hazards = [rng.gammavariate(k, 1.0 / r) for k, r in zip(shapes, rates, strict=True)]
        return min(range(len(hazards)), key=hazards.__getitem__)

    pick = draw()
    wins = [0] * len(shapes)
    for _ in range(PROPENSITY_DRAWS):
        wins[draw()] += 1
    return pick, wins


class SkillSpread:
    """The skill estimates a game's sessions showed when their context was read (the latest
    SPREAD_KEEP): where a new one falls among them is its bucket. Kept per process (a restart or another
    front end learns the spread again in SPREAD_MIN sessions)."""

    def __init__(self) -> None:
        self._seen: deque[float] = deque(maxlen=SPREAD_KEEP)
        self._lock = threading.Lock()

    def bucket(self, skill: float, buckets: int) -> int:
        """Which of `buckets` equal shares of this game's players `skill` falls in (0: the least skilled);
        the middle one until SPREAD_MIN estimates have been seen."""
        with self._lock:
            seen = list(self._seen)
            self._seen.append(skill)
        if len(seen) < SPREAD_MIN:
            return buckets // 2
        # Its rank among them, ties counting half (a model that reads everyone alike puts them mid-way).
        rank = sum(1.0 if x < skill else 0.5 if x == skill else 0.0 for x in seen)
        return min(int(buckets * rank / len(seen)), buckets - 1)


SPREAD_KEEP = 2000
SPREAD_MIN = 30
_SPREADS: dict[str, SkillSpread] = {}


def skill_spread(game_id: str) -> SkillSpread:
    with _REGISTRY_LOCK:
        return _SPREADS.setdefault(game_id, SkillSpread())


def learning_games() -> set[str]:
    """The games whose sessions learn here (room_for_game took them in), whether or not one has drawn yet."""
    with _REGISTRY_LOCK:
        return set(_GAMES)


def portfolios() -> dict[str, Portfolio]:
    """Every game's portfolio in this process, by game id."""
    with _REGISTRY_LOCK:
        return dict(_PORTFOLIOS)


def reset_portfolios() -> None:
    """Forget every game's outcomes (tests, and evaluation runs that start from nothing)."""
    with _REGISTRY_LOCK:
        _PORTFOLIOS.clear()
        _GAMES.clear()
        _SPREADS.clear()
