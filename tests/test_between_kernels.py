"""The compiled arithmetic of a frame between model steps (sidecar/engine/_between.c) against the Python
versions it stands in for: the model clock's fold and its merge into the step's frame, and the director's
easing of the knobs.

Its contract: the same bits for the same inputs, hostile ones included (NaN, infinities, huge and tiny
numbers, zero and negative rates, players joining and leaving), and declining -- the Python version then
runs -- whatever it is not given in the shape it expects.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from sidecar.engine.between import compiled_between_available, ease_compiled, fold_compiled, merge_compiled
from sidecar.engine.clock import ModelClock
from sidecar.features import FrameInput, KnobSet, RawFrame
from sidecar.policies.director import Director
from sidecar.session import Session
from sidecar.wire.frames import extract
from sidecar.wire.hello import spec_of
from sim.game import KNOBS, hello
from tests.ci import IN_CI
from tests.helpers import game_frames

if not compiled_between_available():
    if IN_CI:
        pytest.fail(
            "the compiled between-steps kernels are not built (pip install -e . builds them with gcc)", pytrace=False
        )
    pytest.skip("the compiled between-steps kernels are not built here (no C compiler)", allow_module_level=True)

NAMES = [k.name for k in KNOBS]
HOSTILE = [np.nan, np.inf, -np.inf, 1e308, -1e308, 5e-324, -0.0, 0.0, 1e-12, 3.4e38]


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _frames_with_players(rng: random.Random, count: int) -> list[RawFrame]:
    """Simulator frames, their numbers scrambled, players joining and leaving (ids drawn from a few)."""
    base = [extract(f, NAMES) for f in game_frames(count)]
    out = []
    for raw in base:
        n = rng.randint(1, 6)
        ids = rng.sample(["a", "b", "c", "d", "e", "f", "g"], n)
        players = np.repeat(raw.players[:1], n, axis=0)
        noise = np.array([[rng.uniform(-1e3, 1e3) for _ in range(players.shape[1])] for _ in range(n)])
        players = players + noise
        for _ in range(rng.randint(0, 3)):
            players[rng.randrange(n), rng.randrange(players.shape[1])] = rng.choice(HOSTILE)
        events = (
            np.array([[1.0, rng.randrange(-1, n), rng.uniform(0, 50), rng.uniform(0, 9)]])
            if rng.random() < 0.3
            else np.zeros((0, 4))
        )
        out.append(replace(raw, players=players, player_ids=ids, events=events))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_compiled_fold_gives_the_python_folds_bits(seed: int) -> None:
    """Two clocks fed the same frames, one folding and merging in C and one in Python: every step they
    hand the model holds the same bits (players, events), through joins, leaves and hostile numbers."""
    rng = random.Random(seed)
    knobs = KnobSet.from_specs(list(KNOBS))
    clocks = {True: ModelClock(0.2), False: ModelClock(0.2)}
    t, steps = 0.0, 0
    for raw in _frames_with_players(rng, 400):
        t += rng.choice([1 / 60, 1 / 30, 0.0, 0.05, 0.3])
        frame = FrameInput(raw, 1, t, None, 0.0, {}, knobs)
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 and the like: NaN in both, by design
            got = {c: clocks[c].route(frame, compiled=c) for c in (True, False)}
        assert (got[True] is None) == (got[False] is None)
        if got[True] is not None and got[False] is not None:
            steps += 1
            a, b = got[True].raw, got[False].raw
            assert a.player_ids == b.player_ids
            assert _bits(a.players) == _bits(b.players)
            assert _bits(a.events) == _bits(b.events)
        assert clocks[True].ids == clocks[False].ids
        n = len(clocks[True].ids)
        assert _bits(clocks[True].rows[:n]) == _bits(clocks[False].rows[:n])
    assert steps > 30


def test_the_fold_declines_what_it_does_not_expect() -> None:
    """float32 tables, tables cut short, a read-only state, spans past the row: False, nothing written."""
    rows = np.full((4, 5), 7.0)
    players = np.ones((2, 20))
    spans = (13, 3, 16, 1)
    assert fold_compiled(rows, players, 2, 20, 0.5, True, spans)
    before = rows.copy()
    assert not fold_compiled(rows, players.astype(np.float32), 2, 20, 0.5, False, spans)
    assert not fold_compiled(rows, players[:, :10].copy(), 2, 20, 0.5, False, spans)
    assert not fold_compiled(rows, players[:, ::2], 2, 10, 0.5, False, spans)  # not contiguous
    assert not fold_compiled(rows[:1], players, 2, 20, 0.5, False, spans)  # too few rows of state
    frozen = rows.copy()
    frozen.setflags(write=False)
    assert not fold_compiled(frozen, players, 2, 20, 0.5, False, spans)
    assert not fold_compiled(rows, players, 2, 20, 0.5, False, (13, 3, 19, 2))  # past the row
    assert not fold_compiled(rows, players, -1, 20, 0.5, False, spans)
    assert not fold_compiled(rows, players, 2**62, 20, 0.5, False, spans)  # a size that would overflow
    assert not fold_compiled(rows, b"not numbers", 2, 20, 0.5, False, spans)
    assert _bits(rows) == _bits(before)


def test_the_merge_declines_what_it_does_not_expect() -> None:
    """The step frame's table read-only, float32 or cut short, too few rows of state, spans past the row:
    False, nothing written; the usual case merges in place."""
    rows = np.full((4, 5), 2.0)
    spans = (13, 3, 16, 1)
    players = np.ones((2, 20))
    assert merge_compiled(players, rows, 2, 20, 0.5, spans)
    assert players[0, 13] == 3.0 and players[0, 16] == (2.0 + 1.0 * 0.5) / (2.0 + 0.5)
    before = players.copy()
    frozen = players.copy()
    frozen.setflags(write=False)
    assert not merge_compiled(frozen, rows, 2, 20, 0.5, spans)
    assert not merge_compiled(players.astype(np.float32), rows, 2, 20, 0.5, spans)
    assert not merge_compiled(players[:, :10].copy(), rows, 2, 20, 0.5, spans)
    assert not merge_compiled(players, rows[:1], 2, 20, 0.5, spans)
    assert not merge_compiled(players, rows, 2, 20, 0.5, (13, 3, 19, 2))
    assert not merge_compiled(players, rows, 2**62, 20, 0.5, spans)
    assert not merge_compiled(players, "not numbers", 2, 20, 0.5, spans)
    assert _bits(players) == _bits(before)


def _director() -> Director:
    h = hello(policy="static", params={})
    return Director(Session("s", "", spec_of(h), frozenset(h.capabilities), 0.0, 0.0), "static")


def test_the_compiled_easing_gives_the_python_easings_bits() -> None:
    """Two directors eased through the same targets and times, one in C and one in Python: the same knob
    values, the same floats for the wire, the same knobs named when a value is not finite."""
    rng = random.Random(5)
    d = {True: _director(), False: _director()}
    k = len(d[True].values)
    rates = [
        np.array([rng.choice([0.0, -1.0, 0.05, 1.0, 1e9, np.nan]) for _ in range(k)], np.float32) for _ in range(4)
    ]
    t = 0.0
    for i in range(3000):
        if i % 40 == 0:  # another game's knobs: rates of every kind
            rate = rates[rng.randrange(len(rates))]
            for x in d.values():
                x.rate = rate
                x._rate = rate.tolist()
                x._limits = np.array([x._rate, x._lo, x._hi], np.float64).T.copy()
        if i % 7 == 0:  # a model step's new target
            with np.errstate(over="ignore"):  # 1e308 as float32: inf, on purpose
                wanted = np.array([rng.choice([rng.uniform(-2, 2), rng.choice(HOSTILE)]) for _ in range(k)], np.float32)
            for x in d.values():
                x.wanted = wanted.copy()
        t += rng.choice([0.0, 1 / 60, 0.5, 30.0, -1.0])
        got = {c: d[c].ease(t, compiled=c) for c in (True, False)}
        assert got[True] == got[False] or _same_with_nan(got[True][0], got[False][0]), (i, got)
        assert got[True][1] == got[False][1]
        assert _bits(d[True].values) == _bits(d[False].values)


def _same_with_nan(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def test_the_easing_declines_what_it_does_not_expect() -> None:
    values = np.array([0.5, 0.5], np.float32)
    limits = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = np.zeros(2, np.float32)
    got = ease_compiled(out, values, np.array([1.0, 0.0]), limits, 0.1)
    assert got is not None and got[1] and got[0] == [pytest.approx(0.6), 0.0]
    assert ease_compiled(out, values.astype(np.float64), np.array([1.0, 0.0]), limits, 0.1) is None
    assert ease_compiled(np.zeros(3, np.float32), values, np.array([1.0, 0.0]), limits, 0.1) is None
    assert ease_compiled(out, values, np.array([1, 0]), limits, 0.1) is None  # integers
    assert ease_compiled(out, values, np.array([1.0, 0.0]), limits[:1], 0.1) is None
    frozen = np.zeros(2, np.float32)
    frozen.setflags(write=False)
    assert ease_compiled(frozen, values, np.array([1.0, 0.0]), limits, 0.1) is None
