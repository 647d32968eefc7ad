"""Off-policy evaluation: a director's mean session length, estimated from recordings of other directors.

A studio that runs a mixture of directors on its players (an experiment, or a share of sessions given
to logged exploration) records, per session, which director it drew and with what probability
(`arm`, `assignment_propensity` in the recording's header). From those recordings this estimates what
the mean session would have been had every player got a given director:

- IS: inverse-propensity weighting (Horvitz-Thompson): mean of 1[arm = d] / p * length.
- SNIS: the self-normalised version (weights summing to one): less variance, slightly biased.
- DR: doubly robust. An outcome model predicts a session's length under director d from what the
  player model said about the player as the session began (its skill, engagement and quit-risk
  insights on the first frame, from the recorded guidance), fitted on d's sessions (two-fold
  cross-fitting); its prediction for every session is corrected by the propensity-weighted residuals
  of d's own. Unbiased when either the propensities or the outcome model are right, and tighter than
  IS when the model explains part of the spread. The inputs must be read before the director acts:
  insights a few seconds in already show the difficulty the session's own director set (kills,
  deaths), and the model's prediction for d on a session of another director is then made from what
  that director did to the player. Read 8 s in, they put DR for a fixed 0.8 at 109 s on logged
  veterans whose real rollout played 150 s (IS 151); on the first frame, before any guidance has
  arrived, the same player gives the same inputs whatever director it drew.

Several logs (directories of recordings made under different mixtures: a first experiment, then more
sessions of the levels it lacked) are weighted as one design, the mixture of theirs in proportion to
their sessions (the balance heuristic of multiple importance sampling): a session's propensity for a
director is its own log's (as logged) weighted by that log's share of the sessions, plus each other
log's mean propensity for that director weighted by its share. Each log's own propensities would be
unbiased too, but a director drawn rarely in one log and often in another then gets weights far apart
(10 against 2), and the rare log's few sessions decide the variance. Exact for fixed mixtures; for a
log whose propensities moved (a learning director's), its mean stands in for the ones it would have
given.

Intervals are percentile bootstraps over sessions (one session per player in simulated logs; with
several per player, resample players: `player` is the hello's stable player id, pseudonymised; a
session without one is its own unit). A director never
drawn in the logs cannot be estimated this way: the report says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.operations.session_outcomes import read_sessions

__all__ = ["LoggedSession", "design_propensities", "estimate", "read_logged"]


@dataclass
class LoggedSession:
    name: str
    player: str
    arm: str
    propensity: float
    seconds: float
    quit: bool
    covariates: np.ndarray  # [C]: 1, then the model's skill, engagement and p_quit on the session's first frame
    designer_level: float = 0.5  # the difficulty of the hello's knob defaults (where `static` offsets start)
    log: int = 0  # which log (design) it comes from, when several are read together


def read_logged(paths: Iterable[str | Path], log: int = 0) -> list[LoggedSession]:
    """The sessions of recordings that say which director they drew and its probability (`log`: which
    design they were logged under, when several logs are read together)."""
    out = []
    for s in read_sessions(paths):
        propensity = s.header.get("assignment_propensity")
        if not s.arm or propensity is None:
            continue
        # The player whose sessions belong together (resampled together): the hello's stable player id,
        # pseudonymised. A frame's player ids name players within one game only ("p1" in every session).
        covariates = np.array([1.0, 0.5, 0.5, 0.1])  # no insight yet: a neutral guess
        # The first frame's insights: it was sent before any guidance reached the game (the docstring says why).
        answers = (r.guidance for _, r in s.recording.responses() if r.WhichOneof("kind") == "guidance")
        first = next((g for g in answers if g.insights), None)
        if first is not None:
            ins = first.insights[0]
            covariates = np.array([1.0, ins.skill, ins.engagement, ins.p_quit])
        out.append(
            LoggedSession(s.name, s.player, s.arm, float(propensity), s.end, s.quit, covariates, s.designer_level, log)
        )
    return out


def _fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge-regularised least squares (tiny ridge: a few covariates, hundreds of sessions)."""
    reg = 1e-3 * np.eye(x.shape[1])
    reg[0, 0] = 0.0
    return np.linalg.solve(x.T @ x + reg, x.T @ y)


def _estimates(
    target: np.ndarray, propensity: np.ndarray, y: np.ndarray, x: np.ndarray, folds: np.ndarray
) -> tuple[float, float, float]:
    """(IS, SNIS, DR) for one resample. target: [N] bool (drew the director), propensity: [N]."""
    w = target / propensity
    ips = float((w * y).mean())
    snis = float((w * y).sum() / w.sum()) if w.sum() > 0 else float("nan")
    mu = np.zeros(len(y))
    for k in (0, 1):  # cross-fitting: each fold's predictions from a model fitted on the other's sessions
        train = target & (folds != k)
        if train.sum() < x.shape[1] + 2:
            return ips, snis, snis
        beta = _fit(x[train], y[train])
        mu[folds == k] = x[folds == k] @ beta
    dr = float((mu + w * (y - mu)).mean())
    return ips, snis, dr


def design_propensities(sessions: Sequence[LoggedSession], target: np.ndarray) -> np.ndarray:
    """[N] each session's probability of the director `target` marks under the logs' joint design (the
    module docstring): the logged propensity when there is one log."""
    logged = np.array([s.propensity for s in sessions])
    logs = np.array([s.log for s in sessions])
    kinds = np.unique(logs)
    if len(kinds) < 2:
        return logged
    out = logged.copy()
    shares = {k: float((logs == k).mean()) for k in kinds}
    means = {k: float(logged[target & (logs == k)].mean()) if (target & (logs == k)).any() else 0.0 for k in kinds}
    for j in kinds:
        mine = target & (logs == j)
        others = sum(shares[k] * means[k] for k in kinds if k != j)
        out[mine] = shares[j] * logged[mine] + others
    return out


def estimate(sessions: Sequence[LoggedSession], label: str, boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The mean session length director `label` would give, from logged sessions of a mixture."""
    n = len(sessions)
    target = np.array([s.arm == label for s in sessions])
    matched = int(target.sum())
    report: dict[str, Any] = {"director": label, "sessions": n, "sessions_of_director": matched}
    if not matched:
        report["note"] = f"no logged session drew {label!r}: it cannot be estimated from these recordings"
        return report
    propensity = design_propensities(sessions, target)
    y = np.array([s.seconds for s in sessions])
    x = np.stack([s.covariates for s in sessions])
    rng = np.random.default_rng(seed)
    folds = rng.integers(0, 2, n)
    ips, snis, dr = _estimates(target, propensity, y, x, folds)
    # Bootstrap over players (each player's sessions together).
    players = sorted({s.player or s.name for s in sessions})
    index = {p: i for i, p in enumerate(players)}
    owner = np.array([index[s.player or s.name] for s in sessions])
    by_player = [np.flatnonzero(owner == i) for i in range(len(players))]
    draws = []
    for _ in range(boot):
        pick = np.concatenate([by_player[i] for i in rng.integers(0, len(players), len(players))])
        draws.append(_estimates(target[pick], propensity[pick], y[pick], x[pick], folds[pick]))
    d = np.array(draws)
    w = target / propensity
    report.update(
        {
            "ips": ips,
            "snis": snis,
            "dr": dr,
            "dr_ci95": [float(np.nanpercentile(d[:, 2], 2.5)), float(np.nanpercentile(d[:, 2], 97.5))],
            "snis_ci95": [float(np.nanpercentile(d[:, 1], 2.5)), float(np.nanpercentile(d[:, 1], 97.5))],
            "effective_sample_size": float(w.sum() ** 2 / (w**2).sum()),
            "mean_of_its_own_sessions": float(y[target].mean()),
        }
    )
    return report
