"""Off-policy evaluation of a director that learns while it plays: the portfolio, replayed on logged sessions.

Importance weighting (offpolicy.py) estimates a *fixed* director from recordings of others. The
portfolio is not fixed: which candidate a session gets depends on what the sessions before it showed,
so its mean session length includes what it pays while it learns, and that depends on how many
sessions it has and how many play at once. Estimating it from logs of its own earlier run only says
how that run went (the learning stage and traffic share it had there).

What makes it estimable: the portfolio reads nothing about a player; it chooses per game, from the
lengths and quits of the sessions its candidates had. So its run on a game is determined by each
candidate's distribution of session outcomes (and the schedule of starts and ends). Logged sessions of
each candidate (an experiment or simulated mixture whose arms are the candidates, or a served
portfolio's own recordings) are samples of those distributions. This replays the real `Portfolio` class through
a game of `sessions` players, `concurrent` at a time (the next starts when one ends, as in
`evaluate-directors`): each draw of a candidate plays a logged session of that candidate, picked with
weight 1/propensity (so a candidate's sessions stand for every player, whatever drew them), and the
portfolio sees its play and its end as it would live (seconds played by every running session before
each draw, the quit or censoring at the end).

The estimate is the mean over several replays of the whole log; its interval comes from replays of
bootstrap resamples of the log (by player): a 95% interval for the mean of *one* run of that many
sessions, so it carries that run's own luck (which players came, which way the early draws fell) as
well as the log's. A candidate the portfolio reaches (a ladder rung) with no logged session stops that
replay: the log cannot say how its players would have played. When more than MAX_MISSING_SHARE of
the replays stop so there is no estimate, only a note naming the candidate to log; below it the
estimate is made from the others and says how many were left out.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sidecar.policies.experiments import normal_label
from sidecar.policies.portfolio import (
    ADAPTIVE_ARM,
    DEFAULT_ARMS,
    FIXED_ARMS,
    PROPENSITY_DRAWS,
    ArmEvidence,
    Draws,
    Portfolio,
    PortfolioArm,
)
from sidecar.training.offpolicy import LoggedSession, design_propensities

__all__ = ["MissingCandidate", "Replay", "candidate_labels", "estimate_portfolio", "replay_once"]


# A replay that reaches a candidate the log has no session of cannot go on. Up to this share of them
# are left out (the estimate says so); beyond it there is no estimate, only the candidate to log.
MAX_MISSING_SHARE = 0.05


class MissingCandidate(Exception):
    """The portfolio drew a candidate that no logged session had."""

    def __init__(self, label: str, sources: tuple[str, ...]) -> None:
        super().__init__(
            f"the portfolio reached candidate {label!r}, and no logged session drew it "
            f"(looked for arm {' or '.join(repr(s) for s in sources)}): log it too, e.g. in the mixture"
        )
        self.label = label


def candidate_labels(arm: PortfolioArm, designer_level: float) -> tuple[str, ...]:
    """The logged arm labels whose sessions are this candidate's: its own label (recordings of a served
    portfolio name the candidate) or the fixed director it is (a mixture's `static:0.6`, `predictive`)."""
    if arm.policy == "static":
        level = min(max(designer_level + arm.offset, 0.0), 1.0)
        return (arm.label, normal_label(f"static:{level}"))
    if arm.learns_start:  # no fixed director is it: only a served portfolio's own sessions
        return (arm.label,)
    return (arm.label, arm.director)  # "predictive", or with its parameters: "predictive:band_high=0.4;band_low=0.1"


@dataclass
class Replay:
    """One run of the portfolio over a game's sessions."""

    lengths: list[float]  # each session's length, in the order they started
    drawn: Counter[str]  # sessions per candidate
    sources: set[str]  # the logged arm labels whose sessions were played


def _numpy_draws(gen: np.random.Generator) -> Draws:
    """The portfolio's Thompson draws (the same distribution), all in one numpy call: ~100x faster."""

    def draws(shapes: list[float], rates: list[float], _rng: random.Random) -> tuple[int, list[int]]:
        hazards = gen.gamma(shapes, 1.0 / np.asarray(rates), size=(1 + PROPENSITY_DRAWS, len(shapes)))
        best = hazards.argmin(axis=1)
        return int(best[0]), np.bincount(best[1:], minlength=len(shapes)).tolist()

    return draws


def _pools(outcomes: dict[str, list[LoggedSession]]) -> dict[str, tuple[list[LoggedSession], np.ndarray]]:
    """Per logged arm (one spelling each: 'static:0.50' and 'static:0.5' pooled): its sessions and the
    running sum of their weights (1 / propensity), to draw from."""
    merged: dict[str, list[LoggedSession]] = {}
    for arm, rows in outcomes.items():
        merged.setdefault(normal_label(arm), []).extend(rows)
    return {arm: (rows, np.cumsum([1.0 / s.propensity for s in rows])) for arm, rows in merged.items() if rows}


def replay_once(
    outcomes: dict[str, list[LoggedSession]],
    designer_level: float,
    sessions: int,
    concurrent: int,
    rng: random.Random,
    arms: tuple[PortfolioArm, ...] = FIXED_ARMS,
    seeded: dict[str, ArmEvidence] | None = None,
) -> Replay:
    """One run of a fresh portfolio over `sessions` players drawn from the logged outcomes (by logged
    arm label). seeded: evidence it starts from, as from a --state-dir (`metabrain portfolio import`)."""
    pools = _pools(outcomes)
    portfolio = Portfolio(arms=arms, draws=_numpy_draws(np.random.default_rng(rng.getrandbits(32))))
    if seeded:
        portfolio.absorb(seeded)
    running: list[tuple[float, int, str, bool]] = []  # (ends at, tie-break, candidate, quit), a heap
    playing: Counter[str] = Counter()  # sessions running per candidate
    out = Replay([], Counter(), set())
    lengths = out.lengths

    def start(now: float) -> None:
        arm, _ = portfolio.choose()
        sources = candidate_labels(arm, designer_level)
        source = next((s for s in sources if s in pools), None)
        if source is None:
            raise MissingCandidate(arm.label, sources)
        rows, cum = pools[source]
        played = rows[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(rows) - 1)]
        heapq.heappush(running, (now + played.seconds, len(lengths), arm.label, played.quit))
        playing[arm.label] += 1
        lengths.append(played.seconds)
        out.drawn[arm.label] += 1
        out.sources.add(source)

    while len(lengths) < min(sessions, concurrent):
        start(0.0)
    now = 0.0
    while running:
        ends, _, label, quit_ = heapq.heappop(running)
        for candidate, n in playing.items():  # every running session played until now, this one included
            if n:
                portfolio.played(candidate, n * (ends - now))
        now = ends
        playing[label] -= 1
        portfolio.ended(label, quit_)
        if len(lengths) < sessions:
            start(now)
    return out


def estimate_portfolio(
    logged: Sequence[LoggedSession],
    sessions: int = 1000,
    concurrent: int = 64,
    runs: int = 20,
    boot: int = 200,
    seed: int = 0,
    cap_s: float | None = None,
    progress: Callable[[int], None] | None = None,
    seeded: dict[str, ArmEvidence] | None = None,
) -> dict[str, Any]:
    """The portfolio's mean session length over a game of `sessions` players, from logged sessions of its
    candidates. cap_s: end every session there (censored), as the run being predicted would. seeded:
    the evidence it starts from (a state dir's, after `portfolio import`): what seeding it would buy."""
    rows = _one_design([_capped(s, cap_s) for s in logged])
    # Where the fixed-level candidates' offsets start: the designer's level the logged games declared.
    designer_level = float(np.median([s.designer_level for s in rows])) if rows else 0.5
    report: dict[str, Any] = {
        "director": "portfolio",
        "method": "replay",
        "sessions": sessions,
        "logged": len(rows),
        "designer_level": designer_level,
        "started_from": sum(e.finished for e in (seeded or {}).values()),  # sessions of evidence it started with
    }
    rng = random.Random(seed)
    by_arm = _by_arm(rows)
    arms = DEFAULT_ARMS
    if ADAPTIVE_ARM.label not in by_arm:
        # Its sessions start where the game's recent ones of it ended: no log of fixed directors holds
        # them, only a served portfolio's own recordings. Replay the candidates such a log can stand for.
        arms = FIXED_ARMS
        report["candidates"] = (
            f"the log has no session of the {ADAPTIVE_ARM.label!r} candidate (a served portfolio's own "
            f"recordings hold them): replayed the portfolio of {', '.join(a.label for a in arms)} and its ladder"
        )
    missing: Counter[str] = Counter()  # replays that reached a candidate the log lacks, by candidate
    why: dict[str, str] = {}  # what the first such replay said, by candidate

    def replay(outcomes: dict[str, list[LoggedSession]]) -> Replay | None:
        try:
            return replay_once(outcomes, designer_level, sessions, concurrent, rng, arms=arms, seeded=seeded)
        except MissingCandidate as exc:
            missing[exc.label] += 1
            why.setdefault(exc.label, str(exc))
            return None
        finally:
            if progress is not None:
                progress(1)

    replays = [r for _ in range(runs) if (r := replay(by_arm)) is not None]
    players = sorted({s.player or s.name for s in rows})
    owner: dict[str, list[int]] = {}
    for i, s in enumerate(rows):
        owner.setdefault(s.player or s.name, []).append(i)
    means = []
    for _ in range(boot):
        pick = [i for _ in players for i in owner[players[rng.randrange(len(players))]]]
        if (again := replay(_by_arm([rows[i] for i in pick]))) is not None:
            means.append(float(np.mean(again.lengths)))
    if missing:
        label = missing.most_common(1)[0][0]
        share = sum(missing.values()) / (runs + boot)
        report["missing"], report["missing_share"] = label, share
        note = why[label]
        if share > MAX_MISSING_SHARE or not replays:
            report["note"] = f"{note} (in {share:.0%} of the replays)"
            return report
        # Rare: the replays that stayed within the log stand for the rest (what the others would have
        # played differently can move the mean by at most that share of the difference).
        report["note"] = f"{share:.0%} of the replays reached a candidate the log lacks and were left out: {note}"
    drawn: Counter[str] = Counter()
    for r in replays:
        drawn.update(r.drawn)
    total = sum(drawn.values())
    used = set().union(*(r.sources for r in replays))
    report.update(
        {
            "replay": float(np.mean([np.mean(r.lengths) for r in replays])),
            "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))] if means else None,
            "shares": {label: n / total for label, n in drawn.most_common()},
            "sessions_of_director": sum(len(by_arm[s]) for s in used),
        }
    )
    return report


def _one_design(rows: list[LoggedSession]) -> list[LoggedSession]:
    """Sessions of several logs, each with its propensity under the logs' joint design (offpolicy.py), so
    that a candidate's sessions from a log that drew it rarely do not outweigh another log's."""
    if len({s.log for s in rows}) < 2:
        return rows
    out = list(rows)
    labels = np.array([normal_label(s.arm) for s in rows])
    for label in set(labels):
        mine = labels == label
        p = design_propensities(rows, mine)
        for i in np.flatnonzero(mine):
            out[i] = replace(rows[i], propensity=float(p[i]))
    return out


def _capped(s: LoggedSession, cap_s: float | None) -> LoggedSession:
    if cap_s is None or s.seconds < cap_s:
        return s
    return replace(s, seconds=cap_s, quit=False)


def _by_arm(rows: Sequence[LoggedSession]) -> dict[str, list[LoggedSession]]:
    out: dict[str, list[LoggedSession]] = {}
    for s in rows:
        out.setdefault(normal_label(s.arm), []).append(s)
    return out
