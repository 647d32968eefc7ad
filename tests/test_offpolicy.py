"""Off-policy evaluation (`evaluate-directors --from-recordings`): unbiased estimates with honest intervals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sidecar.model.checkpoint import Checkpoint
from sidecar.training.offpolicy import LoggedSession, estimate, read_logged
from sim.offline import OfflineConfig, run_offline
from sim.policy_labels import parse_mixture
from sim.populations import load_population


def _logged(n: int, seed: int, players: int | None = None) -> tuple[list[LoggedSession], dict[str, float]]:
    """A mixture logged with unequal propensities; session length depends on the director and on a
    covariate the outcome model sees (skill), so DR has something to explain."""
    rng = np.random.default_rng(seed)
    arms, probs, effect = ["a", "b", "c"], [0.6, 0.3, 0.1], {"a": 300.0, "b": 360.0, "c": 420.0}
    taste = rng.normal(0, 100, players or 1)  # a player's own liking for the game, the same in each session
    out = []
    for i in range(n):
        k = rng.choice(3, p=probs)
        skill = rng.random()
        y = effect[arms[k]] + 200.0 * (skill - 0.5) + rng.normal(0, 80) + (taste[i % players] if players else 0.0)
        player = f"ph_{i % players}" if players else ""
        cov = np.array([1.0, skill, 0.5, 0.1])
        out.append(LoggedSession(f"s{i}", player, arms[k], probs[k], max(y, 1.0), True, cov))
    return out, effect


def test_estimates_are_unbiased_and_their_intervals_cover_the_truth() -> None:
    """Ten logged mixtures of 3,000 sessions: each director's DR estimate within 5% of the truth, and
    its 95% interval covering the truth in most of the 30 (percentile bootstraps run a little narrow)."""
    covered, errors = 0, []
    for seed in range(10):
        sessions, truth = _logged(3000, seed)
        for label in truth:
            r = estimate(sessions, label, boot=200, seed=seed)
            lo, hi = r["dr_ci95"]
            assert hi - lo > 1.0, "a bootstrap interval of zero width means the resampling units are wrong"
            assert hi - lo < 0.15 * truth[label]
            covered += lo <= truth[label] <= hi
            errors.append(r["dr"] / truth[label] - 1.0)
    assert covered >= 26
    assert max(abs(e) for e in errors) < 0.05
    assert abs(float(np.mean(errors))) < 0.01


def test_sessions_of_one_player_are_resampled_together() -> None:
    """Ten players with 300 sessions each, each with a taste of their own: the interval must reflect
    ten independent units, not 3,000 (treating sessions as independent would be far too sure)."""
    sessions, _ = _logged(3000, 3, players=10)
    per_player = estimate(sessions, "a", boot=300, seed=2)
    alone = estimate(
        [LoggedSession(s.name, "", s.arm, s.propensity, s.seconds, s.quit, s.covariates) for s in sessions],
        "a",
        boot=300,
        seed=2,
    )
    w_players = per_player["dr_ci95"][1] - per_player["dr_ci95"][0]
    w_alone = alone["dr_ci95"][1] - alone["dr_ci95"][0]
    assert w_players > 3 * w_alone > 0


def _second_log(n: int, seed: int) -> list[LoggedSession]:
    """More sessions of the rare director `c` (half of them) and of `a`, logged under a mixture of their own."""
    rng = np.random.default_rng(1000 + seed)
    out = []
    for i in range(n):
        arm = "c" if rng.random() < 0.5 else "a"
        skill = rng.random()
        y = {"a": 300.0, "c": 420.0}[arm] + 200.0 * (skill - 0.5) + rng.normal(0, 80)
        out.append(LoggedSession(f"t{i}", "", arm, 0.5, max(y, 1.0), True, np.array([1.0, skill, 0.5, 0.1]), log=1))
    return out


def test_two_logs_are_weighted_as_one_design() -> None:
    """A first log drew `c` one time in ten, a second one time in two: weighting each session by its
    own log's propensity is unbiased but gives the first log's `c` sessions five times the weight of the
    second's, so few of them set the spread; weighted as one design (the balance heuristic), every `c`
    session weighs the same. Both stay centred on the truth, the one design has the larger effective
    sample and the smaller spread, and `b`, which only the first log drew, is still estimated."""
    balanced, own, ess = [], [], []
    for seed in range(16):
        first, truth = _logged(2000, seed)
        both = first + _second_log(1000, seed)
        as_logged = [replace(s, log=0) for s in both]
        one, each = estimate(both, "c", boot=2, seed=seed), estimate(as_logged, "c", boot=2, seed=seed)
        balanced.append(one["dr"] / truth["c"] - 1.0)
        own.append(each["dr"] / truth["c"] - 1.0)
        ess.append(one["effective_sample_size"] / each["effective_sample_size"])
        assert abs(estimate(both, "b", boot=2, seed=seed)["dr"] / truth["b"] - 1.0) < 0.1
    assert abs(float(np.mean(balanced))) < 0.02 and abs(float(np.mean(own))) < 0.03
    assert min(ess) > 1.4
    assert float(np.std(balanced)) < 0.9 * float(np.std(own))


def test_a_director_never_drawn_is_not_guessed() -> None:
    sessions, _ = _logged(200, 4)
    r = estimate(sessions, "never", boot=10)
    assert "dr" not in r and "cannot be estimated" in r["note"]


def test_recordings_of_a_simulated_mixture_are_read_for_evaluation(bundled: Checkpoint, tmp_path: Path) -> None:
    mixture = parse_mixture("static:0.3=2,static:0.7=1")
    cfg = OfflineConfig(sessions=24, max_seconds=60.0, seed=5, mixture=mixture, record_dir=str(tmp_path))
    rows = run_offline(load_population("default", 5), cfg, bundled)
    sessions = read_logged(sorted(tmp_path.glob("*.mbrec")))
    assert len(sessions) == 24
    assert {s.arm for s in sessions} == {r.policy for r in rows} <= {"static:0.3", "static:0.7"}
    assert {round(s.propensity, 3) for s in sessions} <= {0.667, 0.333}
    # No stable player id in the hello: each session is its own unit.
    assert len({s.player for s in sessions}) == len(sessions)
    by_name = {f"sim-5-{r.index:06d}.mbrec": r for r in rows}
    for s in sessions:
        assert s.seconds == pytest.approx(by_name[s.name].seconds, abs=0.5)
        assert s.quit == by_name[s.name].quit
    r = estimate(sessions, "static:0.3", boot=100)
    lo, hi = r["dr_ci95"]
    assert lo < hi


def test_the_outcome_models_inputs_are_read_before_the_director_acts(bundled: Checkpoint, tmp_path: Path) -> None:
    """The same players under a fixed 0.2 and a fixed 0.8: each player's DR inputs are the same whatever
    director it drew (read a few seconds in, they already show the difficulty the director set, and DR
    for a director is then computed from what other directors did to the players)."""
    inputs = []
    for level in ("0.2", "0.8"):
        out = tmp_path / level
        cfg = OfflineConfig(
            sessions=6, max_seconds=30.0, seed=8, mixture=parse_mixture(f"static:{level}=1"), record_dir=str(out)
        )
        run_offline(load_population("default", 8), cfg, bundled)
        inputs.append({s.name: s.covariates for s in read_logged(sorted(out.glob("*.mbrec")))})
    low, high = inputs
    assert low.keys() == high.keys() and len(low) == 6
    for name in low:
        assert np.array_equal(low[name], high[name])
        assert not np.array_equal(low[name], [1.0, 0.5, 0.5, 0.1])  # read from the model, not the blank guess
