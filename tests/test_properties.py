"""Property-based tests of the sans-I/O core, the featurizer and the engine, structure-aware.

Hypothesis builds valid sessions (a hello, then frames in the row or the table form) and pushes one
field of some frames to an edge or beyond it: NaN, infinities, negatives, fractions, huge values,
exact bounds, duplicate ids, enums out of range. For every sequence:

- a refused frame's error names a field, and that field is in its message;
- every accepted frame is answered, and every number of every answer is finite and in range (knobs
  inside the designer's range, insights and aggression in [0, 1]);
- the featurizer's output and the session's running aggregates stay finite.

CI runs a bounded number of examples; `METABRAIN_PROPERTY_EXAMPLES=100000 pytest tests/test_properties.py`
is the long run recorded in RELIABILITY.md.
"""

from __future__ import annotations

import dataclasses
import math
import os
from copy import deepcopy
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from sidecar.columns import NPC_TABLE, PLAYER_TABLE, Kind
from sidecar.engine.engine import Engine, EngineConfig
from sidecar.errors import MetabrainError
from sidecar.features import FrameInput, featurize_many
from sidecar.features.layout import NPC_FEATURES, PLAYER_FEATURES
from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.policies.params import COMMON_PARAMS, POLICY_NAMES, POLICY_PARAMS
from sidecar.protocol import Connection, FrameAccepted, ServerInfo, Welcomed
from sidecar.session import SessionRegistry
from sidecar.wire import responses as wire_responses
from sidecar.wire.frames import WIRE_FLOAT, WIRE_ID
from sidecar.wire.requests import from_message
from sidecar.wire.schema import pb
from sim.game import KNOBS, hello

EXAMPLES = int(os.environ.get("METABRAIN_PROPERTY_EXAMPLES", "150"))
LIMITS = Limits(max_frames_per_second=1e9, max_npcs_per_frame=32)
BIG = LIMITS.max_abs_coordinate

# Values that sit on an edge or beyond one, for any column.
EDGES = (
    math.nan,
    math.inf,
    -math.inf,
    -1.0,
    -1e-7,
    0.5,
    1.0,
    1.0000001,
    2.5,
    7.0,
    99.0,
    1e6,
    1e7,
    3.4e38,
    -3.4e38,
    -1e6,
    BIG,
    -BIG,
    1e-30,
)


def _valid(col: Any, rows: int = 1) -> st.SearchStrategy[float]:
    """A valid value of a column (for a frame of `rows` players where the column is a row reference)."""
    lo, hi = col.bounds(BIG)
    if col.kind is Kind.REAL:
        return st.floats(min_value=_f32_inside(max(lo, -BIG), 1), max_value=_f32_inside(min(hi, BIG), -1), width=32)
    if col.kind is Kind.FLAG:
        return st.sampled_from((0.0, 1.0))
    if col.kind is Kind.ROW:
        return st.integers(-1, rows - 1).map(float)
    return st.integers(int(lo), int(min(hi, 1000))).map(float)


@st.composite
def frames(draw: st.DrawFn, sequence: int, game_time: float, knobs: tuple[pb.KnobSpec, ...] = KNOBS) -> pb.Frame:
    """One frame of a session of one to three players, valid unless a field is pushed to an edge."""
    tables = draw(st.booleans())
    n_players = draw(st.integers(1, 3))
    n_npcs = draw(st.integers(0, 6))
    pids = [f"p{i}" for i in range(n_players)]
    players = np.array([[draw(_valid(c)) for c in PLAYER_TABLE] for _ in range(n_players)], np.float64).reshape(
        n_players, len(PLAYER_TABLE)
    )
    h, mh = PLAYER_TABLE.index(_col("health")), PLAYER_TABLE.index(_col("max_health"))
    players[:, h] = np.minimum(players[:, h], players[:, mh])  # valid frames keep health <= max_health
    npcs = np.array([[draw(_valid(c, n_players)) for c in NPC_TABLE] for _ in range(n_npcs)], np.float64).reshape(
        n_npcs, len(NPC_TABLE)
    )
    ids = draw(st.lists(st.integers(0, 2**32 - 1), min_size=n_npcs, max_size=n_npcs, unique=True))
    events = draw(
        st.lists(
            st.tuples(st.integers(0, 10), st.sampled_from([*pids, ""]), st.floats(0.0, 500.0, width=32)),
            max_size=4,
        )
    )
    # Push one field of about one frame in three past an edge.
    bad = draw(st.sampled_from(("none", "none", "player", "npc", "event", "time", "dup", "knob")))
    edge = draw(st.sampled_from(EDGES))
    if bad == "player":
        players[draw(st.integers(0, n_players - 1)), draw(st.integers(0, len(PLAYER_TABLE) - 1))] = edge
    elif bad == "npc" and n_npcs:
        npcs[draw(st.integers(0, n_npcs - 1)), draw(st.integers(0, len(NPC_TABLE) - 1))] = edge
    elif bad == "dup" and n_npcs >= 2:
        ids[1] = ids[0]
    f = pb.Frame(
        sequence=sequence, game_time=game_time if bad != "time" else abs(edge) * draw(st.sampled_from((1, -1)))
    )
    for t, pid, amount in events:
        f.events.add(type=t, player_id=pid, amount=edge if bad == "event" else amount, game_time=game_time)  # type: ignore[arg-type]
    knob_values = [draw(_knob_value(k)) for k in knobs]
    if bad == "knob" and knob_values:
        knob_values[0] = edge
    if tables:
        f.player_table.player_ids.extend(pids)
        f.player_table.values = players.astype(WIRE_FLOAT).tobytes()
        f.player_table.columns = len(PLAYER_TABLE)
        if n_npcs:
            f.npc_table.npc_ids = np.array(ids, np.int64).astype(WIRE_ID).tobytes()
            f.npc_table.values = npcs.astype(WIRE_FLOAT).tobytes()
            f.npc_table.columns = len(NPC_TABLE)
        f.knob_values.extend(knob_values)
    else:
        for i, pid in enumerate(pids):
            _row_player(f.players.add(player_id=pid), players[i])
        for j in range(n_npcs):
            _row_npc(f.npcs.add(npc_id=ids[j]), npcs[j], pids)
        for k, value in zip(knobs, knob_values, strict=True):
            f.knobs.add(name=k.name, value=value)
    return f


def _knob_value(k: pb.KnobSpec) -> st.SearchStrategy[float]:
    """A value the game may report for the knob: inside its range (its one value, for a point)."""
    lo, hi = _f32_inside(k.min_value, 1), _f32_inside(k.max_value, -1)
    return st.floats(lo, hi, width=32) if lo < hi else st.just(float(k.min_value))  # 0.0 to -0.0 too


def _f32_inside(bound: float, toward: int) -> float:
    """The float32 nearest to `bound` on its inner side (toward=+1 for a lower bound, -1 for an upper)."""
    x = np.float32(bound)
    if (toward > 0 and x < bound) or (toward < 0 and x > bound):
        x = np.nextafter(x, np.float32(toward * np.inf))
    return float(x)


def _col(name: str) -> Any:
    return next(c for c in PLAYER_TABLE if c.name == name)


def _clamp_uint(v: float) -> int:
    """What a game's uint32 field can carry: an out-of-range count arrives wrapped or huge, never NaN."""
    if not math.isfinite(v):
        return 0
    return int(min(max(v, 0), 2**32 - 1))


def _row_player(p: pb.PlayerState, row: np.ndarray) -> None:
    v = row.tolist()
    p.position.x, p.position.y, p.position.z = v[0:3]
    p.velocity.x, p.velocity.y, p.velocity.z = v[3:6]
    p.health, p.max_health = v[6], v[7]
    p.dead = bool(v[8])
    i = p.input
    i.move_x, i.move_y, i.aim_x, i.aim_y = v[9:13]
    i.shots_fired, i.shots_hit, i.dodges = (_clamp_uint(x) for x in v[13:16])
    i.actions_per_minute = v[16]
    p.biometrics.heart_rate_bpm, p.biometrics.skin_conductance_us = v[17], v[18]
    if v[19]:
        p.vr.head.rotation.w = 1.0


def _row_npc(n: pb.Npc, row: np.ndarray, pids: list[str]) -> None:
    v = row.tolist()
    n.position.x, n.position.y, n.position.z = v[0:3]
    n.health = v[3]
    n.state = int(v[4]) if math.isfinite(v[4]) and abs(v[4]) < 2**31 else 99  # type: ignore[assignment]
    n.tactic = int(v[5]) if math.isfinite(v[5]) and abs(v[5]) < 2**31 else 99  # type: ignore[assignment]
    target = int(v[6]) if math.isfinite(v[6]) else -1
    n.target_player_id = pids[target] if 0 <= target < len(pids) else ("nobody" if target >= 0 else "")


@st.composite
def policy_params(draw: st.DrawFn, policy: str) -> dict[str, str]:
    """Any subset of the policy's declared parameters (and the common ones), each anywhere in its
    declared range, its edges included, in any combination (min above max or a band upside down are
    refused by name; everything else must be welcomed and give answers in range)."""
    params: dict[str, str] = {}
    for param in (*POLICY_PARAMS[policy], *COMMON_PARAMS):
        if not draw(st.booleans()):
            continue
        if param.choices:
            params[param.name] = draw(st.sampled_from(param.choices))
        else:
            edge = st.sampled_from((param.lo, param.hi))
            value = draw(st.one_of(edge, st.floats(param.lo, param.hi, allow_nan=False)))
            params[param.name] = repr(value)
    return params


@st.composite
def knob_specs(draw: st.DrawFn) -> tuple[pb.KnobSpec, ...]:
    """Another game's knobs: none to five, each range anywhere within the limits (a point, a sliver, the
    whole span), the default anywhere in it, any rate of change from none to unbounded in practice."""
    out = []
    for i in range(draw(st.integers(0, 5))):
        a, b = sorted(draw(st.floats(-BIG, BIG, width=32)) for _ in range(2))
        lo, hi = (
            float(np.float32(v)) for v in draw(st.sampled_from(((a, b), (a, a), (0.0, 1e-6), (0.0, 1.0), (-BIG, BIG))))
        )
        default = draw(st.floats(lo, hi, width=32)) if lo < hi else lo  # a point (0.0 and -0.0 too)
        rate = draw(st.sampled_from((0.0, 1e-6, 0.1, 1e3, BIG)))
        out.append(
            pb.KnobSpec(name=f"knob{i}", min_value=lo, max_value=hi, default_value=default, max_change_per_second=rate)
        )
    return tuple(out)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[pb.Hello, list[pb.Frame]]:
    policy = draw(st.sampled_from(POLICY_NAMES))  # every director a hello can name, present and future
    h = hello(policy=policy, params=draw(policy_params(policy)))
    knobs = KNOBS if draw(st.booleans()) else draw(knob_specs())  # the simulator's game, or another's
    del h.knobs[:]
    h.knobs.extend(knobs)
    n = draw(st.integers(1, 6))
    out, t = [], 0.0
    for i in range(n):
        # 61 s: past the first minute, where `contextual` makes its choice per player; an hour: a game
        # paused or a device asleep; a step back: refused by name.
        t = max(t + draw(st.sampled_from((0.0, 1 / 60, 0.2, 0.5, 3.0, 61.0, 3600.0, -0.5))), 0.0)
        out.append(draw(frames(i + 1, t, knobs)))
    return h, out


def _check_answer(resp: pb.SessionResponse, knobs: dict[str, pb.KnobSpec]) -> None:
    kind = resp.WhichOneof("kind")
    if kind == "error":
        err = resp.error
        assert err.message and (not err.field or err.field.split("[")[0] in err.message), err
        return
    if kind != "guidance":
        return
    g = resp.guidance
    for k in g.knobs:
        spec = knobs[k.name]
        assert math.isfinite(k.value) and spec.min_value - 1e-6 <= k.value <= spec.max_value + 1e-6, (k, spec)
    for ins in g.insights:
        for v in (ins.p_fail, ins.p_quit, ins.frustration, ins.engagement, ins.skill):
            assert math.isfinite(v) and 0.0 <= v <= 1.0, ins
    for hint in g.npc_hints:
        assert math.isfinite(hint.aggression) and 0.0 <= hint.aggression <= 1.0, hint


def _check_features(frame: FrameInput) -> None:
    """Every feature of an accepted frame is finite and in the range its layout declares."""
    copy = dataclasses.replace(frame, tracks=deepcopy(frame.tracks))
    (f,) = featurize_many([copy])
    for table, values in ((PLAYER_FEATURES, f.players), (NPC_FEATURES, f.npcs.reshape(-1, len(NPC_FEATURES)))):
        for j, col in enumerate(table):
            v = values[:, j]
            assert np.isfinite(v).all() and (v >= col.lo).all() and (v <= col.hi).all(), (col, v)


@pytest.fixture(scope="module")
def engine(bundled: Checkpoint) -> Engine:
    """The bundled model: its outputs on extreme but accepted input are what users get."""
    return Engine(bundled, EngineConfig(device="cpu", max_slots=4096))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    derandomize=EXAMPLES <= 1000,  # CI runs the same examples every time; the long run explores
)
@given(session=sessions())
def test_any_input_gives_finite_answers_or_named_refusals(
    engine: Engine, session: tuple[pb.Hello, list[pb.Frame]]
) -> None:
    h, frame_list = session
    conn = Connection(SessionRegistry(LIMITS), ServerInfo("m", "predictive"))
    knobs = {k.name: k for k in h.knobs}
    try:
        welcomed = conn.receive(from_message(pb.SessionRequest(hello=h)), 0.0)
    except MetabrainError as err:  # parameters each in range, together not (min above max): refused by name
        assert err.fatal and err.field.startswith("hello.policy_params")
        _check_answer(wire_responses.error(err), knobs)
        return
    assert isinstance(welcomed, Welcomed)
    engine.join(welcomed.session)
    accepted = 0
    try:
        for i, f in enumerate(frame_list):
            try:
                event = conn.receive(from_message(pb.SessionRequest(frame=f)), 0.01 * (i + 1))
            except MetabrainError as err:
                assert not err.fatal
                _check_answer(wire_responses.error(err), knobs)
                continue
            assert isinstance(event, FrameAccepted)
            accepted += 1
            _check_features(event.frame)
            answers = engine.step_now([(event.session, event.frame)])
            responses = answers[event.session.session_id]
            assert responses, "an accepted frame got no answer"
            kinds = [r.WhichOneof("kind") for r in responses]
            assert kinds[0] in ("guidance", "superseded"), kinds
            for r in responses:
                _check_answer(r, knobs)
            for track in event.session.tracks.values():
                assert all(math.isfinite(v) for v in track.values), track
    finally:
        engine.leave(welcomed.session.session_id)


def test_the_strategy_makes_both_accepted_and_refused_frames() -> None:
    """The property above is only as good as its inputs: they must reach both outcomes, in both forms."""
    conn_outcomes: dict[tuple[bool, bool], int] = {}

    @settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(f=frames(1, 0.5))
    def one(f: pb.Frame) -> None:
        conn = Connection(SessionRegistry(LIMITS), ServerInfo("m", "predictive"))
        conn.receive(from_message(pb.SessionRequest(hello=hello())), 0.0)
        try:
            ok = isinstance(conn.receive(from_message(pb.SessionRequest(frame=f)), 0.1), FrameAccepted)
        except MetabrainError:
            ok = False
        key = (f.HasField("player_table"), ok)
        conn_outcomes[key] = conn_outcomes.get(key, 0) + 1

    one()
    assert set(conn_outcomes) == {(True, True), (True, False), (False, True), (False, False)}, conn_outcomes


def test_the_strategy_welcomes_every_director_with_parameters() -> None:
    """Every policy a hello can name is welcomed, with parameters, in the sessions the property draws
    (a director the strategy never reached would be untested there); and it can draw a hello that is
    refused (parameters each in range, together not), refused by name."""
    welcomed: set[str] = set()

    def refusal(session: tuple[pb.Hello, list[pb.Frame]]) -> MetabrainError | None:
        conn = Connection(SessionRegistry(LIMITS), ServerInfo("m", "predictive"))
        try:
            conn.receive(from_message(pb.SessionRequest(hello=session[0])), 0.0)
        except MetabrainError as err:
            return err
        return None

    @settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(session=sessions())
    def one(session: tuple[pb.Hello, list[pb.Frame]]) -> None:
        h, _ = session
        if refusal(session) is None and h.policy_params:
            welcomed.add(h.policy or "predictive")

    one()
    # What the 300 did not reach is searched for (find raises when 5,000 draws hold none): which directors
    # and how many refusals the 300 hold varies with the process's state (hypothesis's draws differ after
    # other tests ran: 0 refusals in 300 once in the full suite, 7-25 in other runs).
    search = settings(max_examples=5000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    for name in sorted(set(POLICY_NAMES) - welcomed):
        find(
            sessions(),
            lambda s, n=name: s[0].policy == n and bool(s[0].policy_params) and refusal(s) is None,
            settings=search,
        )
        welcomed.add(name)
    refused = find(sessions(), lambda s: refusal(s) is not None, settings=search)
    err = refusal(refused)
    assert err is not None and err.field.startswith("hello.policy_params["), err
