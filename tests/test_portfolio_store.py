"""The portfolio's evidence kept in --state-dir: shared by processes without losing any, kept across restarts."""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import random
import time
from pathlib import Path

import pytest

from sidecar.model.checkpoint import Checkpoint
from sidecar.operations.portfolio_store import PortfolioStore
from sidecar.policies.portfolio import (
    CONTEXT_ARMS,
    NO_MOVE,
    START_FULL_S,
    ArmEvidence,
    Portfolio,
    moved,
    portfolio_for,
    portfolios,
    reset_portfolios,
    start_after,
    then_end,
)
from sim.client import ClientConfig, play_many
from sim.populations import load_population
from tests.conftest import make_sidecar

ROUNDS = 40
GAME = "metabrain.sim.arena"  # the simulator's Hello.game_id


def _learn(state_dir: str, worker: int) -> None:
    """One process: plays its share of sessions on two arms, exchanging evidence after every one."""
    store = PortfolioStore(state_dir)
    store.load()
    p = portfolio_for("shared.game")
    for i in range(ROUNDS):
        p.played("designer", 10.0)
        p.played("adaptive", 1.0 + worker)
        p.ended("designer", by_player=i % 2 == 0)
        p.ended("adaptive", by_player=False, end_offset=0.3, played_s=START_FULL_S / 10)  # weight 1/200
        store.sync()


def test_processes_sharing_a_state_dir_lose_no_evidence(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_learn, args=(str(tmp_path), w)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    reset_portfolios()
    try:
        assert PortfolioStore(tmp_path).load() == 1
        state = portfolio_for("shared.game").state
        assert state["designer"].seconds == pytest.approx(3 * ROUNDS * 10.0)
        assert (state["designer"].finished, state["designer"].quits) == (3 * ROUNDS, 3 * ROUNDS // 2)
        assert state["adaptive"].seconds == pytest.approx(ROUNDS * (1 + 2 + 3))
        assert state["predictive"].seconds == 0.0
        # Every process's ends moved the one shared start, each once: 3 x ROUNDS ends at +0.3, weight 1/200.
        assert portfolio_for("shared.game").start_offset("adaptive") == pytest.approx(0.3 * (1 - 0.995 ** (3 * ROUNDS)))
    finally:
        reset_portfolios()


def test_a_process_sees_what_the_others_learned_and_keeps_its_own(tmp_path: Path) -> None:
    reset_portfolios()
    try:
        store = PortfolioStore(tmp_path)
        mine = portfolio_for("g")
        mine.played("designer", 100.0)
        store.sync()
        _learn(str(tmp_path), 0)  # "another process" in the same one: its portfolio is this one
        mine.played("predictive", 7.0)
        store.sync()
        store.sync()  # nothing new: the totals stay
        reset_portfolios()
        store.load()
        state = portfolio_for("g").state
        assert state["designer"].seconds == pytest.approx(100.0)
        assert state["predictive"].seconds == pytest.approx(7.0)
        assert portfolio_for("shared.game").state["designer"].seconds == pytest.approx(ROUNDS * 10.0)
        (tmp_path / "portfolio" / "junk.json").write_text("{not json")
        reset_portfolios()
        assert store.load() == 2  # an unreadable file is skipped with a warning, not a crash
    finally:
        reset_portfolios()


def test_a_game_with_nothing_new_is_read_not_rewritten(tmp_path: Path) -> None:
    """A sidecar that knows many games rewrites (and fsyncs) only the files of games with new evidence,
    yet still takes in what other processes added to the rest."""
    reset_portfolios()
    try:
        store = PortfolioStore(tmp_path)
        busy, idle = portfolio_for("busy"), portfolio_for("idle")
        busy.played("designer", 10.0)
        idle.played("designer", 20.0)
        store.sync()
        idle_file, busy_file = store.path_of("idle"), store.path_of("busy")
        store.add("idle", {"harder": ArmEvidence(quits=1, seconds=50.0, finished=1, assigned=1)})  # elsewhere
        written = idle_file.stat().st_mtime_ns, idle_file.read_text()
        busy_before = busy_file.read_text()
        time.sleep(0.01)
        busy.played("designer", 5.0)
        store.sync()
        assert (idle_file.stat().st_mtime_ns, idle_file.read_text()) == written  # not rewritten
        assert busy_file.read_text() != busy_before  # the busy game's evidence went in
        assert idle.state["harder"].seconds == pytest.approx(50.0) and idle.state["harder"].quits == 1
        assert idle.state["designer"].seconds == pytest.approx(20.0)
        store.sync()  # taking in the same totals twice adds nothing
        assert idle.state["harder"].seconds == pytest.approx(50.0)
        assert busy.state["designer"].seconds == pytest.approx(15.0)
    finally:
        reset_portfolios()


def test_a_state_file_with_impossible_evidence_is_skipped_not_drawn_from(tmp_path: Path) -> None:
    """A hand-edited or corrupt state file (NaN or negative seconds, negative counts) is ignored with a
    warning: the director never draws from, or tells a game, numbers it could not have learned."""
    reset_portfolios()
    try:
        store = PortfolioStore(tmp_path)
        impossible = (
            {"seconds": math.nan},
            {"seconds": -5.0},
            {"seconds": math.inf},
            {"quits": -1},
            {"quits": math.inf},
        )
        for k, wrong in enumerate(impossible):  # json.dumps writes NaN and Infinity as Python's json reads them
            arm = {"quits": 0, "seconds": 10.0, "finished": 1, "assigned": 1, **wrong}
            store.path_of(f"g{k}").write_text(json.dumps({"format": 1, "game_id": f"g{k}", "arms": {"designer": arm}}))
        ok_arm = {"designer": {"quits": 1, "seconds": 60, "finished": 1, "assigned": 1}}
        other_shapes = (
            [],
            {"format": 1, "game_id": "s1", "arms": []},
            {"format": 1, "game_id": "s2", "arms": ok_arm, "starts": [0.1]},
        )
        for k, shape in enumerate(other_shapes):
            store.path_of(f"s{k}").write_text(json.dumps(shape))
        store.path_of("ok").write_text(
            json.dumps(
                {
                    "format": 1,
                    "game_id": "ok",
                    "arms": {"designer": {"quits": 1, "seconds": 60, "finished": 1, "assigned": 1}},
                }
            )
        )
        assert store.load() == 1 and set(portfolios()) == {"ok"}
        portfolio_for("g0").played("designer", 3.0)  # a new session of a skipped game: its file starts afresh
        store.sync()
        assert portfolio_for("g0").state["designer"].seconds == pytest.approx(3.0)
        assert json.loads(store.path_of("g0").read_text())["arms"]["designer"]["seconds"] == pytest.approx(3.0)
    finally:
        reset_portfolios()


def test_the_adaptive_start_is_kept_and_shared_like_the_evidence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The `adaptive` candidate starts where the game's recent sessions of it ended, on every process and
    after a restart: each process's ends since its last exchange are applied to the stored start, and
    its own ends since then stay on top of what it takes back. An exchange that fails loses nothing."""
    reset_portfolios()
    try:
        store = PortfolioStore(tmp_path)
        p = portfolio_for("g")
        p.ended("adaptive", by_player=True, end_offset=0.4, played_s=START_FULL_S)
        store.sync()
        first = start_after(0.0, 1 / 20, 0.4)
        starts = {game: starts for game, (_, starts) in store.stored().items()}
        assert starts == {"g": {"adaptive": pytest.approx(first)}}
        store.add("g", {}, {"adaptive": then_end(NO_MOVE, 1 / 20, 0.2)})  # another process's end, after ours
        shared = start_after(first, 1 / 20, 0.2)
        p.ended("adaptive", by_player=True, end_offset=0.1, played_s=START_FULL_S)
        taken = p.take_start_moves()  # an exchange under way when one more session ends here...
        p.ended("adaptive", by_player=True, end_offset=-0.1, played_s=START_FULL_S / 2)
        store.add("g", {}, taken)
        p.absorb_starts(store.stored()["g"][1])  # ...takes back the shared start, with that end on top
        now = start_after(start_after(shared, 1 / 20, 0.1), 1 / 40, -0.1)
        assert p.start_offset("adaptive") == pytest.approx(now)
        pending = p.take_start_moves()  # still this process's to share
        assert pending["adaptive"] == pytest.approx(then_end(NO_MOVE, 1 / 40, -0.1))
        p.untake({}, pending)

        def full_disk(*args: object) -> None:
            raise OSError(28, "No space left on device")

        store._merge = full_disk  # type: ignore[assignment,method-assign]
        p.played("designer", 30.0)
        with caplog.at_level("WARNING"):
            store.sync()  # a warning; the end and the seconds stay this process's, for the next exchange
        assert "could not save" in caplog.text
        del store._merge  # the disk has room again
        store.sync()
        assert store.stored()["g"][1]["adaptive"] == pytest.approx(now)
        assert store.games()["g"]["designer"].seconds == pytest.approx(30.0)

        reset_portfolios()  # a restart: the start is back before the first session is drawn
        store.load()
        assert portfolio_for("g").start_offset("adaptive") == pytest.approx(now)
        assert portfolio_for("g").start_offset("predictive") == 0.0  # a candidate that does not learn one

        stored = json.loads(store.path_of("g").read_text())
        stored["starts"]["adaptive"] = math.nan  # a corrupt or hand-edited file: skipped, as impossible evidence is
        store.path_of("g").write_text(json.dumps(stored))
        reset_portfolios()
        assert store.load() == 0
    finally:
        reset_portfolios()


def test_a_process_without_a_state_dir_keeps_its_unshared_start_moves_in_constant_space() -> None:
    """The moves waiting for an exchange are one (scale, shift) per candidate, however many sessions end
    before it, or if none ever comes (no --state-dir): applied to the shared start they give what every
    end applied in turn gives."""
    p = Portfolio()
    rng = random.Random(3)
    for _ in range(5000):  # sessions alike from every start: none walls its start off (start_range)
        played = rng.uniform(0, 300)
        p.played("adaptive", played)
        p.ended("adaptive", rng.random() < 0.5, end_offset=rng.uniform(-0.3, 0.5), played_s=played)
    pending = p.take_start_moves()
    assert set(pending) == {"adaptive"} and len(pending["adaptive"]) == 2
    assert moved(0.0, pending["adaptive"]) == pytest.approx(p.start_offset("adaptive"))


def test_a_restarted_sidecar_keeps_what_its_portfolio_learned(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    reset_portfolios()
    state_dir = str(tmp_path / "state")
    try:
        sc = make_sidecar(tiny_checkpoint, state_dir=state_dir)
        try:
            cfg = ClientConfig(target=sc.grpc_address, realtime=False, max_seconds=30.0, seed=2, policy="portfolio")
            rows = asyncio.run(play_many(load_population("default", 2).players(6), cfg))
        finally:
            sc.stop()
        assert all(r.guidance for r in rows)
        before = {k: (v.seconds, v.finished, v.assigned) for k, v in portfolio_for(GAME).state.items()}
        assert sum(v[2] for v in before.values()) == 6 and sum(v[0] for v in before.values()) > 100
        reset_portfolios()  # the process forgets, as a restart does
        sc = make_sidecar(tiny_checkpoint, state_dir=state_dir)
        try:
            after = {k: (v.seconds, v.finished, v.assigned) for k, v in portfolio_for(GAME).state.items()}
        finally:
            sc.stop()
        assert after == pytest.approx(before)
    finally:
        reset_portfolios()


def test_ladder_rungs_another_process_added_join_from_the_shared_totals(tmp_path: Path) -> None:
    p = Portfolio()
    p.absorb({"harder+0.2": ArmEvidence(quits=3, seconds=1200.0, finished=4, assigned=4), "bogus": ArmEvidence()})
    assert [a.label for a in p.arms] == ["designer", "predictive", "adaptive", "harder+0.2"]
    assert p.state["harder+0.2"].seconds == 1200.0 and "bogus" not in p.state
    assert dict(p.arms[-1].params) == {"offset": "0.2"}


def test_a_follower_another_process_added_joins_only_a_portfolio_whose_candidate_it_follows() -> None:
    seen = {"predictive_harder": ArmEvidence(quits=2, seconds=900.0, finished=3, assigned=3)}
    p = Portfolio()
    p.absorb(seen)
    assert p.arms[-1].label == "predictive_harder" and p.state["predictive_harder"].finished == 3
    share = Portfolio(arms=CONTEXT_ARMS)  # a contextual share: its `predictive` has no follower
    share.absorb(seen)
    share.adopt(["predictive_harder"])
    assert "predictive_harder" not in share.state


def test_evidence_of_the_adaptive_candidate_at_its_starts_is_shared_like_the_rest(tmp_path: Path) -> None:
    """A process's sessions of `adaptive` count for the candidate and for it at their start; both reach the
    other processes, which take in a start they have not drawn at yet (and nothing under another name).
    A game's totals per candidate (`games()`) count each session once."""
    store = PortfolioStore(tmp_path)
    here, there = Portfolio(), Portfolio()
    here.played("adaptive@+0.2", 200.0)
    here.ended("adaptive@+0.2", by_player=True)
    store.add("g", here.take_delta())
    there.absorb(store.stored()["g"][0] | {"predictive@+0.1": ArmEvidence(finished=5)})
    for ev in (there.state["adaptive"], there.at_start["adaptive@+0.2"]):
        assert (ev.seconds, ev.finished, ev.quits) == (200.0, 1, 1)
    assert "predictive@+0.1" not in there.at_start  # a candidate that learns no start keeps one evidence
    there.played("adaptive@+0.2", 50.0)
    store.add("g", there.take_delta())
    here.absorb(store.stored()["g"][0])
    assert here.at_start["adaptive@+0.2"].seconds == here.state["adaptive"].seconds == 250.0
    assert set(store.games()["g"]) == {"designer", "predictive", "adaptive"}
    assert sum(e.finished for e in store.games()["g"].values()) == 1


def test_portfolio_show_says_where_adaptive_starts_and_where_its_evidence_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its sessions' ends took the start to +0.4, but its sessions from +0.3 were half as long as from
    +0.1: `portfolio show` prints the start its next sessions get (+0.2), and why, as a process loading
    the store starts them there."""
    from sidecar.cli import main

    store = PortfolioStore(tmp_path)
    store.add(
        "g",
        {
            "adaptive": ArmEvidence(quits=90, seconds=36000.0, finished=90),
            "adaptive@+0.1": ArmEvidence(quits=40, seconds=20000.0, finished=40),
            "adaptive@+0.2": ArmEvidence(quits=30, seconds=12000.0, finished=30),
            "adaptive@+0.3": ArmEvidence(quits=20, seconds=4000.0, finished=20),
        },
        {"adaptive": (0.0, 0.4)},
    )
    assert main(["portfolio", "show", "--state-dir", str(tmp_path)]) == 0
    assert "adaptive starts +0.20 from the designer's level (its sessions' ends: +0.40" in capsys.readouterr().out
    reset_portfolios()
    try:
        store.load()
        assert portfolio_for("g").start_offset("adaptive") == pytest.approx(0.2)
    finally:
        reset_portfolios()


def test_recordings_of_portfolio_sessions_seed_another_sidecar(
    tiny_checkpoint: Checkpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A playtest's recordings (or another sidecar's) teach a new deployment's portfolio before its first
    player: `metabrain portfolio import RECORDINGS --state-dir DIR`, then `portfolio show`."""
    from sidecar.cli import main

    reset_portfolios()
    try:
        sc = make_sidecar(tiny_checkpoint, record_dir=str(tmp_path / "recs"))
        try:
            # One session at a time: each draw then follows the evidence of the sessions before it, in the same
            # order every run (concurrent sessions end in whatever order the event loop finishes them; once, in
            # CI, all eight drew rungs their players quit on).
            cfg = ClientConfig(
                target=sc.grpc_address,
                realtime=False,
                max_seconds=150.0,
                seed=4,
                policy="portfolio",
                consent=True,
                max_concurrent=1,
            )
            # Fragile players mostly quit within 150 s and default ones mostly play on: some of each.
            players = load_population("fragile", 4).players(4) + load_population("default", 4).players(4)
            rows = asyncio.run(play_many(players, cfg))
        finally:
            sc.stop()
        served = portfolio_for(GAME).state
        reset_portfolios()
        assert main(["portfolio", "import", str(tmp_path / "recs"), "--state-dir", str(tmp_path / "new")]) == 0
        out = capsys.readouterr().out
        assert "added 8 sessions" in out and "| candidate |" in out
        stored = PortfolioStore(tmp_path / "new").games()[GAME]
        assert sum(e.finished for e in stored.values()) == 8
        assert sum(e.quits for e in stored.values()) == sum(r.quit for r in rows)
        # Sessions the simulation's time limit cut short said so (Goodbye.cut_short): the served portfolio
        # counted them as censored, not as quits, as the recordings do.
        assert 0 < sum(r.quit for r in rows) < len(rows), [(r.archetype, r.arm, r.quit) for r in rows]
        for label, e in stored.items():  # what the served portfolio counted, read back from the recordings
            assert e.seconds == pytest.approx(served[label].seconds, abs=1.0 * e.finished)
            assert (e.quits, e.finished) == (served[label].quits, served[label].finished)
        assert main(["portfolio", "show", "--state-dir", str(tmp_path / "new")]) == 0
        assert GAME in capsys.readouterr().out
    finally:
        reset_portfolios()


def test_recordings_of_adaptive_sessions_teach_its_start(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    """A served portfolio's `adaptive` sessions record where they started (the director note) and ended
    (the knob values sent last): `portfolio import` gives a new deployment the start the served one had
    learned from them, and their evidence at the starts they had."""
    from sidecar.operations.portfolio_store import evidence_from_recordings

    reset_portfolios()
    try:
        # Evidence that `adaptive` keeps this game's players: every session draws it.
        portfolio_for(GAME).absorb({"adaptive": ArmEvidence(quits=0, seconds=1e6, finished=100, assigned=100)})
        sc = make_sidecar(tiny_checkpoint, record_dir=str(tmp_path / "recs"))
        try:
            cfg = ClientConfig(
                target=sc.grpc_address, realtime=False, max_seconds=120.0, seed=5, policy="portfolio", consent=True
            )
            rows = asyncio.run(play_many(load_population("thrill", 5).players(6), cfg))
        finally:
            sc.stop()
        assert all(r.guidance for r in rows)
        served = portfolio_for(GAME).start_offset("adaptive")
        assert served > 0.0  # players who kill easily: the rubber band ended above the designer's level
        found = evidence_from_recordings(sorted((tmp_path / "recs").glob("*.mbrec")))
        assert len(rows) == found.games[GAME]["adaptive"].finished
        at_starts = {label: e for label, e in found.games[GAME].items() if label.startswith("adaptive@")}
        assert sum(e.finished for e in at_starts.values()) == len(rows)  # and each at the start it had
        assert sum(e.seconds for e in at_starts.values()) == pytest.approx(found.games[GAME]["adaptive"].seconds)
        assert "adaptive@+0.0" in at_starts  # the first ones started at the designer's level
        reset_portfolios()
        store = PortfolioStore(tmp_path / "new")
        store.add(GAME, found.games[GAME], found.moves[GAME])
        store.load()
        assert portfolio_for(GAME).start_offset("adaptive") == pytest.approx(served, abs=0.001)
    finally:
        reset_portfolios()


@pytest.mark.parametrize(
    ("director", "designer", "candidate"),
    [
        ("static:0.7", 0.5, "harder+0.2"),
        ("static:level=0.7", 0.5, "harder+0.2"),  # every spelling of an experiment's arm
        ("static:offset=0.2", 0.5, "harder+0.2"),
        ("static:offset=0.2;npc_hints=off", 0.5, None),  # the candidate has its NPC hints
        ("predictive:quit_weight=2", 0.5, None),  # the candidate is `predictive` with its defaults
        ("predictive:band_high=0.40;band_low=.1", 0.5, "predictive_harder"),  # a follower's parameters
        ("predictive_harder", 0.5, "predictive_harder"),
        ("predictive:band_low=0.1", 0.5, None),
        ("static:0.50", 0.5, "designer"),
        ("static", 0.5, "designer"),  # the designer's level itself
        ("static:0.3", 0.6, "easier-0.3"),  # offsets start from this game's designer's level
        ("harder", 0.5, "harder"),  # a served portfolio names its candidate
        ("predictive", 0.5, "predictive"),
        ("rubber_band", 0.5, "rubber_band"),  # a candidate of the contextual director's shares
        ("static:0.45", 0.5, None),  # off the ladder's 0.1 grid
        ("static:0.9", 0.5, None),  # beyond its reach (0.3)
        ("intensity", 0.5, None),
        ("static:x", 0.5, None),
    ],
)
def test_a_fixed_directors_sessions_count_for_the_candidate_it_is(
    director: str, designer: float, candidate: str | None
) -> None:
    from sidecar.policies.portfolio import candidate_of

    assert candidate_of(director, designer) == candidate


def test_a_design_log_of_fixed_levels_seeds_the_portfolio_candidate_by_candidate(
    tiny_checkpoint: Checkpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log of fixed directors drawn per session (a served experiment, a simulated mixture) is evidence
    for the candidates they are, without a portfolio's bias against what it starved: `portfolio import`
    reads it by candidate and says what it skipped."""
    from sidecar.cli import main
    from sidecar.operations.portfolio_store import evidence_from_recordings
    from sidecar.operations.session_outcomes import read_sessions
    from sim.offline import OfflineConfig, run_offline
    from sim.policy_labels import parse_mixture

    mixture = parse_mixture("static:0.4=1,static:0.5=1,static:0.6=1,static:0.55=1,predictive=1,intensity=1")
    recs = tmp_path / "recs"
    cfg = OfflineConfig(sessions=36, max_seconds=150.0, seed=3, mixture=mixture, record_dir=str(recs))
    rows = run_offline(load_population("fragile", 3), cfg, tiny_checkpoint)
    files = sorted(recs.glob("*.mbrec"))
    by_arm: dict[str, list[float]] = {}
    for s in read_sessions(files):
        by_arm.setdefault(s.arm, []).append(s.played_s)
    assert len(by_arm) == 6, by_arm  # every arm drawn (the test's seed)

    found = evidence_from_recordings(files)
    evidence = found.games[GAME]
    named = {"static:0.4": "easier", "static:0.5": "designer", "static:0.6": "harder", "predictive": "predictive"}
    assert set(evidence) == set(named.values())
    for arm, label in named.items():
        e = evidence[label]
        assert e.finished == e.assigned == len(by_arm[arm])
        assert e.seconds == pytest.approx(sum(by_arm[arm]))
    quits = sum(r.quit for r in rows if r.policy in named)  # fragile players: many quit within 150 s
    assert sum(e.quits for e in evidence.values()) == quits > 0
    assert found.skipped == {"static:0.55": len(by_arm["static:0.55"]), "intensity": len(by_arm["intensity"])}
    assert found.adaptive == 0

    reset_portfolios()
    try:
        assert main(["portfolio", "import", str(recs), "--state-dir", str(tmp_path / "state")]) == 0
        out = capsys.readouterr().out
        assert f"added {sum(len(by_arm[a]) for a in named)} sessions" in out
        assert "skipped (no candidate of the portfolio)" in out and "of intensity" in out
        store = PortfolioStore(tmp_path / "state")
        assert store.load() == 1
        # The fixed rungs on either side of the designer's level join the portfolio a deployment starts with.
        labels = [a.label for a in portfolio_for(GAME).arms]
        assert labels[:3] == ["designer", "predictive", "adaptive"] and sorted(labels[3:]) == ["easier", "harder"]
        assert portfolio_for(GAME).state["easier"].finished == len(by_arm["static:0.4"])
    finally:
        reset_portfolios()


def test_the_learned_start_is_a_metric() -> None:
    """Operators see where `adaptive` starts per game (`metabrain_portfolio_start_offset`), beside each
    candidate's mean life."""
    from sidecar.operations.metrics import _portfolio_families

    reset_portfolios()
    try:
        portfolio_for("g").ended("adaptive", by_player=True, end_offset=0.4, played_s=START_FULL_S)
        (start,) = [m for m in _portfolio_families() if m.name == "metabrain_portfolio_start_offset"]
        assert [(s.labels, s.value) for s in start.samples] == [
            ({"game": "g", "candidate": "adaptive"}, pytest.approx(start_after(0.0, 1 / 20, 0.4)))
        ]
    finally:
        reset_portfolios()


def test_a_write_that_fails_halfway_leaves_the_old_totals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state file is replaced whole: a full disk (or a crash) in the middle of an exchange leaves the
    totals that were there, not half a file that the next exchange would have to throw away."""
    import sidecar.operations.portfolio_store as portfolio_store

    reset_portfolios()
    try:
        store = PortfolioStore(tmp_path)
        p = portfolio_for("g")
        p.played("designer", 50.0)
        store.sync()
        before = store.path_of("g").read_text()

        def no_space(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(portfolio_store.os, "fsync", no_space)
        p.played("designer", 7.0)
        store.sync()  # a warning; nothing written
        monkeypatch.undo()
        assert store.path_of("g").read_text() == before
        assert sorted(f.suffix for f in store.directory.iterdir()) == [".json", ".lock"]  # no temporary left
        store.sync()
        assert store.games()["g"]["designer"].seconds == pytest.approx(57.0)
    finally:
        reset_portfolios()
