"""The featurizer run over a whole tick at once must equal running it frame by frame."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sidecar.features import FrameInput, KnobSet, PlayerTrack, featurize, featurize_many
from sidecar.features.featurizer import _nearest
from sidecar.wire.frames import extract
from sidecar.wire.schema import pb
from sim.game import KNOBS, Action, Game


def _frames(step: int, games: list[Game], players: list[int]) -> list[tuple[int, pb.Frame]]:
    """(session, frame) pairs for one tick: varied players, NPC counts, dead NPCs and events."""
    out = []
    for j, g in enumerate(games):
        for r in range(2 if step % len(games) == j else 1):  # now and then two frames of a session in one tick
            fr = g.frame(0.1)
            fr.game_time += 0.05 * r
            base = fr.players[0]
            for i in range(1, players[j]):
                p = fr.players.add()
                p.CopyFrom(base)
                p.player_id = f"{base.player_id}-{i}"
                p.position.x += i
                if i % 2:
                    fr.events.add(type=pb.EVENT_TYPE_DEATH, player_id=p.player_id)
            if j == 1 and step % 2:
                fr.ClearField("npcs")
            if j == 2:
                for n in fr.npcs[: len(fr.npcs) // 2]:
                    n.state = pb.NPC_STATE_DEAD
            if j == 3:  # a crowd: featurized apart from the frames of a few NPCs, in the same tick
                for k in range(40):
                    n = fr.npcs.add(npc_id=1000 + k, health=0.5, state=pb.NPC_STATE_CHASE)
                    n.position.x, n.position.z = float(k % 7) * 3.0, float(k // 7) * 3.0
            out.append((j, fr))
    return out


def test_a_tick_featurized_together_equals_frame_by_frame() -> None:
    rng = random.Random(3)
    games = [Game(s) for s in range(5)]
    players = [1, 1, 3, 1, 8]
    knobs = KnobSet.from_specs(list(KNOBS))
    one: list[dict[str, PlayerTrack]] = [{} for _ in games]
    many: list[dict[str, PlayerTrack]] = [{} for _ in games]
    prev: list[float | None] = [None] * len(games)
    compared = 0
    for step in range(150):
        for g in games:
            n = g.nearest_npc()
            g.step(Action(move_x=rng.uniform(-1, 1), aim_at=n.npc_id if n else -1, shoot=True, hit_chance=0.4))
        if step % 3:
            continue
        batch, expected = [], []
        for j, fr in _frames(step, games, players):
            raw = extract(fr, knobs.names)
            expected.append(featurize(raw, fr.sequence, fr.game_time, one[j], knobs, prev[j], 0.0))
            batch.append(FrameInput(extract(fr, knobs.names), fr.sequence, fr.game_time, prev[j], 0.0, many[j], knobs))
            prev[j] = fr.game_time
        for a, b in zip(expected, featurize_many(batch), strict=True):
            assert (a.sequence, a.player_ids, a.all_npc_ids, a.difficulty) == (
                b.sequence,
                b.player_ids,
                b.all_npc_ids,
                b.difficulty,
            )
            np.testing.assert_array_equal(a.players, b.players)
            np.testing.assert_array_equal(a.npcs, b.npcs)
            np.testing.assert_array_equal(a.npc_mask, b.npc_mask)
            np.testing.assert_array_equal(a.npc_ids, b.npc_ids)
            compared += 1
    assert compared > 100
    for a_tracks, b_tracks in zip(one, many, strict=True):
        assert {k: v.values for k, v in a_tracks.items()} == {k: v.values for k, v in b_tracks.items()}
    # The frames exercised what the tick path has to get right.
    assert any(len(t) == 8 for t in many) and any(t for t in one)


def test_a_featurizer_failure_answers_its_tick_with_errors_and_the_engine_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sidecar.engine.engine as engine_module
    from sidecar.engine.engine import Engine, EngineConfig
    from sidecar.model.checkpoint import load_checkpoint
    from sim.bench.sessions import SimulatedSessions

    engine = Engine(load_checkpoint(None), EngineConfig(device="cpu"))
    sims = SimulatedSessions(engine, 3)

    def broken(frames: list[FrameInput], compiled: bool = True) -> None:
        raise ValueError("injected")

    monkeypatch.setattr(engine_module, "featurize_many", broken)
    out = engine.step_now(sims.receive(1.0))
    assert len(out) == 3
    for responses in out.values():
        (resp,) = responses
        assert resp.error.code == pb.ERROR_CODE_INTERNAL and "injected" in resp.error.message
    monkeypatch.setattr(engine_module, "featurize_many", featurize_many)
    out = engine.step_now(sims.receive(1.1))
    assert len(out) == 3 and all(r[0].WhichOneof("kind") == "guidance" for r in out.values())


@pytest.mark.parametrize("width", [5, 40, 200])  # the argsort path, and the select-then-sort path
def test_each_players_nearest_npcs_come_nearest_first_ties_by_index(width: int) -> None:
    """Which NPCs a player sees, and in which slot, must not depend on how they were selected: the
    first k of a stable sort (equal distances keep the frame's order; absent NPCs, inf, come last)."""
    rng = np.random.default_rng(width)
    for _ in range(50):
        rows, k = int(rng.integers(1, 40)), int(rng.integers(1, min(width, 16) + 1))
        key = rng.integers(0, 4, (rows, width)).astype(float)  # few distinct values: many ties
        key[rng.random((rows, width)) < 0.4] = np.inf
        assert (_nearest(key, k) == np.argsort(key, axis=1, kind="stable")[:, :k]).all()


def test_layout_hash_covers_order_and_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkpoint's layout hash changes when two features swap places or a range changes."""
    import dataclasses

    from sidecar.features import layout

    base = layout.layout_hash()
    cols = list(layout.PLAYER_FEATURES)
    swapped = [cols[1], cols[0], *cols[2:]]
    monkeypatch.setattr(layout, "PLAYER_FEATURES", tuple(swapped))
    assert layout.layout_hash() != base
    monkeypatch.setattr(layout, "PLAYER_FEATURES", (dataclasses.replace(cols[0], hi=2.0), *cols[1:]))
    assert layout.layout_hash() != base
    monkeypatch.setattr(layout, "PLAYER_FEATURES", tuple(cols))
    assert layout.layout_hash() == base


def test_featurizer_assembles_by_name() -> None:
    """A column the featurizer does not make (or one the layout does not have) is an error, not a shift."""
    from sidecar.features.featurizer import _assemble
    from sidecar.features.layout import PLAYER_COLUMNS

    full = {name: np.zeros(2) for name in PLAYER_COLUMNS}
    assert _assemble(full).shape == (2, len(PLAYER_COLUMNS))
    with pytest.raises(AssertionError, match="missing \\['dt'\\]"):
        _assemble({k: v for k, v in full.items() if k != "dt"})
    with pytest.raises(AssertionError, match="extra \\['dtt'\\]"):
        _assemble({**full, "dtt": np.zeros(2)})
