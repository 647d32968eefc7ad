"""The contextual director: the designer's level for the first minute, then the director its skill share
of the game's players keeps playing longest, learned per share."""

from __future__ import annotations

import math
import random
from pathlib import Path

import grpc
import numpy as np
import pytest

from sidecar.operations.portfolio_store import PortfolioStore
from sidecar.policies.contextual import CONTEXT_AT_S, CONTEXT_BUCKETS, ContextualPolicy, bucket_key
from sidecar.policies.difficulty import DEFAULT_BAND, Observation
from sidecar.policies.director import make_policy
from sidecar.policies.portfolio import (
    CONTEXT_ARMS,
    CONTEXT_MARK,
    SPREAD_MIN,
    SkillSpread,
    portfolio_for,
    portfolios,
    reset_portfolios,
)
from sidecar.serving.inprocess import RunningSidecar
from tests.helpers import GrpcSession, frame_req, game_frames, hello_req
from tests.test_policies import _director, _step, obs

GAME = "arena.test.contextual"


def _obs(t: float, skill: float) -> Observation:
    o = obs(t)
    o.skill = skill
    return o


def _policy(seed: int = 0) -> ContextualPolicy:
    return ContextualPolicy({}, 0.5, DEFAULT_BAND, GAME, seed, make_policy)


def test_a_skill_lands_in_its_share_of_the_players_seen() -> None:
    spread = SkillSpread()
    assert spread.bucket(0.9, 3) == 1  # too few seen yet: the middle share
    for x in np.linspace(0.0, 1.0, SPREAD_MIN * 2):
        spread.bucket(float(x), 3)
    assert [spread.bucket(x, 3) for x in (0.05, 0.5, 0.95)] == [0, 1, 2]


def test_the_first_minute_holds_the_designer_level_then_a_share_draws_a_director() -> None:
    reset_portfolios()
    p = _policy()
    t = 0.0
    while t < CONTEXT_AT_S - 0.2:
        assert p.target(_obs(t, 0.8)) == 0.5 and p.inner is None and p.drawn == ""
        t += 0.2
    p.target(_obs(CONTEXT_AT_S + 0.1, 0.8))
    assert p.inner is not None and p.arm is not None
    assert p.drawn == f"skill2of{CONTEXT_BUCKETS}/{p.arm.label}"  # the middle share until the spread is known
    assert p.note is not None and p.note.confidence == p.propensity > 0.0
    p.played(100.0)
    p.ended(by_player=True)
    state = portfolio_for(bucket_key(GAME, 1)).state[p.arm.label]
    assert (state.seconds, state.quits, state.finished) == (pytest.approx(100.0), 1, 1)
    reset_portfolios()


def test_each_share_learns_its_own_best_director() -> None:
    """Players of low skill stay longest under `predictive`, of high skill under the rubber band: after a
    few hundred sessions each share gives most of its sessions to its own best (one portfolio for the
    game would pick one for both)."""
    reset_portfolios()
    rng = random.Random(3)
    best = {0: "predictive", 2: "rubber_band"}
    late: dict[int, list[str]] = {0: [], 2: []}
    for i in range(1500):
        skill = rng.random()
        p = _policy(seed=i)
        for t in np.arange(0.0, CONTEXT_AT_S + 0.4, 5.0):
            p.target(_obs(float(t), skill))
        assert p.arm is not None
        # The middle share: every director alike. The others: their best keeps players 3x as long.
        mean_life = 300.0 if p.bucket == 1 else 600.0 if p.arm.label == best[p.bucket] else 200.0
        p.played(rng.expovariate(1.0 / mean_life))
        p.ended(by_player=True)
        if p.bucket in late and i >= 1000:
            late[p.bucket].append(p.arm.label)
    for b, labels in late.items():
        assert labels.count(best[b]) / len(labels) > 0.6, (b, {x: labels.count(x) for x in set(labels)})
    reset_portfolios()


def test_a_contextual_session_through_the_director() -> None:
    reset_portfolios()
    d = _director("contextual", {})
    assert d.session.experiment == "contextual" and d.arm is None
    _step(d, obs(0.0))
    _step(d, obs(CONTEXT_AT_S + 1.0))  # the step that reads the context and draws
    assert isinstance(d.policy, ContextualPolicy) and d.policy.arm is not None
    for t in range(2, 32):  # 30 s of steps
        _step(d, obs(CONTEXT_AT_S + t))
    d.finish(by_player=False)
    key = bucket_key(d.session.spec.game_id, d.policy.bucket)
    state = portfolio_for(key).state[d.policy.arm.label]
    assert (state.seconds, state.finished, state.quits) == (pytest.approx(30.0), 1, 0)
    reset_portfolios()


def test_the_shares_evidence_is_kept_in_the_state_dir(tmp_path: Path) -> None:
    """Each share's portfolio is kept like a game's (--state-dir), rubber band included, and a restarted
    process starts from it."""
    reset_portfolios()
    key = bucket_key(GAME, 0)
    portfolio_for(key).played("rubber_band", 120.0)
    portfolio_for(key).ended("rubber_band", by_player=True)
    PortfolioStore(tmp_path).sync()
    reset_portfolios()
    PortfolioStore(tmp_path).load()
    state = portfolio_for(key).state["rubber_band"]
    assert (state.seconds, state.quits, state.finished) == (pytest.approx(120.0), 1, 1)
    assert [a.label for a in portfolio_for(key).arms] == [a.label for a in CONTEXT_ARMS]
    reset_portfolios()


def test_a_served_contextual_session_draws_after_its_first_minute(
    sidecar: RunningSidecar, channel: grpc.Channel
) -> None:
    """Over gRPC at 5 Hz: every answer's note says the designer's level (propensity 1) for the first
    minute, then the drawn director's (its draw's probability) and which it is, by its share
    ("skill2of3/rubber_band"), and its third's portfolio counts the play."""
    reset_portfolios()
    c = GrpcSession(channel)
    c.send(hello_req(policy="contextual"))
    assert c.recv().WhichOneof("kind") == "welcome"
    notes = []
    candidates: list[str] = []
    for f in game_frames(int((CONTEXT_AT_S + 20.0) * 5), frame_every=6):
        c.send(frame_req(f))
        g = c.recv().guidance
        assert g.sequence == f.sequence and all(math.isfinite(k.value) for k in g.knobs)
        notes.append((f.game_time, g.director.propensity, g.director.target_level, g.director.designer_level))
        candidates.append(g.director.candidate)
    c.close()
    first = [n for n in notes if n[0] < CONTEXT_AT_S - 0.5]
    later = [n for n in notes if n[0] > CONTEXT_AT_S + 1.0]
    assert first and all(p == 1.0 and t == pytest.approx(d) for _, p, t, d in first)
    assert later and all(0.0 < p < 1.0 for _, p, _, _ in later)  # four candidates: no draw is certain
    assert candidates[0] == ""  # the designer's level while nothing is learned: no draw
    share, _, drawn = candidates[-1].partition("/")
    assert share in {f"skill{b}of3" for b in (1, 2, 3)} and drawn in {a.label for a in CONTEXT_ARMS}
    assert len(set(candidates[len(first) + 10 :])) == 1  # one draw for the rest of the session
    shares = [p for k, p in portfolios().items() if CONTEXT_MARK in k]
    assert sum(e.seconds for p in shares for e in p.state.values()) > 15.0
    reset_portfolios()


def test_a_new_share_starts_from_what_its_siblings_learned() -> None:
    """Partial pooling: where the game's other shares found one candidate far better (every player wants
    it harder, say), a share with no evidence of its own draws it from its first sessions, and a ladder
    rung a sibling added joins it."""
    reset_portfolios()
    for b in (0, 2):
        sib = portfolio_for(bucket_key(GAME, b))
        sib.adopt(["harder+0.2"])
        for arm in sib.arms:  # 50 sessions each: mean life 600 s on the rung, 150 s on every other
            label = arm.label
            sib.played(label, 30000.0 if label == "harder+0.2" else 7500.0)
            for _ in range(50):
                sib.ended(label, by_player=True)
    drawn = []
    for i in range(60):
        p = _policy(seed=i)
        for t in (0.0, CONTEXT_AT_S / 2, CONTEXT_AT_S + 0.1):
            p.target(_obs(t, 0.5))
        assert p.bucket == 1 and p.arm is not None  # the middle share (too few skills seen to place it)
        drawn.append(p.arm.label)
    assert drawn.count("harder+0.2") / len(drawn) > 0.6, {x: drawn.count(x) for x in set(drawn)}
    reset_portfolios()


def _every_share_learned(best: str) -> None:
    """Every skill share of GAME has 50 sessions of each candidate ended: a mean life of 600 s under
    `best` (a ladder rung joins first if it is one), 150 s under every other."""
    for b in range(CONTEXT_BUCKETS):
        share = portfolio_for(bucket_key(GAME, b))
        share.adopt([best])
        for arm in share.arms:
            share.played(arm.label, 30000.0 if arm.label == best else 7500.0)
            for _ in range(50):
                share.ended(arm.label, by_player=True)


def test_the_first_minute_plays_what_the_whole_game_prefers_once_it_has_learned() -> None:
    """Before anything is learned the first minute holds the designer's level; once the shares together
    find one candidate far better, the first minute (skill not yet known) plays it, and the share's draw
    afterwards goes on from the level the game is at."""
    reset_portfolios()
    _every_share_learned("harder+0.2")
    firsts = []
    for i in range(40):
        p = _policy(seed=i)
        firsts.append(p.target(_obs(1.0, 0.5)))
    assert firsts.count(pytest.approx(0.7)) / len(firsts) > 0.8, firsts
    reset_portfolios()


def test_the_npc_hints_follow_the_director_playing_now() -> None:
    """The hints keep the band for a director that does not steer the knobs to it (the designer's level)
    and act only where the knobs ran out for one that does (`predictive`): in the first minute the
    director the whole game prefers decides it, as the share's draw does afterwards."""
    reset_portfolios()
    assert not _policy().steers_to_band  # nothing learned: the first minute holds the designer's level
    _every_share_learned("predictive")
    seen = []
    for i in range(40):
        p = _policy(seed=i)
        p.target(_obs(0.0, 0.5))
        first = p.first
        assert first is not None and p.steers_to_band == first.steers_to_band
        seen.append(p.steers_to_band)
        for t in (CONTEXT_AT_S / 2, CONTEXT_AT_S + 0.1):
            p.target(_obs(t, 0.5))
        assert p.inner is not None and p.steers_to_band == p.inner.steers_to_band
    assert sum(seen) / len(seen) > 0.8, seen  # predictive drawn for the first minute
    reset_portfolios()
