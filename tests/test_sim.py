"""The simulator: determinism, the fast path's equivalence, and a population that behaves sanely."""

from __future__ import annotations

import numpy as np

from sidecar.features import KnobSet, featurize
from sidecar.wire.frames import extract
from sim.game import KNOBS, Action, Game
from sim.offline import play_fixed
from sim.players import ARCHETYPES, LEAVING_S, SimPlayer, sample_traits
from sim.populations import Population, PopulationSpec, load_population

NAMES = [k.name for k in KNOBS]


def _play(seed: int, guidance_seed: int, n: int = 900) -> list[bytes]:
    game = Game(seed)
    player = SimPlayer(sample_traits(ARCHETYPES["casual"], __import__("random").Random(seed)), seed)
    rng = np.random.default_rng(guidance_seed)
    out = []
    for i in range(n):
        game.step(player.act(game))
        if i % 3 == 2:
            out.append(game.frame(0.1).SerializeToString())
            game.apply_knobs({k.name: float(rng.uniform(k.min_value, k.max_value)) for k in KNOBS})
            for npc in game.npcs[:2]:
                game.apply_hint(npc.npc_id, int(rng.integers(1, 7)), float(rng.random()))
        if game.over:
            break
    return out


def test_an_npc_asked_nothing_goes_back_to_its_own_behaviour() -> None:
    """A hint of NPC_TACTIC_UNSPECIFIED undoes an earlier one: the arena's NPC advances again, at its own
    aggression, as one that was never hinted."""
    from sidecar.wire.schema import pb
    from sim.game import Npc

    game = Game(3)
    while not game.npcs:  # the arena spawns its first NPCs within seconds
        game.step(Action())
    npc = game.npcs[0]
    game.apply_hint(npc.npc_id, pb.NPC_TACTIC_RETREAT, 0.1)
    assert (npc.tactic, npc.hinted, npc.aggression) == (pb.NPC_TACTIC_RETREAT, True, 0.1)
    game.apply_hint(npc.npc_id, pb.NPC_TACTIC_UNSPECIFIED, 0.9)
    assert (npc.tactic, npc.hinted, npc.aggression) == (Npc.tactic, False, Npc.aggression)


def test_same_seed_and_guidance_give_identical_frames() -> None:
    a, b = _play(7, 1), _play(7, 1)
    assert a == b and len(a) > 10
    assert _play(7, 2) != a  # different guidance changes the game
    assert _play(8, 1) != a


def test_fast_path_features_equal_protobuf_path() -> None:
    g1, g2 = Game(3), Game(3)
    kn = KnobSet.from_specs(list(KNOBS))
    t1: dict = {}
    t2: dict = {}
    prev = None
    for i in range(600):
        for g in (g1, g2):
            n = g.nearest_npc()
            g.step(
                Action(
                    move_x=0.5, move_z=-0.2, aim_at=n.npc_id if n else -1, shoot=True, hit_chance=0.4, dodge=i % 40 == 0
                )
            )
        if i % 6 == 5:
            f = g1.frame(0.2)
            fa = featurize(extract(f, kn.names), f.sequence, f.game_time, t1, kn, prev, 0.0)
            seq, gt, raw = g2.raw_frame(0.2, kn.names)
            fb = featurize(raw, seq, gt, t2, kn, prev, 0.0)
            prev = gt
            assert (seq, gt) == (f.sequence, f.game_time)
            np.testing.assert_allclose(fa.players, fb.players, atol=1e-5)
            np.testing.assert_allclose(fa.npcs, fb.npcs, atol=1e-5)
            assert (fa.npc_ids == fb.npc_ids).all() and (fa.npc_mask == fb.npc_mask).all()


def _mean_length(arch: str, level: float, n: int = 24, max_s: float = 900.0) -> tuple[float, float]:
    rng = __import__("random").Random(11)
    lengths, kd = [], []
    for i in range(n):
        player = SimPlayer(sample_traits(ARCHETYPES[arch], rng), 1000 + i)
        t, _, g = play_fixed(player, 500 + i, level, max_s)
        lengths.append(t)
        kd.append(g.stats.kills / max(g.stats.kills + g.stats.deaths, 1))
    return float(np.mean(lengths)), float(np.mean(kd))


def test_population_behaves_sanely() -> None:
    # Higher skill wins more at the same difficulty.
    _, novice_kd = _mean_length("novice", 0.6, n=12, max_s=240)
    _, expert_kd = _mean_length("expert", 0.6, n=12, max_s=240)
    assert expert_kd > novice_kd + 0.05
    # At a high difficulty novices quit sooner than at a low one.
    novice_hard, _ = _mean_length("novice", 0.9)
    novice_easy, _ = _mean_length("novice", 0.15)
    assert novice_hard < 0.5 * novice_easy
    # At a very low difficulty experts get bored and quit sooner than at a matched one.
    expert_bored, _ = _mean_length("expert", 0.05)
    expert_matched, _ = _mean_length("expert", 0.8)
    assert expert_bored < 0.7 * expert_matched


def test_a_player_who_decides_to_leave_stops_fighting_before_quitting() -> None:
    # The tell a model can learn: between deciding and quitting the player lingers without fighting.
    lingered = []
    for seed in range(8):
        game = Game(seed)
        player = SimPlayer(sample_traits(ARCHETYPES["novice"], __import__("random").Random(seed)), seed)
        for _ in range(300):  # let the fight start
            game.step(player.act(game))
        player.frustration = 3.0 * player.traits.frustration_tolerance  # far past tolerance: leaves soon
        shots_at, decided_at = game.stats.shots, None
        while not game.over and game.t < 200.0:
            game.step(player.act(game))
            if decided_at is None and player.leaving:
                decided_at, shots_at = game.t, game.stats.shots
        assert game.over and decided_at is not None, f"seed {seed}: never quit"
        assert game.stats.shots == shots_at, f"seed {seed}: kept shooting after deciding to leave"
        lingered.append(game.t - decided_at)
    assert min(lingered) >= LEAVING_S[0] - 0.1 and max(lingered) <= LEAVING_S[1] + 0.1, lingered


def test_population_specs_and_factories(tmp_path: object) -> None:
    from pathlib import Path

    pop = Population(PopulationSpec({"novice": 1.0, "expert": 1.0}, seed=3))
    players = pop.players(50)
    assert {p.traits.archetype for p in players} == {"novice", "expert"}
    assert [p.traits for p in pop.players(5)] == [
        p.traits for p in Population(PopulationSpec({"novice": 1.0, "expert": 1.0}, seed=3)).players(5)
    ]
    file = Path(str(tmp_path)) / "mine.py"
    file.write_text(
        "from sim.players import SimPlayer, PlayerTraits\n"
        "def Factory(i, seed):\n"
        "    return SimPlayer(PlayerTraits(0.5, 0.3, 0.1, 0.0, 3.0, 2.0, 'mine'), seed)\n"
    )
    loaded = load_population(f"{file}:Factory").players(3)
    assert [p.traits.archetype for p in loaded] == ["mine"] * 3
    try:
        load_population("wizard=1")
    except ValueError as e:
        assert "wizard" in str(e)
    else:
        raise AssertionError("unknown archetype accepted")


def test_session_table_shows_the_difficulty_played_before_any_prediction() -> None:
    import math

    from sim.client import LiveSummary
    from sim.report import session_table

    r = LiveSummary(0, "core", 0.5, 10.0, False, 0, 0)
    r.curve = [(0.0, 0.5, math.nan), (1.0, 0.5, math.nan)]  # no guidance had come yet
    row = session_table([r]).splitlines()[1]
    assert "0.50 [0.50-0.50]" in row and " - " in row
    r.curve.append((2.0, 0.4, 0.1))
    row = session_table([r]).splitlines()[1]
    assert "0.47 [0.40-0.50]" in row and "100%" in row
