"""The directors of a whole tick at once: the one path from a model step to knob values and hints.

Per session, a director's work is a dozen numpy calls on arrays of a few elements, where the call
costs more than the arithmetic. Here each step is one call over every session of the tick: the
predictive policy's level choice, the knobs' range and rate guard, the NPC tactic choice (sessions
grouped by the tactics their game implements). Policies without a batched form choose their target
per session. A tick of one session takes the same path (~90 us against ~35 us for a per-session
form, paid once per model step, not per frame: one path to test and to trust is worth more).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidecar.columns import NpcTactic
from sidecar.engine.plan import PlanEntry, StepPlan, StepResult
from sidecar.features import P, knob_values_at
from sidecar.policies.difficulty import Observation, PredictivePolicy, predictive_best
from sidecar.policies.director import (
    NO_HINT,
    TACTIC_ENUMS,
    Director,
    Hint,
    aggression,
    choose_tactics,
    guard,
    observation,
)


@dataclass
class Direction:
    """What one session is told this tick."""

    values: np.ndarray  # [K] knob values, in the session's knob order
    hints: list[Hint]


def direct(directors: list[Director], entries: list[PlanEntry], plan: StepPlan, result: StepResult) -> list[Direction]:
    """Knob values and NPC hints for every entry of a stepped plan (directors[i] directs entries[i])."""
    targets = _targets(directors, entries, plan, result)
    values = _guard(directors, entries, targets)
    hints = _hints(directors, entries, plan, result, targets)
    return [Direction(v, h) for v, h in zip(values, hints, strict=True)]


def _observation(e: PlanEntry, plan: StepPlan, result: StepResult) -> Observation:
    rows = e.rows
    value = result.value[rows] if len(result.value) else None
    skill = float(result.skill[rows].sum()) / (rows.stop - rows.start) if len(result.skill) else -1.0
    return observation(
        e.features, result.p_fail[rows], result.p_quit[rows], plan.levels[e.row], value, result.horizons, skill
    )


def _rows(entries: list[PlanEntry], which: list[int]) -> tuple[np.ndarray, list[int]]:
    """The batch rows of the chosen entries, concatenated, and each one's player count."""
    counts = [len(entries[i].features.player_ids) for i in which]
    if all(n == 1 for n in counts):
        return np.array([entries[i].row for i in which], np.int64), counts
    return np.concatenate(
        [np.arange(entries[i].row, entries[i].row + n) for i, n in zip(which, counts, strict=True)]
    ), counts


def _targets(directors: list[Director], entries: list[PlanEntry], plan: StepPlan, result: StepResult) -> list[float]:
    out = [0.0] * len(entries)
    batched: list[int] = []
    policies: list[PredictivePolicy] = []
    for i, (d, e) in enumerate(zip(directors, entries, strict=True)):
        if type(d.policy) is PredictivePolicy:
            batched.append(i)
            policies.append(d.policy)
        else:
            out[i] = d.policy.target(_observation(e, plan, result))
    if batched:
        _predictive_targets(entries, plan, result, batched, policies, out)
    for i, (d, e) in enumerate(zip(directors, entries, strict=True)):
        if d.retreat is not None:  # the candidate's move taken back for a player it hurts (retreat.py)
            out[i] = d.retreat.level(out[i], e.features.players, float(e.features.players[0, P["dt"]]))
    return out


def _predictive_targets(
    entries: list[PlanEntry],
    plan: StepPlan,
    result: StepResult,
    batched: list[int],
    policies: list[PredictivePolicy],
    out: list[float],
) -> None:
    """The predictive policies' targets (entries `batched`), in one call, into `out`."""
    rows, counts = _rows(entries, batched)
    fail, quit_ = result.p_fail[rows, :-1], result.p_quit[rows, :-1]  # [R, K-1]
    if len(rows) > len(batched):  # sessions of several players: the mean over each one's players
        starts = np.cumsum([0, *counts[:-1]])
        n = np.array(counts, np.float32)[:, None]
        fail = np.add.reduceat(fail, starts, axis=0) / n
        quit_ = np.add.reduceat(quit_, starts, axis=0) / n
    first = np.array([entries[i].row for i in batched], np.int64)
    coef = np.array([p.coefficients for p in policies], np.float32).T[:, :, None]  # [4, S, 1]
    best = predictive_best(fail, quit_, plan.levels[first, :-1], *coef).tolist()
    dts = plan.players[first, P["dt"]].tolist()
    for i, policy, b, dt in zip(batched, policies, best, dts, strict=True):
        out[i] = policy.approach(b, dt)


def _guard(directors: list[Director], entries: list[PlanEntry], targets: list[float]) -> list[np.ndarray]:
    k = [len(d.names) for d in directors]
    cat = np.concatenate
    knobs = [d.session.knobs for d in directors]
    difficulty = np.repeat(np.minimum(np.maximum(np.array(targets), 0.0), 1.0), k)
    wanted = knob_values_at(
        cat([n.lo for n in knobs]), cat([n.span for n in knobs]), cat([n.easier_when_higher for n in knobs]), difficulty
    )
    dt = np.repeat(
        np.array([d.elapsed(e.features.game_time) for d, e in zip(directors, entries, strict=True)], np.float32), k
    )
    values = guard(
        wanted,
        cat([d.values for d in directors]),
        cat([d.rate for d in directors]),
        dt,
        cat([d.lo for d in directors]),
        cat([d.hi for d in directors]),
    )
    out = []
    a = 0
    for d, n in zip(directors, k, strict=True):
        d.values, d.wanted = values[a : a + n], wanted[a : a + n]
        out.append(d.values)
        a += n
    return out


def _hints(
    directors: list[Director], entries: list[PlanEntry], plan: StepPlan, result: StepResult, targets: list[float]
) -> list[list[Hint]]:
    """Each hinted NPC's tactic and aggression, for the sessions that take hints, in groups of the
    tactics their game implements (usually one group: every tactic). targets: each session's level now."""
    out: list[list[Hint]] = [[] for _ in entries]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (d, e) in enumerate(zip(directors, entries, strict=True)):
        if d.hints_on and d.allowed.size and e.hinted.start != e.hinted.stop:
            groups.setdefault(tuple(d.allowed.tolist()), []).append(i)
    for allowed, which in groups.items():
        _hint_group(directors, entries, plan, result, which, np.array(allowed, np.int64), targets, out)
    return out


def _hint_group(
    directors: list[Director],
    entries: list[PlanEntry],
    plan: StepPlan,
    result: StepResult,
    which: list[int],
    allowed: np.ndarray,
    targets: list[float],
    out: list[list[Hint]],
) -> None:
    """Hints for the sessions `which`, whose games implement the model's tactics `allowed` (indices)."""
    counts = [entries[i].hinted.stop - entries[i].hinted.start for i in which]
    if len(which) == len(entries) and len(plan.hint_rows) == sum(counts):
        sel: slice | np.ndarray = slice(None)  # every hinted NPC of the tick (the usual case)
    else:
        sel = np.concatenate([np.arange(entries[i].hinted.start, entries[i].hinted.stop) for i in which])
    rows = plan.hint_rows[sel]  # [H]
    pf = result.p_fail[rows, -1].astype(np.float64)  # [H] of the player each NPC is hinted for
    band = np.repeat(np.array([directors[i].band for i in which], np.float64), counts, axis=0)  # [H, 2]
    tactic_p = result.npc_tactic_p[sel]  # [H, A]
    if len(allowed) < tactic_p.shape[1]:
        tactic_p = tactic_p[:, allowed]  # the game's tactics only
    level = np.repeat(np.array([targets[i] for i in which], np.float64), counts)  # [H]
    steers = np.repeat(np.array([directors[i].policy.steers_to_band for i in which]), counts)  # [H]
    ks = choose_tactics(tactic_p, pf, band[:, 0], band[:, 1], level, steers)  # [H] indices into allowed, or NO_HINT
    ids = plan.hint_ids[sel].tolist()
    none = ks == NO_HINT
    tactics = np.where(none, int(NpcTactic.UNSPECIFIED), TACTIC_ENUMS[allowed[np.where(none, 0, ks)]]).tolist()
    agg = np.where(none, 0.5, aggression(pf, band[:, 0], band[:, 1])).tolist()
    rows_l = rows.tolist()
    a = 0
    for i, n in zip(which, counts, strict=True):
        e, b = entries[i], a + n
        pids, base = e.features.player_ids, e.row
        out[i] = list(zip(ids[a:b], tactics[a:b], [pids[r - base] for r in rows_l[a:b]], agg[a:b], strict=True))
        a = b
