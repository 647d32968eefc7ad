"""The compiled featurizer of one frame (sidecar/features/_frame_kernel.c) against the array program it
stands in for on a served tick's small rounds.

Its contract: for a frame featurized alone, the same bits (player rows, NPC view, masks, ids, every
running aggregate after it), frame after frame of a session, for anything validation accepts -- far,
tied and dead NPCs, crowds past the model's 16, targets, every event type, several players -- and
declining, with nothing changed, whatever it does not expect (the array program then runs).
"""

from __future__ import annotations

import asyncio
import copy
import random
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from sidecar.columns import EventType, NpcState
from sidecar.features import FrameInput, KnobSet, RawFrame, featurize_many
from sidecar.features import featurizer as fz
from sidecar.features.layout import RAW_NPC_FIELDS, RAW_PLAYER_FIELDS
from sidecar.features.tracks import PlayerTrack
from sidecar.wire.frames import extract
from sidecar.wire.schema import pb
from sim.game import KNOBS
from tests.ci import IN_CI
from tests.helpers import game_frames

if not fz.compiled_featurizer_available():
    if IN_CI:
        pytest.fail("the compiled featurizer is not built (pip install -e . builds it with gcc)", pytrace=False)
    pytest.skip("the compiled featurizer is not built here (no C compiler)", allow_module_level=True)

NAMES = [k.name for k in KNOBS]
RN = {name: i for i, name in enumerate(RAW_NPC_FIELDS)}
RPF = {name: i for i, name in enumerate(RAW_PLAYER_FIELDS)}
KNOB_SET = KnobSet.from_specs(list(KNOBS))


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _scrambled(rng: random.Random, raw: RawFrame) -> RawFrame:
    """A simulator frame made hostile within what validation accepts: 1-4 players, 0-300 NPCs (dead,
    tied in distance, far, in crowds), targets and events of every type."""
    n_players = rng.choice([1, 1, 1, 2, 4])
    players = np.repeat(raw.players[:1], n_players, axis=0).copy()
    for p in range(n_players):
        players[p, RPF["position.x"]] += rng.uniform(-30, 30)
        players[p, RPF["position.z"]] += rng.choice([0.0, rng.uniform(-1e4, 1e4)])
        players[p, RPF["velocity.x"]] = rng.choice([0.0, -0.0, rng.uniform(-200, 200)])
        players[p, RPF["input.shots_fired"]] = rng.choice([0.0, 3.0, 1e6])
        players[p, RPF["input.shots_hit"]] = rng.choice([0.0, 2.0, 50.0])
        players[p, RPF["max_health"]] = rng.choice([100.0, 0.0, 1e-9])
        players[p, RPF["biometrics.heart_rate_bpm"]] = rng.choice([0.0, 72.0, 1e5])
        players[p, RPF["input.move_x"]] = rng.uniform(-1, 1)
    n_npcs = rng.choice([0, 1, 3, 16, 17, 40, 300])
    npcs = np.zeros((n_npcs, len(RAW_NPC_FIELDS)))
    if n_npcs:
        base = raw.npcs[0] if len(raw.npcs) else npcs[0]
        npcs[:] = base
        grid = rng.choice([1.0, 7.0])  # a coarse grid: many NPCs at the same distance
        npcs[:, RN["position.x"]] = [round(rng.uniform(-60, 60) / grid) * grid for _ in range(n_npcs)]
        npcs[:, RN["position.z"]] = [round(rng.uniform(-60, 60) / grid) * grid for _ in range(n_npcs)]
        states = [0, 1, NpcState.ATTACK, NpcState.DEAD, NpcState.DEAD]
        npcs[:, RN["state"]] = [rng.choice(states) for _ in range(n_npcs)]
        npcs[:, RN["tactic"]] = [rng.randrange(7) for _ in range(n_npcs)]
        npcs[:, RN["health"]] = [rng.random() for _ in range(n_npcs)]
        npcs[:, RN["target"]] = [rng.randrange(-1, n_players) for _ in range(n_npcs)]
        npcs[:, RN["npc_id"]] = rng.sample(range(1, 10_000), n_npcs)
    events = [
        [float(rng.choice(list(EventType))), float(rng.randrange(-1, n_players)), rng.uniform(0, 80), 0.0]
        for _ in range(rng.choice([0, 0, 1, 5, 20]))
    ]
    if rng.random() < 0.3:  # a burst of hits on one player: sums of several amounts in one frame
        who = float(rng.randrange(n_players))
        events += [[float(EventType.DAMAGE_TAKEN), who, rng.uniform(0, 30), 0.0] for _ in range(6)]
    return replace(
        raw,
        players=players,
        npcs=npcs,
        events=np.array(events).reshape(-1, 4),
        player_ids=[f"p{i}" for i in range(n_players)],
    )


def _session(seed: int, frames: int) -> list[FrameInput]:
    """A session's frames in order (its tracks dict shared, as a session's are)."""
    rng = random.Random(seed)
    tracks: dict[str, PlayerTrack] = {}
    t, prev, out = 5.0, None, []
    for raw in (extract(f, NAMES) for f in game_frames(frames, seed=seed)):
        t += rng.choice([1 / 60, 0.2, 0.2, 0.0, 3.0])
        out.append(FrameInput(_scrambled(rng, raw), len(out), t, prev, 0.0, tracks, KNOB_SET))
        prev = t
    return out


def _same(a: fz.FrameFeatures, b: fz.FrameFeatures) -> None:
    assert _bits(a.players) == _bits(b.players)
    assert _bits(a.npcs) == _bits(b.npcs)
    assert _bits(a.npc_mask) == _bits(b.npc_mask)
    assert _bits(a.npc_ids) == _bits(b.npc_ids)
    assert a.all_npc_ids == b.all_npc_ids
    assert (a.player_ids, a.sequence, a.game_time) == (b.player_ids, b.sequence, b.game_time)
    assert a.difficulty == b.difficulty


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_frame_in_c_gives_the_array_programs_bits(seed: int) -> None:
    """A session's frames featurized one at a time both ways, each way with its own copy of the tracks:
    every output and every running aggregate the same bits, frame after frame."""
    frames = _session(seed, 150)
    other = copy.deepcopy(frames)  # the same frames, their own tracks
    compiled = 0
    for f, g in zip(frames, other, strict=True):
        (a,) = fz._featurize_compiled([f], fz._KERNEL)
        (b,) = fz._featurize_arrays([g])
        _same(a, b)
        assert {k: v.values for k, v in f.tracks.items()} == {k: v.values for k, v in g.tracks.items()}
        compiled += 1
    assert compiled == 150


def test_a_served_round_of_sessions_is_featurized_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """featurize_many over a tick of 6 sessions takes the C path (none declined; not when told
    compiled=False, as `serve --pure-python` does) and agrees with the array program frame by frame, to
    float32 rounding (the array program sums a round's NPC distances padded to its widest frame, which
    can move the last bit)."""
    sessions = [_session(seed, 40) for seed in range(10, 16)]
    other = copy.deepcopy(sessions)
    calls = []
    kernel = fz._KERNEL

    assert kernel is not None

    def counting(*args: object) -> object:
        got = kernel.featurize_frame(*args)
        calls.append(got is not None)
        return got

    spy = SimpleNamespace(featurize_frame=counting)
    for i in range(40):
        tick = [s[i] for s in sessions]
        a = fz._featurize_compiled(tick, spy)
        b = fz._featurize_arrays([s[i] for s in other])
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x.players, y.players, rtol=1e-6, atol=1e-7)
            np.testing.assert_array_equal(x.npcs, y.npcs)
            np.testing.assert_array_equal(x.npc_ids, y.npc_ids)
    assert calls and all(calls)
    # featurize_many routes a round to C.
    routed = []
    original = fz._featurize_compiled
    monkeypatch.setattr(fz, "_featurize_compiled", lambda frames, k: routed.append(len(frames)) or original(frames, k))
    featurize_many([_session(99, 1)[0], _session(98, 1)[0]])
    featurize_many([_session(97, 1)[0]], compiled=False)  # `serve --pure-python`: the arrays only
    assert routed == [2]  # one round, whatever the frames' NPC counts


def test_what_it_does_not_expect_goes_to_the_array_program_unchanged() -> None:
    """A non-finite number, an event naming a player the frame lacks, a non-contiguous table, a track
    that is not floats: declined with the tracks untouched; in a round with frames it takes, those
    frames still come out right and in order."""
    base = _session(7, 3)
    bad_players = base[0].raw.players.copy()
    bad_players[0, RPF["velocity.x"]] = np.nan
    cases = [
        replace(base[0].raw, players=bad_players),
        replace(base[0].raw, events=np.array([[float(EventType.KILL), 9.0, 1.0, 0.0]])),
        replace(
            base[0].raw,
            players=np.asfortranarray(np.repeat(base[0].raw.players[:1], 3, axis=0)),
            player_ids=["a", "b", "c"],
        ),
        replace(base[0].raw, npcs=base[0].raw.npcs.astype(np.float32)),
    ]
    for raw in cases:
        tracks = {pid: PlayerTrack.new(1.0) for pid in raw.player_ids}
        kept = copy.deepcopy(tracks)
        f = FrameInput(raw, 0, 2.0, 1.0, 0.0, tracks, KNOB_SET)
        g = FrameInput(raw, 0, 2.0, 1.0, 0.0, copy.deepcopy(tracks), KNOB_SET)
        n = len(raw.player_ids)
        out = _outputs(n)
        values = [t.values for t in tracks.values()]
        assert _call(raw, values, out) is None
        assert {k: v.values for k, v in tracks.items()} == {k: v.values for k, v in kept.items()}
        assert all(not a.any() for a in out)
        good = copy.deepcopy(base[1])
        if len(raw.events) and raw.events[0, 1] >= n:  # validation refuses it first; the arrays too
            with pytest.raises(IndexError):
                fz._featurize_compiled([good, f], fz._KERNEL)
            continue
        with np.errstate(invalid="ignore"):
            mixed = fz._featurize_compiled([good, f], fz._KERNEL)
            alone = fz._featurize_arrays([g])
        assert mixed[0].sequence == good.sequence and mixed[1].sequence == f.sequence
        np.testing.assert_array_equal(mixed[1].players, alone[0].players)
        assert {k: v.values for k, v in f.tracks.items()} == {k: v.values for k, v in g.tracks.items()}
    ints = {"p0": PlayerTrack([0, 0, 0, 0, 0, 0, -1, 1])}  # ints, not floats: declined
    raw = replace(base[0].raw, player_ids=["p0"], players=base[0].raw.players[:1])
    assert _call(raw, [ints["p0"].values], _outputs(1)) is None


def _outputs(n: int) -> list[np.ndarray]:
    return [
        np.zeros((n, 35), np.float32),
        np.zeros((n, 16, 19), np.float32),
        np.zeros((n, 16), bool),
        np.zeros((n, 16), np.int64),
    ]


def _call(raw: RawFrame, tracks: list[list[float]], out: list[np.ndarray]) -> object:
    """The kernel on one frame at row 0 (dt 1 s, difficulty 0.5, game time 2 s)."""
    assert fz._KERNEL is not None
    return fz._KERNEL.featurize_frame(
        raw.players, raw.npcs, raw.events, tracks, *out, 0, 1.0, 0.5, 0.0, 2.0, 0.9, 0.9, 0.9
    )


def test_a_served_60hz_game_gets_the_same_answers_with_the_frame_featurized_in_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A simulated game at 60 Hz in the table form, through the served path (reader, model clock, tick),
    on two sidecar streams, one featurizing in C and one with the array program: every answer the same
    bytes (predictions, knobs, hints, notes; its time in the sidecar aside), and the C declined none of
    the frames the model stepped (the served tables, the clock's merged frames: contiguous doubles)."""
    from tests.test_between_lane import _comparable, _frames, _request, _Stream

    real = fz._KERNEL
    assert real is not None
    taken: list[bool] = []

    def counting(*args: object) -> object:
        got = real.featurize_frame(*args)
        taken.append(got is not None)
        return got

    spy = SimpleNamespace(featurize_frame=counting)
    frames = _frames(21, 480)
    for i, f in enumerate(frames):
        f.sequence = i + 1

    async def both() -> int:
        c, arrays = _Stream(True), _Stream(True)
        await c.open()
        await arrays.open()
        insights = 0
        for f in frames:
            data = _request(f)
            monkeypatch.setattr(fz, "_KERNEL", spy)
            a = await c.send(data)
            monkeypatch.setattr(fz, "_KERNEL", None)
            b = await arrays.send(data)
            assert [_comparable(x) for x in a] == [_comparable(x) for x in b], f"frame {f.sequence}"
            insights += sum(len(pb.SessionResponse.FromString(x).guidance.insights) > 0 for x in a)
        return insights

    insights = asyncio.run(both())
    assert len(taken) >= 30 and all(taken)  # the model stepped at 5 Hz: ~40 ticks, each featurized in C
    assert insights >= 30  # and the answers compared carry the model's predictions


def test_a_layout_the_kernel_does_not_write_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel is used only while the columns, raw fields, tracks and codes it was written for are the
    layout's: one column renamed, or an event code moved, and every round takes the array program."""
    real = fz._frame_kernel
    assert fz._kernel_if_layout_matches() is real
    renamed = SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("_")})
    renamed.PLAYER_COLUMNS = (*real.PLAYER_COLUMNS[:-1], "session_hours")
    monkeypatch.setattr(fz, "_frame_kernel", renamed)
    assert fz._kernel_if_layout_matches() is None
    moved = SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("_")})
    moved.CODES = {**real.CODES, "DEATH": 5}
    monkeypatch.setattr(fz, "_frame_kernel", moved)
    assert fz._kernel_if_layout_matches() is None
