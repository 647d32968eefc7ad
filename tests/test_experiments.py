"""Live experiments: sticky, balanced assignment; the report's statistics; a served experiment end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.operations.experiment_report import SessionOutcome, msprt, read_outcomes, report, write_report
from sidecar.operations.recording import read_recording
from sidecar.policies.experiments import (
    ExperimentSet,
    load_experiments,
    normal_label,
    parse_arm,
    parse_experiment,
    split_label,
)
from sidecar.protocol import Connection, ServerInfo, Welcomed
from sidecar.session import SessionRegistry
from sidecar.wire.requests import from_message
from sim.client import ClientConfig, play_many
from sim.populations import load_population
from tests.conftest import make_sidecar
from tests.helpers import hello_req


def test_assignment_is_sticky_and_balanced() -> None:
    e = parse_experiment("retention:static:0.4=50,learned=30,rubber_band=20")
    secret = b"s" * 32
    arms = [e.assign(f"player-{i}", secret).label for i in range(10_000)]
    share = {a.label: arms.count(a.label) / len(arms) for a in e.arms}
    assert share == pytest.approx({"static:0.4": 0.5, "learned": 0.3, "rubber_band": 0.2}, abs=0.01)
    again = [e.assign(f"player-{i}", secret).label for i in range(10_000)]
    assert again == arms  # the same player, the same arm (on any sidecar with the same secret)
    other = [e.assign(f"player-{i}", b"t" * 32).label for i in range(200)]
    assert other != arms[:200]  # the secret keys the draw: an outsider cannot predict arms
    assert e.arm("learned") is not None and e.arms[1].params == {}


def test_the_arm_reaches_the_welcome_and_only_allowed_overrides() -> None:
    e = parse_experiment("ab:static:0.3=1,learned=1")
    info = ServerInfo("m", "predictive", 5.0, ExperimentSet((e,), b"k" * 32))
    conn = Connection(SessionRegistry(Limits()), info)
    ev = conn.receive(from_message(hello_req(player_id="alice")), 0.0)
    assert isinstance(ev, Welcomed) and ev.welcome.experiment == "ab"
    arm = e.assign("alice", b"k" * 32)
    assert ev.welcome.arm == arm.label and ev.welcome.policy == arm.policy
    assert ev.session.assignment_propensity == pytest.approx(0.5)
    asked = hello_req(player_id="alice")
    asked.hello.experiment_arm = "learned"
    from sidecar.errors import InvalidHello

    registry = SessionRegistry(Limits())
    for _ in range(3):
        with pytest.raises(InvalidHello, match="does not let hellos choose"):
            Connection(registry, info).receive(from_message(asked), 0.0)
    assert not registry.sessions  # a refused hello holds no session (they counted against max_sessions)
    allowed = ServerInfo("m", "predictive", 5.0, ExperimentSet((e,), b"k" * 32, allow_override=True))
    ev2 = Connection(SessionRegistry(Limits()), allowed).receive(from_message(asked), 0.0)
    assert isinstance(ev2, Welcomed) and ev2.welcome.arm == "learned" and ev2.welcome.policy == "learned"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ab", "expected NAME:ARM=WEIGHT"),
        ("ab:static:0.4=50", "at least two arms"),
        ("ab:static:0.4=50,bogus=50", "'bogus' is not a director"),
        ("ab:static:0.4=50,learned=x", "not a number"),
        ("ab:static:2=50,learned=50", "outside [0, 1]"),
        ("ab:static:0.4=50,static:0.4=50", "names an arm twice"),
    ],
)
def test_bad_experiments_are_refused_by_name(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_experiment(text)


def test_one_label_grammar_for_the_sidecars_arms_the_simulators_runs_and_logs() -> None:
    """An experiment's arm, the simulator's run and a log's director read a label alike: the level
    shorthand, parameters (the last of a key given twice), and bare words only where a tool takes them."""
    from sim.policy_labels import parse_policy

    assert split_label("static:0.4") == ("static", {"level": "0.4"}, [])
    assert split_label("predictive:band_low=0.1;nohints;band_low=0.2") == (
        "predictive",
        {"band_low": "0.2"},
        ["nohints"],
    )
    for label in ("static:0.4", "static:level=0.8;retreat=0.3", "predictive:band_low=0.1;quit_weight=2", "rubber_band"):
        arm, run = parse_arm(label, 1.0), parse_policy(label)
        assert (arm.policy, arm.params) == (run.policy, run.params) and run.hints
    assert parse_policy("predictive:nohints").hints is False
    with pytest.raises(ValueError, match="expected KEY=VALUE parameters, got 'nohints'"):
        parse_arm("predictive:nohints", 1.0)  # a served arm always sends its hints
    with pytest.raises(ValueError, match="expected KEY=VALUE or 'nohints', got 'fast'"):
        parse_policy("predictive:fast")
    spellings = ("static:0.50", "static:.5", "static:level=0.5")
    assert {normal_label(s) for s in spellings} == {"static:0.5"}
    assert normal_label("predictive:band_high=.40;band_low=0.1") == normal_label(
        "predictive:band_low=0.10;band_high=0.4"
    )
    assert normal_label("static:level=0.5;retreat=0.3") == "static:level=0.5;retreat=0.3"
    assert normal_label("predictive") == "predictive"


def test_experiments_from_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "e.toml"
    toml.write_text(
        '[[experiment]]\nname = "arena"\ngame_id = "metabrain.sim.arena"\narms = { "static:0.4" = 1, "learned" = 3 }\n'
        '[[experiment]]\nname = "all"\narms = { "rubber_band" = 1, "learned" = 1 }\n'
    )
    yaml = tmp_path / "e.yaml"
    yaml.write_text("experiments:\n  - name: y\n    arms: {static: 1, predictive: 1}\n")
    a, b = load_experiments(toml)
    assert a.game_id == "metabrain.sim.arena" and a.arms[1].weight == pytest.approx(0.75)
    s = ExperimentSet((a, b), b"k")
    assert s.for_game("metabrain.sim.arena") is a and s.for_game("other.game") is b
    (y,) = load_experiments(yaml)
    assert [arm.label for arm in y.arms] == ["static", "predictive"]


def _outcomes(lengths: dict[str, np.ndarray], weights: dict[str, float] | None = None) -> list[SessionOutcome]:
    out = []
    for arm, xs in lengths.items():
        for i, x in enumerate(xs):
            w = (weights or {}).get(arm, 1.0 / len(lengths))
            out.append(SessionOutcome(f"{arm}-{i}", "e", arm, w, f"{arm}-p{i}", float(x), x < 900, 2, 0.3))
    return out


def test_the_report_finds_a_real_difference_and_flags_a_skewed_split() -> None:
    rng = np.random.default_rng(1)
    base = rng.exponential(400, 600).clip(5, 900)
    better = rng.exponential(480, 600).clip(5, 900)
    rep = report(_outcomes({"static:0.4": base, "learned": better}), boot=500)
    c = rep["comparisons"]["learned"]
    assert rep["control"] == "static:0.4" and c["excludes_zero"] and c["difference_s"] > 0
    assert c["sequential_p_value"] < 0.05 and rep["logrank"]["p_value"] < 0.05
    assert not rep["sample_ratio_mismatch"]["flagged"]
    skewed = report(_outcomes({"static:0.4": base, "learned": better[:450]}), boot=200)  # 50/50 intended
    assert skewed["sample_ratio_mismatch"]["flagged"]


def test_false_positives_of_both_tests_on_aa_experiments(bundled: Checkpoint) -> None:
    """A/A on simulated sessions (one director): 1,000 random 50/50 splits of a pool of simulated
    players. The fixed-horizon test's false-positive rate sits at 5% (within 2 points); the always-valid
    sequential test, looked at after every 50 players, stays at or under 5%."""
    from sim.offline import OfflineConfig, run_offline

    rows = run_offline(
        load_population("default", 21),
        OfflineConfig(sessions=400, max_seconds=600.0, policies=["static"], npc_hints=False, seed=21),
        bundled,
    )
    pool = np.array([r.seconds for r in rows])
    rng = np.random.default_rng(5)
    fixed = sequential = 0
    reps = 1000
    tau = 0.1 * pool.mean()
    for _ in range(reps):
        order = rng.permutation(len(pool))
        a, b = pool[order[::2]], pool[order[1::2]]
        fixed += stats.ttest_ind(a, b, equal_var=False).pvalue < 0.05
        looks = [msprt(a[:n], b[:n], tau)["p_value"] for n in range(25, len(a) + 1, 25)]  # every 50 players
        sequential += min(looks) < 0.05
    fixed_rate, seq_rate = fixed / reps, sequential / reps
    print(f"A/A, {reps} splits of {len(pool)} players: fixed-horizon {fixed_rate:.3f}, sequential {seq_rate:.3f}")
    assert 0.03 <= fixed_rate <= 0.07
    assert seq_rate <= 0.05


def test_a_served_experiment_records_its_arms_and_reports(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    sc = make_sidecar(
        tiny_checkpoint,
        experiments=(parse_experiment("ab:static:0.2=1,static:0.8=1"),),
        record_dir=str(tmp_path / "recs"),
        state_dir=str(tmp_path / "state"),
    )
    try:
        cfg = ClientConfig(target=sc.grpc_address, realtime=False, max_seconds=40.0, consent=True, seed=3)
        rows = asyncio.run(play_many(load_population("default", 3).players(16), cfg))
    finally:
        sc.stop()
    assert {r.policy for r in rows} <= {"static"} and all(r.guidance for r in rows)
    outcomes = read_outcomes(sorted((tmp_path / "recs").glob("*.mbrec")))
    assert len(outcomes) == 16 and {o.arm for o in outcomes} == {"static:0.2", "static:0.8"}
    assert all(o.weight == pytest.approx(0.5) and o.player.startswith("ph_") for o in outcomes)
    rep = report(outcomes, boot=200)
    paths = write_report(outcomes, rep, tmp_path / "out")
    assert paths["png"].stat().st_size > 10_000 and "| static:0.8 |" in paths["markdown"].read_text()
    # Each arm played its own director: the knobs each session ended on (static levels are approached
    # at the knobs' rate limits) are all harder in the hard arm. (Deaths per minute over 8 short
    # sessions an arm is too noisy to assert on.)
    last: dict[str, list[np.ndarray]] = {}
    for path in sorted((tmp_path / "recs").glob("*.mbrec")):
        rec = read_recording(path)
        knobs = [r.guidance.knobs for _, r in rec.responses() if r.WhichOneof("kind") == "guidance"]
        last.setdefault(str(rec.header["arm"]), []).append(np.array([k.value for k in knobs[-1]]))
    easy, hard = np.stack(last["static:0.2"]), np.stack(last["static:0.8"])
    assert (hard.min(axis=0) > easy.max(axis=0)).all(), (easy, hard)


def test_fast_clients_play_a_bounded_number_of_sessions_at_once(
    tiny_checkpoint: Checkpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 fast clients at once starved each other's hellos (no welcome within 30 s); a fast run plays
    max_concurrent sessions at a time, and every player still gets its session."""
    import sim.client

    real, open_now, peak = sim.client.play_session, [0], [0]

    async def counted(*args: Any, **kwargs: Any) -> Any:
        open_now[0] += 1
        peak[0] = max(peak[0], open_now[0])
        try:
            return await real(*args, **kwargs)
        finally:
            open_now[0] -= 1

    monkeypatch.setattr(sim.client, "play_session", counted)
    sc = make_sidecar(tiny_checkpoint)
    try:
        cfg = ClientConfig(target=sc.grpc_address, realtime=False, max_seconds=5.0, max_concurrent=3)
        rows = asyncio.run(play_many(load_population("default", 5).players(8), cfg))
    finally:
        sc.stop()
    assert len(rows) == 8 and all(r.guidance > 0 for r in rows) and peak[0] == 3
