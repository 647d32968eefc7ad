"""Director policies on scripted observations, and the Director's range and rate guarantees."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from sidecar.columns import MAX_PLAY_GAP_S
from sidecar.engine.plan import PlanEntry, StepPlan, StepResult, hint_entries, hint_pairs
from sidecar.features import MAX_MODEL_NPCS, NPC_DIM, PLAYER_DIM, FrameFeatures, P
from sidecar.policies.difficulty import (
    IntensityPolicy,
    Observation,
    Phase,
    PredictivePolicy,
    RubberBandPolicy,
    StaticPolicy,
)
from sidecar.policies.director import Director, Hint
from sidecar.policies.guarded import GuardedPolicy
from sidecar.policies.params import PolicyParamError, parse_params
from sidecar.policies.portfolio import (
    DEFAULT_ARMS,
    FIXED_ARMS,
    LADDER_AFTER,
    LADDER_MAX,
    PREDICTIVE_HARDER,
    ArmEvidence,
    Portfolio,
    PortfolioArm,
    portfolio_for,
    reset_portfolios,
    rung,
)
from sidecar.policies.tick import Direction, direct
from sidecar.session import Session
from sidecar.wire.hello import spec_of
from sidecar.wire.schema import pb
from sim.game import KNOBS, hello

LEVELS = np.linspace(0, 1, 11, dtype=np.float32)


def obs(
    t: float,
    dt: float = 0.2,
    deaths: float = 0,
    kills: float = 0,
    damage: float = 0.0,
    p_fail: np.ndarray | None = None,
    p_quit: np.ndarray | None = None,
) -> Observation:
    x = np.zeros((1, PLAYER_DIM), np.float32)
    x[0, P["deaths"]], x[0, P["kills"]], x[0, P["damage_taken"]] = deaths, kills, damage
    k = len(LEVELS) + 1
    return Observation(
        t,
        dt,
        0.5,
        x,
        (p_fail if p_fail is not None else np.zeros((1, k))),
        (p_quit if p_quit is not None else np.zeros((1, k))),
        np.append(LEVELS, 0.5),
    )


def test_rubber_band_lowers_after_deaths_and_rises_when_calm() -> None:
    p = RubberBandPolicy({}, 0.5)
    start = p.target(obs(0.0))
    after = start
    for i in range(4):
        after = p.target(obs(1.0 + i, deaths=1))
    assert after < start - 0.3
    calm = after
    for i in range(300):
        calm = p.target(obs(10.0 + i * 0.2, kills=0.05))
    assert calm > after


def test_rubber_band_starts_off_the_designers_level_and_stays_within_its_reach() -> None:
    """`offset` moves its start from the designer's level; `reach` bounds how far it moves from there."""
    p = RubberBandPolicy(parse_params("rubber_band", {"offset": "0.3", "reach": "0.1", "death_step": "0.05"}), 0.5)
    assert p.target(obs(0.0)) == pytest.approx(0.8, abs=1e-3)
    levels = [p.target(obs(1.0 + i, deaths=1)) for i in range(10)]
    assert min(levels) == pytest.approx(0.7)  # ten deaths would take it to 0.3 without the reach
    for i in range(2000):
        levels.append(p.target(obs(20.0 + i * 0.2, kills=0.05)))
    assert max(levels) == pytest.approx(0.9)
    odd = RubberBandPolicy(parse_params("rubber_band", {"start": "0.2", "min": "0.6", "reach": "0.1"}), 0.5)
    assert odd.target(obs(0.0)) == pytest.approx(0.6, abs=1e-3)  # min above the reach: min wins, never NaN or inverted


def test_intensity_cycles_through_its_phases() -> None:
    p = IntensityPolicy({"sustain_s": 3.0, "relax_s": 30.0}, 0.5)
    t, seen = 0.0, []
    for _ in range(2000):
        t += 0.2
        hurt = p.phase is Phase.BUILD_UP
        level = p.target(obs(t, damage=0.1 if hurt else 0.0))
        seen.append((t, p.phase, level))
    phases = [ph for _, ph, _ in seen]
    assert {Phase.BUILD_UP, Phase.SUSTAIN, Phase.FADE, Phase.RELAX} <= set(phases)
    sustain = [tt for tt, ph, _ in seen if ph is Phase.SUSTAIN]
    assert 2.9 <= sustain[-1] - sustain[0] + 0.2 <= 3.5 or len(sustain) > 10
    relax_levels = {lv for _, ph, lv in seen if ph is Phase.RELAX}
    build_levels = {lv for _, ph, lv in seen if ph is Phase.BUILD_UP}
    assert max(relax_levels) < min(build_levels)


def test_predictive_picks_the_level_in_the_band() -> None:
    p = PredictivePolicy({"smoothing_s": 0.0, "quit_weight": 0.0}, 0.5, (0.25, 0.35))
    fail = np.append(LEVELS * 0.5, 0.0)[None, :]  # p_fail grows with level: 0.3 at level 0.6
    assert p.target(obs(0.0, p_fail=fail)) == pytest.approx(0.6)
    # With quitting weighed in, among levels in the band the one players quit least wins.
    p2 = PredictivePolicy({"smoothing_s": 0.0, "quit_weight": 1.0}, 0.5, (0.2, 0.4))
    quit_ = np.append(np.abs(LEVELS - 0.8), 0.0)[None, :]
    assert p2.target(obs(0.0, p_fail=fail, p_quit=quit_)) == pytest.approx(0.8)


def _director(policy: str, params: dict[str, str], tactics: tuple[int, ...] = ()) -> Director:
    h = hello(policy=policy, params=params)
    if tactics:
        h.ClearField("npc_tactics")
        h.npc_tactics.extend(tactics)
    s = Session("s", "", spec_of(h), frozenset(h.capabilities), 0.0, 0.0)
    return Director(s, "predictive")


def _features(sequence: int, t: float, players: np.ndarray, npc_mask: np.ndarray, npc_ids: np.ndarray) -> FrameFeatures:
    n = len(players)
    return FrameFeatures(
        sequence,
        t,
        [f"p{j}" for j in range(n)],
        players,
        np.zeros((n, MAX_MODEL_NPCS, NPC_DIM), np.float32),
        npc_mask,
        npc_ids,
    )


def _plan(entries: list[PlanEntry], levels: np.ndarray, tick: int = 1) -> StepPlan:
    """The step plan of these entries (their rows in order), as the scheduler makes it."""
    row = 0
    for e in entries:
        e.row, row = row, row + len(e.features.player_ids)
    mask = np.concatenate([e.features.npc_mask for e in entries])
    hint_rows, hint_slots, hint_ids = hint_entries(entries, mask, np.concatenate([e.features.npc_ids for e in entries]))
    return StepPlan(
        tick,
        entries,
        np.arange(row),
        np.zeros(0, np.int64),
        np.concatenate([e.features.players for e in entries]),
        np.zeros((row, MAX_MODEL_NPCS, NPC_DIM), np.float32),
        mask,
        levels,
        np.zeros(0, np.int64),
        hint_rows,
        hint_slots,
        hint_ids,
    )


def _step(d: Director, o: Observation, tactic_p: np.ndarray | None = None, f: FrameFeatures | None = None) -> Direction:
    """One session's model step through the engine's director path (tick.direct): the observation's
    predictions for its one player; tactic_p [1, MAX_MODEL_NPCS, A] for the NPCs of `f`."""
    if f is None:
        players = o.players.copy()
        players[:, P["dt"]] = o.dt
        f = _features(1, o.game_time, players, np.zeros((1, MAX_MODEL_NPCS), bool), np.full((1, MAX_MODEL_NPCS), -1))
    f.difficulty = o.difficulty
    plan = _plan([PlanEntry("s", f, 0, None, 0.0)], o.levels[None, :].astype(np.float32))
    dense = tactic_p if tactic_p is not None else np.zeros((1, MAX_MODEL_NPCS, 6), np.float32)
    result = StepResult(
        o.p_fail, o.p_quit, np.zeros(1), np.zeros(1), np.zeros(1), dense[plan.hint_rows, plan.hint_slots], {}, 0.0
    )
    return direct([d], plan.entries, plan, result)[0]


@pytest.mark.parametrize(
    "policy", ["static", "rubber_band", "intensity", "predictive", "guarded", "portfolio", "contextual"]
)
def test_director_respects_range_and_rate(policy: str) -> None:
    d = _director(policy, {"level": "1.0"} if policy == "static" else {})
    rng = np.random.default_rng(0)
    rates = np.array([k.max_change_per_second for k in KNOBS])
    lo = np.array([k.min_value for k in KNOBS])
    hi = np.array([k.max_value for k in KNOBS])
    prev, t = d.values.copy(), 0.0
    for _ in range(500):
        dt = float(rng.uniform(0.01, 0.5))
        t += dt
        fail = rng.uniform(0, 1, (1, len(LEVELS) + 1))
        v = _step(
            d,
            obs(
                t,
                dt,
                deaths=float(rng.random() < 0.05),
                kills=float(rng.random() < 0.3),
                damage=float(rng.uniform(0, 0.2)),
                p_fail=fail,
            ),
        ).values
        assert np.all(v >= lo - 1e-6) and np.all(v <= hi + 1e-6)
        assert np.all(np.abs(v - prev) <= rates * dt + 1e-4)
        prev = v.copy()


def test_static_without_level_keeps_designer_defaults() -> None:
    d = _director("static", {})
    v = _step(d, obs(1.0)).values
    np.testing.assert_allclose(v, [k.default_value for k in KNOBS], atol=1e-4)


def test_npc_hints_keep_the_band_where_the_knobs_do_not() -> None:
    """For a director that does not steer the knobs to the band (a fixed level, a rubber band) hints do:
    below the band the game's most effective tactic, above it the least, inside it the median."""
    d = _director("static", {"level": "0.5"}, (pb.NPC_TACTIC_ADVANCE, pb.NPC_TACTIC_RETREAT))  # only these
    mask = np.zeros((1, MAX_MODEL_NPCS), bool)
    mask[0, :2] = True
    tp = np.zeros((1, MAX_MODEL_NPCS, 6), np.float32)
    tp[..., 1], tp[..., 3] = 0.9, 0.1  # advance lands damage, retreat does not

    def hints(p_fail_now: float) -> list[Hint]:
        f = _features(1, 0.0, np.zeros((1, PLAYER_DIM), np.float32), mask, np.where(mask, [[5, 6] + [0] * 14], -1))
        return _step(d, obs(0.0, p_fail=np.full((1, len(LEVELS) + 1), p_fail_now)), tp, f).hints

    easy = hints(0.0)  # below the band: push
    hard = hints(0.99)  # above the band: ease off
    assert [h[1] for h in easy] == [pb.NPC_TACTIC_ADVANCE] * 2
    assert [h[0] for h in easy] == [5, 6]
    assert [h[2] for h in easy] == ["p0", "p0"]
    assert [h[1] for h in hard] == [pb.NPC_TACTIC_RETREAT] * 2
    assert easy[0][3] > hard[0][3]  # aggression
    tp[..., 0] = 0.99  # HOLD would be best, but the game does not implement it
    assert [h[1] for h in hints(0.0)] == [pb.NPC_TACTIC_ADVANCE] * 2
    tp[..., 0] = 0.0
    mid = hints(0.15)  # inside the band: of two, the lower-index tie wins
    assert [h[1] for h in mid] == [pb.NPC_TACTIC_ADVANCE] * 2
    d.hints_on = False
    assert hints(0.0) == []


def test_npc_hints_act_only_where_the_knobs_have_run_out_for_a_director_that_steers_them() -> None:
    """`predictive` moves the knobs to keep the player in the band: its hints ease a player above the band
    only with the knobs at their easiest, and press one below it only at their hardest; everywhere else
    they ask for nothing (NPC_TACTIC_UNSPECIFIED: the game's own behaviour)."""
    mask = np.zeros((1, MAX_MODEL_NPCS), bool)
    mask[0, :2] = True
    tp = np.zeros((1, MAX_MODEL_NPCS, 6), np.float32)
    tp[..., 1], tp[..., 3] = 0.9, 0.1  # advance lands damage, retreat does not
    k = len(LEVELS) + 1

    def hints(p_fail: np.ndarray) -> tuple[float, list[Hint]]:
        d = _director("predictive", {"smoothing_s": "0"}, (pb.NPC_TACTIC_ADVANCE, pb.NPC_TACTIC_RETREAT))
        f = _features(1, 0.0, np.zeros((1, PLAYER_DIM), np.float32), mask, np.where(mask, [[5, 6] + [0] * 14], -1))
        got = _step(d, obs(0.0, p_fail=p_fail[None, :]), tp, f).hints
        return d.policy.level, got  # type: ignore[attr-defined]

    level, ease = hints(np.full(k, 0.99))  # above the band at every level: the easiest, and still at risk
    assert level == 0.0 and [h[1] for h in ease] == [pb.NPC_TACTIC_RETREAT] * 2
    safe = np.append(np.where(LEVELS < 1.0, 0.0, 0.01), 0.0)  # below the band everywhere, least so at 1.0
    level, press = hints(safe)
    assert level == 1.0 and [h[1] for h in press] == [pb.NPC_TACTIC_ADVANCE] * 2
    assert [h[0] for h in press] == [5, 6] and press[0][3] > ease[0][3]
    inside = np.append(0.02 + 0.4 * LEVELS, 0.4)  # above the band now, and the knobs can still ease it
    level, nothing = hints(inside)
    assert 0.0 < level < 1.0
    assert [h[1:] for h in nothing] == [(pb.NPC_TACTIC_UNSPECIFIED, "p0", 0.5)] * 2


def test_each_npc_is_hinted_once_for_the_first_player_that_sees_it() -> None:
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    ids = np.where(mask, [[7, 3, 7, 0], [3, 9, 0, 0], [7, 3, 8, 8], [2, 0, 0, 0]], -1)
    ids[3, 0] = -1  # an NPC without an id (padding the game sent) is never hinted
    group = np.array([0, 0, 1, 1])  # two sessions of two players each
    rows, slots, got = hint_pairs(mask, ids, group)
    # Session 0: 7 and 3 in row 0 (7 again in slot 2 is the same NPC), 9 in row 1; session 1: its own 7, 3, 8.
    assert rows.tolist() == [0, 0, 1, 2, 2, 2]
    assert slots.tolist() == [0, 1, 1, 0, 1, 2]
    assert got.tolist() == [7, 3, 9, 7, 3, 8]
    rng = np.random.default_rng(0)  # a crowded tick (over 64 NPCs takes another path): the same rule
    mask = rng.random((40, 16)) < 0.6
    ids = np.where(mask, rng.integers(0, 30, (40, 16)), -1)
    group = np.repeat(np.arange(8), 5)  # eight sessions of five players
    seen: set[tuple[int, int]] = set()
    want = []
    for r, s in zip(*np.nonzero(mask), strict=True):
        if (group[r], ids[r, s]) not in seen:
            seen.add((group[r], ids[r, s]))
            want.append((r, s, ids[r, s]))
    assert list(zip(*(a.tolist() for a in hint_pairs(mask, ids, group)), strict=True)) == want


def test_a_tick_directed_together_decides_as_each_session_alone() -> None:
    """The engine directs a whole tick at once (sidecar/policies/tick.py): what a session gets must not
    depend on which sessions share its tick. Each session, stepped alone through the same path with its
    own rows of the predictions, gets the same knob values and hints (the hints also as the rule written
    out by hand) and its policy ends in the same state."""
    import copy

    rng = np.random.default_rng(1)
    setups = [
        ("predictive", {}, (), 1),
        ("predictive", {"band_low": "0.1", "band_high": "0.2", "quit_weight": "1"}, (), 1),
        ("predictive", {}, (), 3),  # a multiplayer session: the mean over its players
        ("rubber_band", {}, (), 1),
        ("static", {"level": "0.8"}, (), 2),
        ("predictive", {"smoothing_s": "0"}, (), 1),  # the knobs at once where it wants them: at times an edge
        ("predictive", {"smoothing_s": "0", "band_low": "0.3", "band_high": "0.35"}, (), 2),
        ("predictive", {}, (pb.NPC_TACTIC_ADVANCE, pb.NPC_TACTIC_RETREAT), 1),  # only some tactics
        ("predictive", {}, (pb.NPC_TACTIC_HOLD, pb.NPC_TACTIC_FLANK, pb.NPC_TACTIC_PRESSURE), 2),  # others
        ("intensity", {"npc_hints": "off"}, (), 1),
    ]
    together = [_director(policy, params, tactics) for policy, params, tactics, _ in setups]
    alone = copy.deepcopy(together)
    k = len(LEVELS) + 1
    asked: set[int] = set()  # the tactics the hints asked for
    for tick in range(40):
        entries = []
        for i, (_, _, _, n) in enumerate(setups):
            mask = rng.random((n, MAX_MODEL_NPCS)) < 0.4
            ids = np.where(mask, rng.integers(0, 6, (n, MAX_MODEL_NPCS)), -1)  # NPCs seen by several players
            players = rng.random((n, PLAYER_DIM)).astype(np.float32)
            players[:, P["dt"]] = 0.1
            entries.append(PlanEntry(f"s{i}", _features(tick, 0.1 * tick, players, mask, ids), 0, None, 0.0))
        b = sum(len(e.features.player_ids) for e in entries)
        levels = np.concatenate([np.broadcast_to(LEVELS, (b, len(LEVELS))), rng.random((b, 1))], 1).astype(np.float32)
        plan = _plan(entries, levels, tick)
        p_fail = rng.random((b, k)).astype(np.float32)
        p_quit = (0.2 * rng.random((b, k))).astype(np.float32)
        dense = rng.random((b, MAX_MODEL_NPCS, 6)).astype(np.float32)  # what a model scoring every NPC says
        result = StepResult(
            p_fail, p_quit, np.zeros(b), np.zeros(b), np.zeros(b), dense[plan.hint_rows, plan.hint_slots], {}, 0.0
        )
        got = direct(together, entries, plan, result)
        for d, e, g in zip(alone, entries, got, strict=True):
            rows = e.rows
            one = _plan([PlanEntry(e.session_id, e.features, 0, None, 0.0)], levels[rows], tick)
            mine = StepResult(
                p_fail[rows],
                p_quit[rows],
                np.zeros(1),
                np.zeros(1),
                np.zeros(1),
                dense[rows][one.hint_rows, one.hint_slots],
                {},
                0.0,
            )
            [want] = direct([d], one.entries, one, mine)
            np.testing.assert_allclose(g.values, want.values, rtol=1e-6, atol=1e-6)
            assert g.hints == want.hints
            assert g.hints == _hints_by_hand(d, e.features, dense[rows], p_fail[rows, -1])
            asked.update(h[1] for h in g.hints)
    assert pb.NPC_TACTIC_UNSPECIFIED in asked and len(asked) > 2  # mostly nothing asked; easing and pressing
    for a, b_ in zip(together, alone, strict=True):
        assert vars(a.policy).keys() == vars(b_.policy).keys()
        assert getattr(a.policy, "level", None) == pytest.approx(getattr(b_.policy, "level", None))


def _hints_by_hand(d: Director, f: FrameFeatures, tactic_p: np.ndarray, p_fail_now: np.ndarray) -> list[Hint]:
    """The hint rule written out, over every NPC slot: walk the players' NPCs nearest first, hint each
    NPC id once (for the first player that sees it). For a director that steers the knobs to the band:
    the worst allowed tactic for a player above the band with the level at its easiest, the best for one
    below it at its hardest, otherwise nothing asked; for the others the best, worst or median tactic."""
    if not d.hints_on or not d.allowed.size:
        return []
    lo, hi = d.band
    level = getattr(d.policy, "level", 0.5)  # where the director wants the knobs now
    hints, seen = [], set()
    for r, pid in enumerate(f.player_ids):
        pf = float(p_fail_now[r])
        for s in range(f.npc_ids.shape[1]):
            npc = int(f.npc_ids[r, s])
            if not f.npc_mask[r, s] or npc < 0 or npc in seen:
                continue
            seen.add(npc)
            p = tactic_p[r, s, d.allowed]
            best = min(a for a in range(len(p)) if p[a] == p.max())  # of tied ones, the lowest index
            worst = min(a for a in range(len(p)) if p[a] == p.min())
            k: int | None
            if not d.policy.steers_to_band:  # a fixed level, a rubber band: hints keep the band
                order = sorted(range(len(p)), key=lambda a: (p[a], a))  # stable: ties by index
                mid = order[len(p) // 2] if len(p) % 2 else min(order[len(p) // 2 - 1], order[len(p) // 2])
                k = best if pf < lo else worst if pf > hi else mid
            else:  # only where the knobs have run out
                k = worst if pf > hi and level <= 0.05 else best if pf < lo and level >= 0.95 else None
            if k is None:
                hints.append((npc, pb.NPC_TACTIC_UNSPECIFIED, pid, 0.5))
            else:
                agg = min(max(0.5 + 2.0 * (0.5 * (lo + hi) - pf), 0.0), 1.0)
                hints.append((npc, int(d.allowed_enums[k]), pid, agg))
    return hints


def _guarded_obs(t: float, activity: float, damage: float = 0.0, since_death_s: float = 120.0) -> Observation:
    """A step where the model wants the easiest level (p_fail far above the band everywhere but 0)."""
    o = obs(t, p_fail=np.append(np.where(LEVELS > 0, 0.9, 0.1), 0.9)[None, :])
    o.players[0, P["recent_activity"]] = activity
    o.players[0, P["recent_damage"]] = damage
    o.players[0, P["time_since_death"]] = min(since_death_s, 120.0) / 60.0
    return o


def _play_guarded(phases: list[tuple[float, float, float, float]]) -> tuple[GuardedPolicy, float]:
    """Play (seconds, activity, recent damage, seconds since a death) phases at 5 Hz; the last level."""
    p = GuardedPolicy({"smoothing_s": 0.0}, 0.5, (0.05, 0.3))
    t, level = 0.0, 0.5
    for seconds, activity, damage, since in phases:
        for _ in range(int(seconds * 5)):
            t += 0.2
            level = p.target(_guarded_obs(t, activity, damage, since))
    return p, level


def test_guarded_stays_near_the_designer_level_without_evidence() -> None:
    # The model wants level 0; a player who keeps playing as before is eased by base_down only.
    p, level = _play_guarded([(300.0, 0.8, 0.3, 120.0)])
    assert level == pytest.approx(0.4, abs=1e-6)
    assert p.note is not None and p.note.managing == "frustration" and p.note.confidence == 0.0


def test_guarded_hardens_for_a_player_who_disengages_in_calm() -> None:
    p, level = _play_guarded([(60.0, 0.8, 0.0, 120.0), (90.0, 0.4, 0.0, 120.0)])
    assert level > 0.7  # boredom: up to reach (0.3) above the designer's level
    assert p.note is not None and p.note.managing == "boredom" and p.note.confidence > 0.9


def test_guarded_eases_further_for_a_player_who_disengages_under_pressure() -> None:
    p, level = _play_guarded([(60.0, 0.8, 0.3, 20.0), (90.0, 0.4, 0.3, 20.0)])
    assert level < 0.15  # frustration: the model's choice, down to base_down + reach below
    assert p.note is not None and p.note.managing == "frustration" and p.note.confidence > 0.9


def test_static_offset_moves_from_the_designer_level() -> None:
    assert StaticPolicy({"offset": -0.1}, 0.5).target(obs(0.0)) == pytest.approx(0.4)
    assert StaticPolicy({"offset": 0.7}, 0.5).target(obs(0.0)) == 1.0  # clipped to the level range


def _play_portfolio(p: Portfolio, life_of: Callable[[PortfolioArm], float], n: int, seed: int = 0) -> list[str]:
    """Sessions one after another, each quitting with its arm's hazard (capped at 900 s, which censors)."""
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(n):
        arm, propensity = p.choose()
        assert 0.0 < propensity <= 1.0
        life = float(rng.exponential(life_of(arm)))
        p.played(arm.label, min(life, 900.0))
        p.ended(arm.label, by_player=life < 900.0)  # the cap censors, it is not a quit
        drawn.append(arm.label)
    return drawn


def _hump(peak: float) -> Callable[[PortfolioArm], float]:
    """Players who stay longest at the designer's level + peak; the model's director is poor for them."""

    def life(arm: PortfolioArm) -> float:
        if arm.policy != "static":
            return 200.0
        return max(450.0 - 1000.0 * abs(arm.offset - peak), 60.0)

    return life


def test_portfolio_learns_which_director_keeps_players_longest() -> None:
    """The arm players stay longest with ends up with most of the sessions, and what it learned is
    that arm's mean life; where "harder" is the best end of the ladder, the next rung joins."""
    p = Portfolio(arms=FIXED_ARMS, seed=1)  # the fixed candidates: their ladder
    life = _hump(0.1)  # 0.1 harder is best: 450 s; designer 350 s, 0.2 harder 350 s
    drawn = _play_portfolio(p, life, 500)
    assert drawn[200:].count("harder") / 300 > 0.7
    summary = {row["arm"]: row for row in p.summary()}
    assert max(summary, key=lambda a: float(summary[a]["mean_life_s"])) == "harder"
    assert summary["harder"]["mean_life_s"] == pytest.approx(450.0, rel=0.25)
    assert sum(int(row["sessions_assigned"]) for row in summary.values()) == 500
    assert "harder+0.2" in summary  # the next rung was tried (and lost: "harder" keeps most sessions)


def test_portfolio_climbs_the_ladder_to_where_players_stay_and_no_further_than_its_limit() -> None:
    up = Portfolio(arms=FIXED_ARMS, seed=2)
    drawn = _play_portfolio(up, _hump(0.3), 1500, seed=3)  # wants 0.3 harder: two rungs beyond "harder"
    assert drawn[-300:].count("harder+0.3") / 300 > 0.6
    assert {a.label for a in up.arms} == {"designer", "harder", "predictive", "harder+0.2", "harder+0.3"}
    far = Portfolio(arms=FIXED_ARMS, seed=4)

    def rising(arm: PortfolioArm) -> float:  # the harder the better, beyond LADDER_MAX
        return 100.0 if arm.policy != "static" else 150.0 + 1000.0 * arm.offset

    _play_portfolio(far, rising, 1500, seed=5)
    assert max(a.offset for a in far.arms) == pytest.approx(LADDER_MAX)
    down = Portfolio(arms=FIXED_ARMS, seed=6)
    drawn = _play_portfolio(down, _hump(-0.2), 1500, seed=7)  # wants it easier than the designer's level
    assert drawn[-300:].count("easier-0.2") / 300 > 0.6


def test_predictives_harder_band_joins_only_where_predictive_is_probably_the_best() -> None:
    """Where `predictive` keeps players longest, its harder-band follower joins once it has led after
    LADDER_AFTER sessions, and takes over where its players stay longer still; where another candidate
    leads, it never joins (no exploration paid for it)."""

    def led_by(best: str, follower_life: float) -> Callable[[PortfolioArm], float]:
        def life(arm: PortfolioArm) -> float:
            return follower_life if arm.label == PREDICTIVE_HARDER.label else 450.0 if arm.label == best else 150.0

        return life

    p = Portfolio(arms=DEFAULT_ARMS, seed=11)
    drawn = _play_portfolio(p, led_by("predictive", 700.0), 600, seed=12)
    joined = drawn.index(PREDICTIVE_HARDER.label)
    assert drawn[:joined].count("predictive") >= LADDER_AFTER
    assert drawn[-200:].count(PREDICTIVE_HARDER.label) / 200 > 0.6
    assert dict(p.arms[-1].params) == {"band_low": "0.1", "band_high": "0.4"}
    stays = Portfolio(arms=DEFAULT_ARMS, seed=13)
    drawn = _play_portfolio(stays, led_by("predictive", 150.0), 600, seed=14)
    assert drawn[-200:].count("predictive") / 200 > 0.7  # tried, and left behind where it is worse
    for leader in ("designer", "adaptive"):
        other = Portfolio(arms=DEFAULT_ARMS, seed=15)
        assert PREDICTIVE_HARDER.label not in _play_portfolio(other, led_by(leader, 700.0), 600, seed=16)
    fixed = Portfolio(arms=FIXED_ARMS, seed=17)  # a portfolio whose `predictive` names no follower
    assert PREDICTIVE_HARDER.label not in _play_portfolio(fixed, led_by("predictive", 700.0), 600, seed=18)


def test_a_portfolio_note_says_which_risk_and_what_the_evidence_expects() -> None:
    reset_portfolios()
    p = portfolio_for("arena.test.note")
    p.played("predictive", 900.0)
    p.ended("predictive", by_player=True)  # 1 quit in 900 s (+ the 300 s prior): mean life 600 s
    p.played("designer", 300.0)
    p.ended("designer", by_player=True)
    p.ended("designer", by_player=True)  # designer: 2 quits in 300 s: mean life 200 s
    assert p.expected_gain_s("predictive") == pytest.approx(400.0)
    assert p.expected_gain_s("designer") == 0.0
    seen = set()
    for i in range(40):
        h = hello(policy="portfolio", params={})
        h.game_id = "arena.test.note"
        d = Director(Session(f"s{i}", "", spec_of(h), frozenset(h.capabilities), 0.0, 0.0), "predictive")
        assert d.arm is not None and d.policy.note is not None
        seen.add(d.arm.label)
        if d.arm.label == "predictive":
            assert d.policy.note.managing == "frustration"
            assert d.policy.note.expected_gain_s == pytest.approx(400.0)
    assert "predictive" in seen
    reset_portfolios()


def test_a_portfolio_session_draws_a_director_and_reports_its_play() -> None:
    reset_portfolios()
    assert not _director("portfolio", {"npc_hints": "off"}).hints_on  # the hello's common parameters hold
    reset_portfolios()
    d = _director("portfolio", {})
    assert d.session.experiment == "portfolio" and d.arm is not None
    assert d.session.arm == d.arm.label and 0.0 < d.session.assignment_propensity <= 1.0
    classes = {"static": "StaticPolicy", "predictive": "PredictivePolicy", "rubber_band": "RubberBandPolicy"}
    assert type(d.policy).__name__ == classes[d.arm.policy]
    note = d.policy.note  # why this session got this director, in every guidance (Guidance.director)
    assert note is not None and note.managing == d.arm.manages
    assert note.confidence == note.propensity == d.session.assignment_propensity
    assert note.designer_level == pytest.approx(d.default_level)
    assert note.candidate == d.arm.label  # what it drew, in every guidance (the welcome's arm says it too)
    for t in range(1, 32, 2):  # 30 s of frames
        _step(d, obs(float(t)))
    d.finish(by_player=False)
    state = portfolio_for(d.session.spec.game_id).state[d.arm.label]
    assert (state.seconds, state.finished, state.quits) == (pytest.approx(30.0), 1, 0)
    reset_portfolios()


def test_the_adaptive_candidate_starts_where_the_games_recent_sessions_of_it_ended() -> None:
    """The portfolio's adaptive candidate (a rubber band) starts each session at the level its recent
    sessions ended (a session counting fully once it lasted START_FULL_S); a NaN ending teaches nothing.
    A director drawing it starts there and says which way it leans."""
    from sidecar.policies.portfolio import ADAPTIVE_ARM, START_FULL_S

    p = Portfolio(arms=(PortfolioArm("designer", "static"), ADAPTIVE_ARM), seed=1)
    assert p.start_offset("adaptive") == 0.0  # the designer's level until it has ended sessions
    for _ in range(200):  # sessions as long from every start: none walls its start off (start_range)
        p.played("adaptive", START_FULL_S)
        p.ended("adaptive", True, end_offset=0.3, played_s=START_FULL_S)
    assert p.start_offset("adaptive") == pytest.approx(0.3, abs=0.01)
    p.ended("adaptive", True, end_offset=float("nan"), played_s=START_FULL_S)
    p.ended("adaptive", True, end_offset=-0.5, played_s=0.0)  # a session that never played
    assert p.start_offset("adaptive") == pytest.approx(0.3, abs=0.01)
    short, full = Portfolio(arms=p.arms, seed=2), Portfolio(arms=p.arms, seed=3)
    for _ in range(10):
        short.played("adaptive", START_FULL_S / 4)
        short.ended("adaptive", True, end_offset=0.3, played_s=START_FULL_S / 4)
        full.played("adaptive", 10 * START_FULL_S)
        full.ended("adaptive", True, end_offset=0.3, played_s=10 * START_FULL_S)
    assert 0 < short.start_offset("adaptive") < full.start_offset("adaptive") / 2
    assert p.evidence()["adaptive"].finished == 202  # each ending is still a session of the arm

    reset_portfolios()
    try:
        game = portfolio_for("arena.test.adaptive")
        for _ in range(200):
            game.ended("adaptive", True, end_offset=0.2, played_s=START_FULL_S)
            game.played("adaptive", 5000.0)  # far the longest-lived candidate: drawn nearly always
        ended = 0
        for i in range(40):
            h = hello(policy="portfolio", params={})
            h.game_id = "arena.test.adaptive"
            d = Director(Session(f"a{i}", "", spec_of(h), frozenset(h.capabilities), 0.0, 0.0), "static")
            if d.arm is None or d.arm.label != "adaptive":
                continue
            assert type(d.policy).__name__ == "RubberBandPolicy"
            before = game.start_offset("adaptive")  # 0.2, then where the first ending took it
            assert d.policy.level == pytest.approx(d.default_level + before, abs=0.01) and before > 0.19
            assert d.policy.note is not None and d.policy.note.managing == "boredom"
            d.played_s = START_FULL_S
            harder = min(d.default_level + 0.5, 1.0)
            if ended == 0:  # it ends where its knobs are: that ending teaches the next start
                d.values = d.session.spec.knobs.to_values(harder).astype(np.float32)
            else:  # a retreat had brought the knobs back to the designer's level: the candidate's level counts
                assert d.retreat is not None
                d.retreat.asked, d.retreat.now, d.retreat.share = harder, d.default_level, 1.0
                d.values = d.session.spec.knobs.to_values(d.default_level).astype(np.float32)
            d.finish(by_player=True)
            assert game.start_offset("adaptive") > before
            ended += 1
            if ended == 2:
                break
        else:
            raise AssertionError("the adaptive candidate was drawn fewer than twice")
    finally:
        reset_portfolios()


def test_the_adaptive_candidates_start_stays_off_starts_its_sessions_showed_worse() -> None:
    """The start follows where sessions end, and a rubber band's level climbs through calm play: on players
    who want it easier the ends run ahead of what keeps them. A start whose sessions are confidently shorter
    than from the best start walls it off (and what lies beyond); where higher starts keep players longer,
    nothing holds the start back."""
    from sidecar.policies.portfolio import ADAPTIVE_ARM, START_FULL_S, start_range, start_range_of

    def life_at(start: float, lives: dict[float, float]) -> float:
        return lives[min(lives, key=lambda s: abs(s - start))]

    def play(lives: dict[float, float], sessions: int) -> Portfolio:
        p = Portfolio(arms=(ADAPTIVE_ARM,), seed=5)
        for _ in range(sessions):  # every session ends 0.4 above the designer's level
            seconds = life_at(p.start_offset("adaptive"), lives)
            p.played("adaptive", seconds)
            p.ended("adaptive", True, end_offset=0.4, played_s=max(seconds, START_FULL_S))
        return p

    tiring = play({0.0: 500.0, 0.1: 520.0, 0.2: 480.0, 0.3: 250.0, 0.4: 200.0}, 400)
    assert tiring.start_offset("adaptive") == pytest.approx(0.2)  # +0.3 walled off: half as long
    assert tiring.at_start["adaptive@+0.3"].finished >= 1  # once its sessions had shown it
    climbing = play({0.0: 300.0, 0.1: 330.0, 0.2: 360.0, 0.3: 400.0, 0.4: 450.0}, 400)
    assert climbing.start_offset("adaptive") == pytest.approx(0.4, abs=0.01)

    # One start's few sessions wall off nothing; nor does evidence that cannot tell starts apart.
    assert start_range({0.0: ArmEvidence(quits=30, seconds=15000.0, finished=30)}) == (-1.0, 1.0)
    few = {
        0.0: ArmEvidence(quits=30, seconds=15000.0, finished=30),
        0.1: ArmEvidence(quits=2, seconds=400.0, finished=2),
    }
    assert start_range(few) == (-1.0, 1.0)
    many = {**few, 0.1: ArmEvidence(quits=30, seconds=6000.0, finished=30)}
    assert start_range(many) == (-1.0, 0.0)
    below = {**few, -0.2: ArmEvidence(quits=30, seconds=6000.0, finished=30)}
    assert start_range(below) == pytest.approx((-0.1, 1.0))
    # Read from evidence by label, as a store file holds it: labels it cannot read are no start.
    labelled = {f"adaptive@{s:+.1f}": e for s, e in many.items()}
    damaged = {"adaptive@x": many[0.1], "adaptive@nan": many[0.1], "adaptive@+9.0": many[0.1]}
    assert start_range_of("adaptive", {**labelled, **damaged, "predictive": many[0.1]}) == (-1.0, 0.0)


def test_the_adaptive_candidate_is_weighed_by_its_sessions_from_about_the_start_it_has_now() -> None:
    """`adaptive` changes as its start moves (on players who want it harder it keeps them ~20% longer
    from +0.3 than from the designer's level), so the draw weighs it by its sessions from about its
    present start ("adaptive@+0.2"); its sessions from other starts count as at most START_ELSEWHERE
    sessions there. Every session still counts for the candidate too (reports, metrics, the store)."""
    from sidecar.policies.portfolio import ADAPTIVE_ARM, START_ELSEWHERE, evidence_label

    def adaptive_share(p: Portfolio) -> float:
        return sum(p.choose()[0].label == "adaptive" for _ in range(300)) / 300

    p = Portfolio(arms=(PortfolioArm("predictive", "predictive"), ADAPTIVE_ARM), seed=4)
    for _ in range(300):  # from the designer's level: 120 s a session against predictive's 150 s
        p.played("adaptive", 120.0)
        p.ended("adaptive", by_player=True)
        p.played("predictive", 150.0)
        p.ended("predictive", by_player=True)
    assert p.start_of("adaptive") == (0.0, "adaptive@+0.0") and p.at_start["adaptive@+0.0"].finished == 300
    stuck = adaptive_share(p)
    assert stuck < 0.02
    p.absorb_starts({"adaptive": 0.18})  # its start moved (its sessions ended higher and higher)
    assert p.start_of("adaptive") == (0.18, evidence_label("adaptive", 0.2)) == (0.18, "adaptive@+0.2")
    tried_again = adaptive_share(p)
    assert tried_again > stuck + 0.1  # ~START_ELSEWHERE sessions of 120 s: it may be better from here
    for _ in range(round(3 * START_ELSEWHERE)):  # and it is worse from there too: judged by those now
        p.played("adaptive", 100.0)
        p.ended("adaptive", by_player=True)
    assert adaptive_share(p) < tried_again / 2

    p.played("adaptive@+0.2", 40.0)  # a director's session drawn at that start
    p.ended("adaptive@+0.2", by_player=True)
    p.played("adaptive", 10.0)  # a caller that names the candidate alone counts at its present start
    assert p.at_start["adaptive@+0.2"].seconds == pytest.approx(3000.0 + 50.0)
    assert p.at_start["adaptive@+0.2"].finished == 31
    assert p.state["adaptive"].finished == 331 and p.at_start["adaptive@+0.0"].finished == 300
    assert [row["arm"] for row in p.summary()] == ["predictive", "adaptive"]  # candidates, not their starts
    assert set(p.evidence()) == {"predictive", "adaptive"}  # each session once: sums count sessions

    reset_portfolios()
    try:
        g = portfolio_for("arena.test.starts")
        g.absorb_starts({"adaptive": -0.31})
        for i in range(200):
            h = hello(policy="portfolio", params={})
            h.game_id = "arena.test.starts"
            d = Director(Session(f"a{i}", "", spec_of(h), frozenset(h.capabilities), 0.0, 0.0), "static")
            if d.arm is not None and d.arm.label == "adaptive":
                assert d.evidence == "adaptive@-0.3"
                d.seen(0.0)
                d.elapsed(2.0)
                assert g.at_start["adaptive@-0.3"].seconds == pytest.approx(2.0)
                break
        else:
            raise AssertionError("the adaptive candidate was never drawn")
    finally:
        reset_portfolios()


def test_play_counts_from_the_sessions_first_frame_answered_or_not() -> None:
    """Frames superseded while a session's first step ran are play: the portfolio counts from the first
    frame, as a recording does (`portfolio import` reads the same seconds), while the knobs still start
    from where they are at the first answer."""
    reset_portfolios()
    try:
        d = _director("portfolio", {})
        assert d.portfolio is not None and d.arm is not None
        d.seen(10.0)
        d.seen(10.2)  # superseded by the next one
        d.seen(11.2)
        assert d.elapsed(11.2) == 0.0  # the first answer: no knob change is due yet
        d.seen(11.4)
        assert d.elapsed(11.4) == pytest.approx(0.2)
        assert d.played_s == pytest.approx(1.4)
        # The portfolio hears of play once a PLAY_REPORT_S (and all of it when the session ends).
        assert d.portfolio.state[d.arm.label].seconds == pytest.approx(1.2)
        d.report_play()
        assert d.portfolio.state[d.arm.label].seconds == pytest.approx(1.4)
    finally:
        reset_portfolios()


def test_a_clock_that_jumps_counts_a_few_seconds_of_play_not_hours() -> None:
    """A gap between two frames longer than MAX_PLAY_GAP_S (a pause, a loading screen, a game clock that
    jumped an hour) counts that much play: one bad frame must not tell a learning director that its
    candidate kept a player for an hour."""
    reset_portfolios()
    try:
        d = _director("portfolio", {})
        assert d.portfolio is not None and d.arm is not None
        for t in (10.0, 10.2, 3610.2, 3610.4):
            d.seen(t)
            d.elapsed(t)
        assert d.played_s == pytest.approx(0.4 + MAX_PLAY_GAP_S)
        d.finish()
        assert d.portfolio.state[d.arm.label].seconds == pytest.approx(0.4 + MAX_PLAY_GAP_S)
    finally:
        reset_portfolios()


def _played(policy: str, params: dict[str, str], phases: list[tuple[float, float, float, float]]) -> Director:
    """Play (seconds, activity, recent damage, seconds since a death) phases at 5 Hz through the engine's
    director path."""
    d = _director(policy, params)
    t = 0.0
    for seconds, activity, damage, since in phases:
        for _ in range(int(seconds * 5)):
            t += 0.2
            _step(d, _guarded_obs(t, activity, damage, since))
    return d


def _level_after_retreat(policy: str, params: dict[str, str], phases: list[tuple[float, float, float, float]]) -> float:
    """The level the last step of `_played` wanted (its knob targets, as a difficulty)."""
    d = _played(policy, params, phases)
    return float(d.session.spec.knobs.to_difficulty(d.wanted))


_UNDER_PRESSURE = [(60.0, 0.8, 0.3, 20.0), (90.0, 0.4, 0.3, 20.0)]  # disengages while hurt and dying
_IN_CALM = [(60.0, 0.8, 0.0, 120.0), (90.0, 0.4, 0.0, 120.0)]  # disengages with nothing happening


def test_a_harder_level_is_taken_back_for_a_player_who_disengages_under_pressure() -> None:
    harder = {"level": "0.8", "retreat": "0.3"}
    assert _level_after_retreat("static", harder, _UNDER_PRESSURE) == pytest.approx(0.5, abs=0.02)
    assert _level_after_retreat("static", harder, _IN_CALM) == pytest.approx(0.8, abs=1e-3)  # bored: it stands
    calm = [(150.0, 0.8, 0.3, 20.0)]  # under pressure but playing as before: no evidence, it stands
    assert _level_after_retreat("static", harder, calm) == pytest.approx(0.8, abs=1e-3)
    # Partial evidence takes back part of the move, never more than the whole of it.
    half = [(60.0, 0.8, 0.3, 20.0), (90.0, 0.68, 0.3, 20.0)]  # a 15% drop: half of retreat=0.3
    assert 0.55 < _level_after_retreat("static", harder, half) < 0.75
    assert _level_after_retreat("static", {"level": "0.8"}, _UNDER_PRESSURE) == pytest.approx(0.8, abs=1e-3)
    # The director note says what the retreat answers.
    note = _played("static", harder, _UNDER_PRESSURE).note
    assert note is not None and note.managing == "frustration" and note.target_level == pytest.approx(0.5, abs=0.02)
    assert _played("static", harder, _IN_CALM).note is None  # nothing taken back: the static level's own (none)


def test_an_easier_level_is_not_taken_back() -> None:
    """Disengaging in calm reads as boredom, but on players whose frustration outlasts the fight it is
    frustration still (retreat.py): an easier level stands, whatever the evidence."""
    easier = {"level": "0.2", "retreat": "0.3"}
    assert _level_after_retreat("static", easier, _IN_CALM) == pytest.approx(0.2, abs=1e-3)
    assert _level_after_retreat("static", easier, _UNDER_PRESSURE) == pytest.approx(0.2, abs=1e-3)
    assert _played("static", easier, _IN_CALM).note is None


@pytest.mark.parametrize("arm", [*DEFAULT_ARMS, PREDICTIVE_HARDER, rung(0.1), rung(-0.1)], ids=lambda a: a.label)
def test_the_portfolio_takes_back_a_candidates_harder_move_unless_it_steers_to_the_band_or_the_hello_says_not_to(
    arm: PortfolioArm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed or adaptive candidate's move is taken back for a player it hurts; a predictive one already
    eases for the player it pressures (its band), and the retreat took back what the skilled wanted."""
    monkeypatch.setattr(Portfolio, "choose", lambda self, borrowed=None: (arm, 1.0))
    director = _director("portfolio", {})
    assert director.arm == arm
    assert (director.retreat is not None) == (arm.policy != "predictive")
    assert _director("portfolio", {"retreat": "0"}).retreat is None
    assert _director("portfolio", {"retreat": "0.3"}).retreat is not None  # the hello's word goes for any candidate
    assert _director("static", {}).retreat is None  # a director asked for by name plays as asked


def test_retreat_is_range_checked_by_name() -> None:
    with pytest.raises(PolicyParamError, match=r"retreat=1.5 is outside \[0, 1\]"):
        parse_params("rubber_band", {"retreat": "1.5"})
