"""The portfolio director: which director keeps *this game's* players playing longest, learned from
their sessions as they end, with the designer's level always among the candidates.

Why: a director tuned on one population can make another's sessions shorter than the designer's
fixed level (the predictive director lost 45% against a fixed level on players who seek a thrill).
No model trained before launch knows a game's real players; their finished sessions do. Each new
session of a game is given one of a few candidate directors (arms) by Thompson sampling on the mean
session length of that game's finished sessions per arm: an arm that does worse than the designer's
level gets fewer and fewer sessions, one that does better gets most of them. The cost is the
exploration while the evidence is thin; the gain is that, within a few hundred sessions, the game runs
the best of its candidates for its own players, whoever they are.

Per game (Hello.game_id), per sidecar process; the posterior is a normal one per arm, with the session
lengths' spread pooled over arms and a prior at the designer's arm's mean (an arm is not preferred
before it has been tried). The arm and its share of the sessions so far go in the session's
`experiment`/`arm` (welcome, dashboard, recordings) so outcomes can be analysed offline too.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from dataclasses import dataclass, field

__all__ = ["DEFAULT_ARMS", "Portfolio", "PortfolioArm", "portfolio_for", "reset_portfolios"]


@dataclass(frozen=True)
class PortfolioArm:
    label: str
    policy: str
    params: tuple[tuple[str, str], ...] = ()


# The designer's level first: the reference the others must beat.
DEFAULT_ARMS = (
    PortfolioArm("designer", "static"),
    PortfolioArm("easier", "static", (("offset", "-0.1"),)),
    PortfolioArm("harder", "static", (("offset", "0.1"),)),
    PortfolioArm("predictive", "predictive"),
)
_PRIOR_SESSIONS = 2.0  # pseudo-sessions of prior, at the designer's arm's mean
_PRIOR_SPREAD_S = 250.0  # the spread of session lengths before any is seen
_PROPENSITY_DRAWS = 200


@dataclass
class _Stats:
    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0


@dataclass
class Portfolio:
    arms: tuple[PortfolioArm, ...] = DEFAULT_ARMS
    seed: int = 0
    stats: dict[str, _Stats] = field(default_factory=dict)
    assigned: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        for a in self.arms:
            self.stats.setdefault(a.label, _Stats())
            self.assigned.setdefault(a.label, 0)

    def spread(self) -> float:
        """The pooled standard deviation of session lengths (the prior's until a few are seen)."""
        n = sum(s.n for s in self.stats.values())
        if n < 5:
            return _PRIOR_SPREAD_S
        ss = sum(max(s.total_sq - s.total**2 / s.n, 0.0) for s in self.stats.values() if s.n)
        dof = n - sum(1 for s in self.stats.values() if s.n)
        return max(math.sqrt(ss / max(dof, 1)), 1.0)

    def choose(self) -> tuple[PortfolioArm, float]:
        """An arm for a new session (Thompson sampling), and the probability it had of being chosen
        (estimated from _PROPENSITY_DRAWS more draws; logged for off-policy evaluation)."""
        with self._lock:
            means, scales = self._posterior()
            pick = self._draw(means, scales)
            hits = sum(self._draw(means, scales) == pick for _ in range(_PROPENSITY_DRAWS))
            arm = self.arms[pick]
            self.assigned[arm.label] += 1
            return arm, max(hits, 1) / _PROPENSITY_DRAWS

    def _posterior(self) -> tuple[list[float], list[float]]:
        sd = self.spread()
        ref = self.stats[self.arms[0].label]
        seen = sum(s.n for s in self.stats.values())
        prior = ref.mean if ref.n else (sum(s.total for s in self.stats.values()) / seen if seen else 0.0)
        means, scales = [], []
        for a in self.arms:
            s = self.stats[a.label]
            k = s.n + _PRIOR_SESSIONS
            means.append((s.total + _PRIOR_SESSIONS * prior) / k)
            scales.append(sd / math.sqrt(k))
        return means, scales

    def _draw(self, means: list[float], scales: list[float]) -> int:
        draws = [self._rng.gauss(m, sc) for m, sc in zip(means, scales, strict=True)]
        return max(range(len(draws)), key=draws.__getitem__)

    def record(self, label: str, seconds: float) -> None:
        """A session given `label` ended after `seconds` of play."""
        with self._lock:
            s = self.stats.get(label)
            if s is None or not math.isfinite(seconds) or seconds < 0:
                return
            s.n += 1
            s.total += seconds
            s.total_sq += seconds * seconds

    def summary(self) -> list[dict[str, float | str | int]]:
        sd = self.spread()
        return [
            {
                "arm": a.label,
                "sessions_finished": self.stats[a.label].n,
                "sessions_assigned": self.assigned[a.label],
                "mean_s": round(self.stats[a.label].mean, 1),
                "stderr_s": round(sd / math.sqrt(self.stats[a.label].n), 1) if self.stats[a.label].n else math.inf,
            }
            for a in self.arms
        ]


_PORTFOLIOS: dict[str, Portfolio] = {}
_REGISTRY_LOCK = threading.Lock()


def portfolio_for(game_id: str) -> Portfolio:
    """This process's portfolio for a game (created on its first session)."""
    with _REGISTRY_LOCK:
        p = _PORTFOLIOS.get(game_id)
        if p is None:
            seed = int.from_bytes(hashlib.sha256(game_id.encode()).digest()[:4], "big")
            p = _PORTFOLIOS[game_id] = Portfolio(seed=seed)
        return p


def reset_portfolios() -> None:
    """Forget every game's outcomes (tests, and evaluation runs that start from nothing)."""
    with _REGISTRY_LOCK:
        _PORTFOLIOS.clear()
