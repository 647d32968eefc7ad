"""The learned director on scripted value predictions, and the logged exploration policy."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from sidecar.features import PLAYER_DIM, P
from sidecar.policies.difficulty import Observation
from sidecar.policies.learned import OFFSET_PROBS, OFFSETS, LearnedPolicy, PerturbedPolicy

LEVELS = np.linspace(0, 1, 11, dtype=np.float32)
K = len(LEVELS) + 1


def obs(value: np.ndarray, t: float = 1.0, deaths: float = 0.0, p_fail: float | np.ndarray = 0.05) -> Observation:
    """One player; value: [K-1, M] share of the 300 s horizon played at each candidate level per head."""
    x = np.zeros((1, PLAYER_DIM), np.float32)
    x[0, P["deaths"]] = deaths
    pf = np.full((1, K), p_fail) if np.isscalar(p_fail) else np.asarray(p_fail, np.float64)[None, :]
    v = np.concatenate([value, value[5:6]], axis=0)[None]  # the current level's column: whatever
    return Observation(t, 0.2, 0.5, x, pf, np.zeros((1, K)), np.append(LEVELS, 0.5), v, 300.0, 10.0)


def _peaked(at: float, height: float, members: int = 5, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Value heads that agree (noise 0) the share played peaks at level `at`."""
    rng = np.random.default_rng(seed)
    base = 0.5 + height * np.exp(-((LEVELS - at) ** 2) / 0.02)
    return np.stack([base + rng.normal(0, noise, len(LEVELS)) for _ in range(members)], axis=1)


def _settle(policy: LearnedPolicy, o: Observation, steps: int = 200) -> float:
    level = 0.0
    for _ in range(steps):
        level = policy.target(o)
    return level


def test_moves_to_where_the_heads_agree_it_helps() -> None:
    p = LearnedPolicy({"smoothing_s": 0.0}, 0.5)
    level = _settle(p, obs(_peaked(0.2, 0.3)))
    assert level == pytest.approx(0.2)
    assert p.note is not None and p.note.managing == "frustration" and p.note.confidence == 1.0
    assert p.note.expected_gain_s > 30 and p.note.designer_level == 0.5
    q = LearnedPolicy({"smoothing_s": 0.0}, 0.5)
    assert _settle(q, obs(_peaked(0.8, 0.3))) == pytest.approx(0.8)
    assert q.note is not None and q.note.managing == "boredom"


def test_stays_at_the_designers_level_when_the_heads_disagree() -> None:
    """The same mean gain, but heads that disagree widely: not confident, no move."""
    noisy = _peaked(0.2, 0.05, noise=0.08, seed=3)
    p = LearnedPolicy({"smoothing_s": 0.0, "confidence": 1.0}, 0.5)
    assert _settle(p, obs(noisy)) == pytest.approx(0.5)
    assert p.note is not None and p.note.managing == "none"
    bold = LearnedPolicy({"smoothing_s": 0.0, "confidence": 0.0, "min_gain_s": 0.0}, 0.5)
    assert _settle(bold, obs(noisy)) != pytest.approx(0.5)  # the point estimate alone would have moved


def test_never_farther_than_max_offset_from_the_designers_level() -> None:
    easier_is_better = np.repeat((0.8 - 0.4 * LEVELS)[:, None], 5, axis=1)
    p = LearnedPolicy({"smoothing_s": 0.0, "max_offset": 0.2}, 0.5)
    assert _settle(p, obs(easier_is_better)) == pytest.approx(0.3)


def test_a_model_without_value_heads_keeps_the_designers_level() -> None:
    p = LearnedPolicy({"smoothing_s": 0.0}, 0.45)
    o = obs(_peaked(0.2, 0.3))
    o.value = np.zeros((1, K, 0))
    assert _settle(p, o) == pytest.approx(0.45)


def test_a_player_who_dies_more_than_predicted_is_read_as_weaker() -> None:
    """Deaths far above what the model expected shift the level axis toward easier: the curves are read
    where this player is, and the chosen level moves down accordingly."""
    p_fail = np.clip(0.02 + 0.3 * np.append(LEVELS, 0.5), 0, 1)  # the model's p_fail rises with the level
    # At the current level (0.5) p_fail = 0.17: a death every ~54 s expected.
    flat_peak = _peaked(0.5, 0.2)
    as_predicted = LearnedPolicy({"smoothing_s": 0.0, "calibrate": 1.0}, 0.5)
    dying = LearnedPolicy({"smoothing_s": 0.0, "calibrate": 1.0}, 0.5)
    for i in range(1200):  # four minutes of 5 Hz steps
        as_predicted.target(obs(flat_peak, t=i * 0.2, p_fail=p_fail, deaths=1.0 if i % 270 == 0 else 0.0))
        dying.target(obs(flat_peak, t=i * 0.2, p_fail=p_fail, deaths=1.0 if i % 25 == 0 else 0.0))
    assert as_predicted.note is not None and dying.note is not None
    assert abs(as_predicted.note.calibration_shift) < 0.05
    assert dying.note.calibration_shift > 0.1
    assert dying.level < as_predicted.level - 0.05


def test_perturbed_logs_each_offset_with_its_probability() -> None:
    p = PerturbedPolicy({"scale": 0.1, "period_s": 30.0}, 0.5, seed=7)
    seen: collections.Counter[float] = collections.Counter()
    t = 0.0
    for _ in range(4000):
        level = p.target(obs(_peaked(0.5, 0.1), t=t))
        assert p.note is not None
        i = OFFSETS.index(round(p.note.exploration_offset / 0.1))
        assert p.note.propensity == OFFSET_PROBS[i] and level == pytest.approx(0.5 + p.note.exploration_offset)
        seen[p.note.exploration_offset] += 1
        t += 30.0
    share = [seen[o * 0.1] / 4000 for o in OFFSETS]
    assert share == pytest.approx(list(OFFSET_PROBS), abs=0.03)


def test_value_surface_recovers_the_level_each_skill_plays_longest_at() -> None:
    """Synthetic sessions where a player of skill s plays longest at level 0.2 + 0.6 s: the fitted surface's
    best level per skill row is that one, and replicates other than the first differ (the bootstrap)."""
    from sidecar.training.value_fit import ValuePoints, fit_surface

    rng = np.random.default_rng(0)
    n = 6000
    skill, level = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    played = np.clip(0.8 - 2.0 * (level - (0.2 + 0.6 * skill)) ** 2 + rng.normal(0, 0.1, n), 0, 1)
    surface, support = fit_surface(ValuePoints(skill, level, played, np.arange(n) // 10), grid=21, members=5)
    axis = np.linspace(0, 1, 21)
    for s in (0.2, 0.5, 0.8):
        row = surface[0, round(s * 20)]
        assert abs(axis[row.argmax()] - (0.2 + 0.6 * s)) <= 0.1, (s, row.round(2))
    assert not np.allclose(surface[0], surface[1])
    assert support.min() > 1.0


def test_value_surface_without_data_at_a_level_says_no_effect() -> None:
    """Where no session was played at a level, the surface there is the skill's mean: no gain to chase."""
    from sidecar.training.value_fit import ValuePoints, fit_surface

    rng = np.random.default_rng(1)
    n = 3000
    skill, level = rng.uniform(0, 1, n), rng.uniform(0.4, 0.6, n)  # only ever played near the middle
    played = rng.uniform(0.3, 0.7, n)
    surface, _ = fit_surface(ValuePoints(skill, level, played, np.arange(n)), grid=21, members=1)
    row = surface[0, 10]
    assert abs(row[0] - row[10]) < 0.02 and abs(row[20] - row[10]) < 0.02


def test_the_model_reads_its_value_surface_bilinearly() -> None:
    import torch

    from sidecar.model.player_model import ModelConfig, PlayerModel

    model = PlayerModel(ModelConfig(hidden=8, value_members=2, value_grid=5))
    axis = torch.linspace(0, 1, 5)
    model.value_surface.copy_(torch.stack([axis[:, None] + 2 * axis[None, :], torch.zeros(5, 5)]))  # s + 2 l
    skill = torch.tensor([[0.1, 0.6]])  # [B=1, T=2]
    levels = torch.tensor([[[0.0, 0.35], [1.0, 0.5]]])  # [1, 2, K=2]
    v = model._value(skill, levels)  # [1, 2, 2, M=2]
    want = skill.unsqueeze(-1) + 2 * levels
    assert torch.allclose(v[..., 0], want, atol=1e-6) and torch.all(v[..., 1] == 0)
