"""Off-policy evaluation of the portfolio, which learns while it plays: a fresh portfolio replayed on its
candidates' logged sessions (`evaluate-directors --from-recordings DIR --policies portfolio`)."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sidecar.model.checkpoint import Checkpoint
from sidecar.policies.portfolio import ADAPTIVE_ARM, FIXED_ARMS, PREDICTIVE_HARDER, ArmEvidence, candidate_of, rung
from sidecar.training.offpolicy import LoggedSession, read_logged
from sidecar.training.portfolio_replay import candidate_labels, estimate_portfolio, replay_once
from sim.offline import OfflineConfig, run_offline
from sim.policy_labels import parse_mixture
from sim.populations import load_population

# Mean session per director: the designer's level 0.5 is beaten by harder levels up to 0.7 and by
# `predictive` most, so the portfolio's run has something to learn, and a ladder to climb on a bad start.
MEANS = {f"static:{lv / 10:g}": 300.0 + 40 * (lv - 5) - 30 * max(lv - 6, 0) ** 2 for lv in range(2, 9)}
MEANS["predictive"] = 420.0
_COV = np.ones(4)


def _session(rng: random.Random, arm: str, i: int, propensity: float, mean: float | None = None) -> LoggedSession:
    seconds = rng.lognormvariate(np.log(mean or MEANS[arm]) - 0.18, 0.6)  # mean as given, sd ~0.65 of it
    return LoggedSession(f"s{i}", f"p{i}", arm, propensity, min(seconds, 900.0), seconds < 900.0, _COV)


def _truth(runs: int = 30) -> tuple[float, list[float]]:
    """A fresh portfolio's mean session over 1,000 players, 64 at a time, on the true distributions."""
    rng = random.Random(1)
    pools = {arm: [_session(rng, arm, i, 1.0) for i in range(5000)] for arm in MEANS}
    means = [float(np.mean(replay_once(pools, 0.5, 1000, 64, rng).lengths)) for _ in range(runs)]
    return float(np.mean(means)), means


def test_the_replay_estimates_a_fresh_portfolios_run_from_a_logged_mixture() -> None:
    """Four logs of 2,000 sessions drawn uniformly among eight directors: each estimate within 6% of
    what a fresh portfolio plays on the true distributions, on average within 3%, and each interval
    (for one run of 1,000 players) covers most single runs."""
    truth, runs = _truth()
    assert 360 < truth < 420  # it learns: above the designer's 300, below `predictive`'s 420
    errors, covered = [], 0
    for seed in range(4):
        rng = random.Random(100 + seed)
        arms = list(MEANS)
        log = [_session(rng, rng.choice(arms), i, 1 / len(arms)) for i in range(2000)]
        r = estimate_portfolio(log, sessions=1000, concurrent=64, runs=6, boot=40, seed=seed)
        lo, hi = r["ci95"]
        assert lo < r["replay"] < hi and hi - lo < 0.3 * truth
        errors.append(r["replay"] / truth - 1.0)
        covered += sum(lo <= m <= hi for m in runs[seed * 7 : seed * 7 + 7])
        assert r["designer_level"] == 0.5 and r["shares"]["predictive"] > 0.3
    assert max(abs(e) for e in errors) < 0.06
    assert abs(float(np.mean(errors))) < 0.03
    assert covered >= 22  # of 28


def test_a_candidates_sessions_stand_for_every_player_whatever_drew_them() -> None:
    """Logged by a policy that drew these directors more for long-playing players (propensity 0.5) than
    for short ones (0.1), half of the players each: weighted by 1/propensity the candidates' sessions
    stand for the population (long and short alike); unweighted, five in six would be long ones."""
    rng = random.Random(3)
    log = []
    for i in range(8000):
        long_player = i % 2 == 0
        p = 0.5 if long_player else 0.1
        if rng.random() < p:
            arm = rng.choice(list(MEANS))  # every candidate the same, each level the ladder may reach
            log.append(_session(rng, arm, i, p, 600.0 if long_player else 200.0))
    everyone = [_session(rng, "x", i, 1.0, 600.0 if i % 2 == 0 else 200.0).seconds for i in range(20000)]
    by_arm: dict[str, list[LoggedSession]] = {}
    for s in log:
        by_arm.setdefault(s.arm, []).append(s)
    means = [np.mean(replay_once(by_arm, 0.5, 1000, 64, rng).lengths) for _ in range(5)]
    assert float(np.mean(means)) == pytest.approx(float(np.mean(everyone)), rel=0.05)
    assert float(np.mean(means)) < 0.85 * float(np.mean([s.seconds for s in log]))  # the unweighted mean


def test_a_candidate_the_log_never_drew_stops_the_estimate_with_its_name() -> None:
    rng = random.Random(4)
    log = [_session(rng, arm, i, 0.5) for i, arm in enumerate(["static:0.5", "predictive"] * 100)]
    r = estimate_portfolio(log, sessions=200, runs=2, boot=2)
    assert "replay" not in r and r["missing"] == "harder"
    assert "'harder'" in r["note"] and "'static:0.6'" in r["note"]


def test_candidates_are_found_under_their_own_label_or_the_director_they_are() -> None:
    """A served portfolio's recordings name the candidate ("harder"), a mixture the director
    ("static:0.6"); the designer's level comes from the logged games' own knob defaults."""
    designer, harder, predictive = FIXED_ARMS
    assert candidate_labels(designer, 0.4) == ("designer", "static:0.4")
    assert candidate_labels(harder, 0.4) == ("harder", "static:0.5")
    assert candidate_labels(predictive, 0.4) == ("predictive", "predictive")
    assert candidate_labels(rung(0.3), 0.8) == ("harder+0.3", "static:1")  # clamped to the knob range
    assert candidate_labels(PREDICTIVE_HARDER, 0.4) == ("predictive_harder", "predictive:band_high=0.4;band_low=0.1")
    rng = random.Random(5)
    names = {rung(k / 10).label: f"static:{0.5 + k / 10:.2f}" for k in range(-3, 4)}  # "harder+0.2": "static:0.70"
    names["predictive"] = "predictive"
    served = [
        _session(rng, arm, i, 0.4, MEANS[f"static:{float(src[7:]):g}" if src != "predictive" else src])
        for i, (arm, src) in enumerate(list(names.items()) * 150)
    ]
    # The same sessions, logged as a mixture spells them (loosely: "static:0.70").
    spelled = [LoggedSession(s.name, s.player, names[s.arm], s.propensity, s.seconds, s.quit, _COV) for s in served]
    a = estimate_portfolio(served, sessions=300, runs=3, boot=0, seed=9)
    b = estimate_portfolio(spelled, sessions=300, runs=3, boot=0, seed=9)
    assert a["replay"] == b["replay"] and a["shares"] == b["shares"]


def test_recordings_of_a_mixture_estimate_the_portfolio_from_the_command_line(
    bundled: Checkpoint, tmp_path: Path
) -> None:
    """The whole path: a simulated mixture of the portfolio's first candidates recorded, read back (the
    designer's level from the hellos' knobs), and `evaluate-directors --from-recordings` replaying the
    portfolio beside an importance-weighted fixed director."""
    mixture = parse_mixture("static:0.5=1,static:0.6=1,predictive=1,static:0.4=1,static:0.7=1")
    cfg = OfflineConfig(sessions=40, max_seconds=40.0, seed=6, mixture=mixture, record_dir=str(tmp_path))
    run_offline(load_population("default", 6), cfg, bundled)
    sessions = read_logged(sorted(tmp_path.glob("*.mbrec")))
    assert len(sessions) == 40 and all(s.designer_level == pytest.approx(0.5) for s in sessions)
    later = tmp_path / "later"  # a second log (here of the same design): both directories are read
    later.mkdir()
    for f in sorted(tmp_path.glob("*.mbrec"))[30:]:
        f.rename(later / f.name)
    logs = [str(tmp_path), str(later)]
    command = ["evaluate-directors", "--from-recordings", *logs, "--policies", "portfolio,static:0.5"]
    options = ["--players", "100", "--bootstrap", "20", "--max-seconds", "40", "--out", str(tmp_path / "png")]
    out = subprocess.run(
        [sys.executable, "-m", "sidecar.cli", *command, *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| portfolio (replayed)"))
    mean, interval = row.split("|")[3:5]
    lo, hi = (float(x) for x in interval.split("–"))
    assert 0 < lo <= float(mean) <= hi <= 40
    assert "a fresh one replayed over 100 sessions" in out.stdout and "40 logged sessions" in out.stdout
    assert (tmp_path / "png" / "off_policy.png").stat().st_size > 5000


def test_a_few_replays_that_reach_an_unlogged_rung_are_left_out_and_said_so() -> None:
    """A log without a fixed 0.8 (the ladder's last rung up): where a twentieth of the replays climb that
    far the estimate is made from the rest and says so; where more do, there is no estimate."""
    found = []
    for seed in range(2):
        rng = random.Random(200 + seed)
        arms = [a for a in MEANS if a != "static:0.8"]
        log = [_session(rng, rng.choice(arms), i, 1 / len(arms)) for i in range(2000)]
        found.append(estimate_portfolio(log, sessions=1000, runs=20, boot=20, seed=seed))
    few, many = found
    assert few["missing"] == "harder+0.3" and 0 < few["missing_share"] <= 0.05
    assert "left out" in few["note"] and "'static:0.8'" in few["note"] and few["replay"] > 0
    assert many["missing_share"] > 0.05 and "replay" not in many and "'harder+0.3'" in many["note"]


def test_a_second_log_of_the_missing_rung_completes_the_estimate() -> None:
    """The log the replays could not finish (a fixed 0.8 never drawn, reached by more than a twentieth of
    them), read together with a later log of that rung alone: an estimate, close to the truth."""
    truth, _ = _truth()
    rng = random.Random(201)
    arms = [a for a in MEANS if a != "static:0.8"]
    log = [_session(rng, rng.choice(arms), i, 1 / len(arms)) for i in range(2000)]
    assert "replay" not in estimate_portfolio(log, sessions=1000, runs=20, boot=20, seed=1)
    more = [replace(_session(rng, "static:0.8", 2000 + i, 1.0), log=1) for i in range(300)]
    r = estimate_portfolio(log + more, sessions=1000, runs=20, boot=20, seed=1)
    assert "missing" not in r and "note" not in r
    assert abs(r["replay"] / truth - 1.0) < 0.06 and r["shares"].get("harder+0.3", 0.0) > 0


def test_what_seeding_from_a_design_log_buys_is_replayed_beside_a_fresh_start() -> None:
    """Where players want it harder than the ladder's first rungs (0.8 best), a fresh portfolio pays to
    climb; one seeded with a design log of 60 other players per level (what `portfolio import` adds)
    starts on the right rungs: replayed on the same log, it plays longer, within a few percent of the
    best level, and says what it started from. (Over four seeds of this setting: +3.1% to +8.2%.)"""
    means = {f"static:{lv / 10:g}": 200.0 + 40 * (lv - 2) for lv in range(2, 9)}  # 0.8 best
    means["predictive"] = 250.0
    rng = random.Random(7)
    log = [_session(rng, arm, i, 1 / len(means), means[arm]) for i, arm in enumerate(list(means) * 300)]
    best = float(np.mean([s.seconds for s in log if s.arm == "static:0.8"]))  # capped at 900 s
    design: dict[str, ArmEvidence] = {}
    for arm in means:  # other players: 60 sessions of each level
        label = candidate_of(arm, 0.5)
        assert label is not None
        for i in range(60):
            s = _session(rng, arm, i, 1.0, means[arm])
            design[label] = design.get(label, ArmEvidence()).plus(ArmEvidence(int(s.quit), s.seconds, 1, 1))
    fresh = estimate_portfolio(log, sessions=1000, runs=10, boot=10, seed=3)
    seeded = estimate_portfolio(log, sessions=1000, runs=10, boot=10, seed=3, seeded=design)
    assert fresh["started_from"] == 0 and seeded["started_from"] == 60 * len(means)
    assert seeded["replay"] > 1.02 * fresh["replay"] and seeded["replay"] > 0.96 * best
    assert seeded["shares"]["harder+0.3"] > max(0.65, fresh["shares"].get("harder+0.3", 0.0) + 0.1)


def test_the_replays_vectorised_draws_are_the_live_portfolios_draws() -> None:
    """The replay draws Thompson samples with numpy; the live portfolio with `random`: the same chance
    of each candidate being drawn, and the same propensities (the ladder reads them)."""
    from sidecar.policies.portfolio import _thompson_draws
    from sidecar.training.portfolio_replay import _numpy_draws

    shapes, rates = [12.0, 30.0, 5.0], [4000.0, 9000.0, 2300.0]  # mean lives 333, 300, 460 s; thin evidence
    live_rng, vec = random.Random(1), _numpy_draws(np.random.default_rng(1))
    live = np.array([_thompson_draws(shapes, rates, live_rng)[1] for _ in range(300)]).mean(axis=0)
    fast = np.array([vec(shapes, rates, live_rng)[1] for _ in range(300)]).mean(axis=0)
    assert live.sum() == fast.sum() == 200
    assert np.allclose(live / 200, fast / 200, atol=0.01)
    assert fast.argmax() == 2 and fast.min() > 5  # the best is drawn most, none is starved


def test_the_replay_starts_from_the_one_game_a_state_dir_holds(tmp_path: Path) -> None:
    """`evaluate-directors --from-recordings DIR --portfolio-state STATE`: the replays start from the
    state dir's game (its skill shares aside); a state dir of several games is refused by name."""
    from sidecar.operations.portfolio_store import PortfolioStore
    from sim.commands import _stored_evidence

    store = PortfolioStore(tmp_path)
    store.add("arena", {"harder+0.2": ArmEvidence(quits=3, seconds=900.0, finished=5, assigned=5)})
    store.add("arena#skill1of3", {"rubber_band": ArmEvidence(quits=1, seconds=10.0, finished=1, assigned=1)})
    assert _stored_evidence(str(tmp_path))["harder+0.2"].finished == 5
    store.add("another game", {"designer": ArmEvidence(quits=1, seconds=10.0, finished=1, assigned=1)})
    with pytest.raises(ValueError, match="one game's evidence, not 2"):
        _stored_evidence(str(tmp_path))


def test_a_log_without_the_adaptive_candidate_replays_the_fixed_candidates_and_says_so() -> None:
    """The adaptive candidate's sessions start where the game's recent ones of it ended, so no log of
    fixed directors stands for them: such a log replays the portfolio of the fixed candidates, and says
    so; a served portfolio's own recordings (which name it) replay it too."""
    rng = random.Random(8)
    arms = ["static:0.5", "static:0.6", "predictive"]
    fixed = [_session(rng, arm, i, 1 / 3) for i, arm in enumerate(arms * 100)]
    r = estimate_portfolio(fixed, sessions=200, runs=2, boot=2)
    assert r["replay"] > 0 and f"'{ADAPTIVE_ARM.label}'" in r["candidates"]
    assert ADAPTIVE_ARM.label not in r["shares"] and "harder" in r["shares"]
    served = fixed + [_session(rng, ADAPTIVE_ARM.label, 300 + i, 1 / 3, 600.0) for i in range(100)]
    r = estimate_portfolio(served, sessions=200, runs=2, boot=2)
    assert "candidates" not in r and max(r["shares"], key=r["shares"].get) == ADAPTIVE_ARM.label


def test_predictives_follower_is_replayed_from_a_mixture_that_logged_the_director_it_is() -> None:
    """Where `predictive` leads, its harder-band follower joins the replayed portfolio as it would live;
    a mixture's sessions of that director, however its parameters are spelled, stand for it; a log
    without them says which candidate to log."""
    rng = random.Random(12)
    means = {"static:0.5": 300.0, "predictive": 420.0, ADAPTIVE_ARM.label: 250.0}
    logged = [_session(rng, arm, i, 1 / 3, mean) for i, (arm, mean) in enumerate(list(means.items()) * 150)]
    spelled = "predictive:band_low=0.10;band_high=.4"
    harder = [_session(rng, spelled, 500 + i, 1.0, 600.0) for i in range(150)]
    r = estimate_portfolio(logged + harder, sessions=600, runs=2, boot=2)
    assert max(r["shares"], key=r["shares"].get) == PREDICTIVE_HARDER.label and "note" not in r
    r = estimate_portfolio(logged, sessions=600, runs=2, boot=2)
    assert r["missing"] == PREDICTIVE_HARDER.label and "predictive:band_high=0.4;band_low=0.1" in r["note"]
