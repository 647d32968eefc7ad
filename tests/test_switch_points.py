"""Switch points of randomised sessions, and a choice of level by state scored on them (issue #20)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sidecar.features import MAX_MODEL_NPCS, NPC_DIM, PLAYER_DIM, P
from sidecar.model.checkpoint import Checkpoint
from sidecar.training.dataset import SessionExamples
from sidecar.training.switch_points import (
    LEVELS,
    SwitchPoints,
    _main,
    choose,
    compare_choices,
    fit_outcomes,
    switch_points,
    switch_steps,
)


def _eased(levels: list[tuple[int, float]], steps: int, rate: float = 0.1) -> np.ndarray:
    """A level held from each (step, level) on, the knobs easing toward it at `rate` a step."""
    out = np.zeros(steps)
    now = levels[0][1]
    targets = dict(levels)
    want = now
    for t in range(steps):
        want = targets.get(t, want)
        now = now + float(np.clip(want - now, -rate, rate))
        out[t] = now
    return out


def test_each_draw_is_found_where_the_knobs_start_to_move() -> None:
    level = _eased([(0, 0.5), (40, 0.9), (80, 0.2), (118, 0.6)], 125)
    # The first step, then the first step that differs from the one before it; the draw at 118 is too
    # near the end for its level to settle (10 steps).
    assert switch_steps(level, settle=10) == [0, 40, 80]
    assert switch_steps(np.full(50, 0.3), settle=10) == [0]


def _session(level: np.ndarray, randomised: bool, rng: np.random.Generator) -> SessionExamples:
    n = len(level)
    players = rng.normal(0.0, 0.3, (n, PLAYER_DIM)).astype(np.float32)
    players[:, P["difficulty"]] = level
    zeros = np.zeros(n, np.float32)
    return SessionExamples(
        name="s",
        players=players,
        npcs=np.zeros((n, MAX_MODEL_NPCS, NPC_DIM), np.float16),
        npc_mask=np.zeros((n, MAX_MODEL_NPCS), bool),
        fail=zeros,
        quit=zeros,
        level_fail=level.astype(np.float32),
        level_quit=level.astype(np.float32),
        frustration=zeros,
        engagement=zeros,
        skill=zeros,
        npc_hit=np.zeros((n, MAX_MODEL_NPCS), np.float32),
        npc_tactic=np.full((n, MAX_MODEL_NPCS), -1, np.int8),
        played=np.linspace(1.0, 0.0, n).astype(np.float32),
        played_known=np.ones(n, bool),
        level_value=level.astype(np.float32),
        value_mask=np.full(n, randomised),
    )


def test_a_point_at_each_draw_of_a_randomised_session_and_none_elsewhere(tiny_checkpoint: Checkpoint) -> None:
    rng = np.random.default_rng(0)
    drawn = _session(_eased([(0, 0.3), (200, 0.8)], 400), True, rng)
    reactive = _session(_eased([(0, 0.3), (200, 0.8)], 400), False, rng)
    pts = switch_points(tiny_checkpoint.model, [reactive, drawn], model_hz=5.0, settle_s=10.0)
    assert len(pts) == 2 and (pts.session == 1).all()  # the reactive director's session teaches nothing
    assert pts.time_s.tolist() == [0.0, 40.0]
    np.testing.assert_allclose(pts.level, [0.3, 0.8], atol=1e-6)  # where the knobs settled
    np.testing.assert_allclose(pts.remaining_s, [80.0, 40.0])
    # The first draw knows nothing of the player; the second reads the model on the step before it.
    assert not pts.state[0].any() and pts.state[1].any()
    np.testing.assert_allclose(pts.outputs[1, -1], drawn.players[199, P["difficulty"]], atol=1e-6)


def _synthetic(n: int, effect: bool, seed: int) -> SwitchPoints:
    """Two kinds of player, told apart along one direction of the state: one plays longest at 0.2, the
    other at 0.8 (or, without an effect, the level changes nothing). Levels drawn uniformly."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    sign = np.where(kind == 1, 1.0, -1.0)
    state = (np.outer(sign, np.full(8, 0.7)) + rng.normal(0.0, 0.2, (n, 8))).astype(np.float32)
    level = rng.uniform(0.0, 1.0, n)
    best = np.where(kind == 1, 0.8, 0.2)
    mean = 0.6 - (1.2 * (level - best) ** 2 if effect else 0.0)
    played = np.clip(mean + rng.normal(0.0, 0.1, n), 0.0, 1.0)
    outputs = np.zeros((n, 6), np.float32)
    outputs[:, 0] = sign
    return SwitchPoints(state, outputs, level, played * 900.0, played, np.arange(n) // 2, np.full(n, 60.0))


def test_a_choice_by_state_finds_what_each_kind_of_player_wants() -> None:
    train, test = _synthetic(3000, True, 1), _synthetic(3000, True, 2)
    fit = fit_outcomes(train, basis="state")
    chosen = choose(fit, test, designer=0.5, confidence=2.0)
    high = test.state[:, 0] > 0
    assert abs(np.median(chosen[high]) - 0.8) <= 0.1 and abs(np.median(chosen[~high]) - 0.2) <= 0.1
    r = compare_choices(train, test, designer=0.5)
    by_state, fixed = r["by state, lower bound 2 sd"], r["best fixed level on train"]
    assert by_state["low"] > 1.05  # beats the designer's level beyond chance
    assert by_state["mean"] > fixed["mean"] * 1.05  # and any one level for everyone


def test_where_the_level_changes_nothing_the_bounded_choice_stays_at_the_designers_level() -> None:
    train, test = _synthetic(3000, False, 3), _synthetic(3000, False, 4)
    fit = fit_outcomes(train, basis="state")
    chosen = choose(fit, test, designer=0.5, confidence=2.0)
    assert np.mean(chosen != 0.5) < 0.25
    r = compare_choices(train, test, designer=0.5)
    assert r["by state, lower bound 2 sd"]["low"] < 1.0 < r["by state, lower bound 2 sd"]["high"] + 1e-9
    assert set(np.unique(chosen)) <= set(LEVELS.tolist())


def test_a_log_whose_levels_were_not_drawn_uniformly_is_refused() -> None:
    """The score weighs levels as uniform draws; a log of small offsets around one level would be misread."""
    train, test = _synthetic(400, True, 5), _synthetic(400, True, 6)
    test.level = np.clip(0.5 + np.random.default_rng(0).choice([-0.15, -0.075, 0.0, 0.075, 0.15], len(test)), 0, 1)
    with pytest.raises(ValueError, match="drawn uniformly"):
        compare_choices(train, test)


def test_the_command_scores_two_folds_of_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "points.npz")
    _synthetic(1200, True, 7).save(path)
    _main(["compare", "--train", path, "--test", path])
    folds = json.loads(capsys.readouterr().out)
    assert len(folds) == 2
    for fold in folds:  # each half scored by a fit on the other
        assert fold["_points"]["test"] + fold["_points"]["train"] == 1200
        assert fold["by state, lower bound 2 sd"]["vs_designer"] > 1.05
