"""The model clock: the model steps at the rate it learned (5 Hz), whatever rate the game sends.

The same seeded game, sent at 5, 10, 30 and 60 frames a second, must give the model the same steps and
the same predictions; every frame still gets an answer, in order, with knobs inside their rate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sidecar.engine.clock import ModelClock
from sidecar.engine.engine import Engine, EngineConfig
from sidecar.features import FrameInput, KnobSet
from sidecar.model.checkpoint import Checkpoint
from sidecar.session import Session
from sidecar.training.dataset import Horizons, examples_of
from sidecar.wire.frames import PLAYER_TABLE_COLUMNS as PLAYER_COLUMNS
from sidecar.wire.frames import extract
from sidecar.wire.hello import spec_of
from sidecar.wire.schema import pb
from sim.game import KNOBS, Action, FrameTimer, Game, hello
from sim.offline import OfflineConfig, run_offline
from sim.populations import load_population
from tests.helpers import WsSession, frame_req, hello_req

RATES = (5.0, 10.0, 20.0, 30.0, 60.0)
NAMES = [k.name for k in KNOBS]


def _scripted(game: Game) -> Action:
    t = game.nearest_npc()
    return Action(move_x=0.4, aim_at=t.npc_id if t else -1, shoot=True, hit_chance=0.4, dodge=game.tick % 40 == 0)


def _frames(hz: float, seconds: float, seed: int = 4) -> list[pb.Frame]:
    """A scripted player's game (the same for every rate: nothing here reacts to guidance)."""
    g, timer, out = Game(seed), FrameTimer(hz), []
    for _ in range(round(seconds * hz)):
        timer.play(g, _scripted)
        out.append(g.frame(timer.interval(g)))
    return out


def _inputs(frames: list[pb.Frame]) -> list[FrameInput]:
    knobs = KnobSet.from_specs(list(KNOBS))
    tracks: dict = {}
    return [FrameInput(extract(f, NAMES), f.sequence, f.game_time, None, 0.0, tracks, knobs) for f in frames]


@pytest.mark.parametrize("hz", RATES[1:])
def test_folded_steps_are_the_5hz_frames(hz: float) -> None:
    """Counts summed, rates averaged over the time they cover, states from the newest frame, events
    collected: a 60 Hz stream through the clock is the 5 Hz stream, number for number."""
    five = _inputs(_frames(5.0, 30.0))
    clock = ModelClock(0.2)
    steps = [s for s in (clock.route(f) for f in _inputs(_frames(hz, 30.0))) if s is not None]
    assert len(steps) == len(five)
    for a, b in zip(five, steps, strict=True):
        assert a.game_time == pytest.approx(b.game_time, abs=1e-9)
        np.testing.assert_allclose(a.raw.players, b.raw.players, rtol=1e-6, atol=1e-4)
        np.testing.assert_array_equal(a.raw.npcs, b.raw.npcs)
        ev_a, ev_b = a.raw.events, b.raw.events
        np.testing.assert_allclose(ev_a[np.lexsort(ev_a.T)], ev_b[np.lexsort(ev_b.T)], rtol=1e-6)
    assert [s.prev_game_time for s in steps][1:] == pytest.approx([f.game_time for f in five][:-1])


def test_a_game_slower_than_the_model_steps_every_frame() -> None:
    clock = ModelClock(0.2)
    frames = _inputs(_frames(2.0, 10.0))
    steps = [clock.route(f) for f in frames]
    assert all(s is not None for s in steps)


def test_uneven_rates_keep_the_model_rate_on_average() -> None:
    """8 Hz (Unity's default of one frame every 6th FixedUpdate at 50 Hz): steps alternate between one
    and two frames apart, five a second on average."""
    clock = ModelClock(0.2)
    frame = _inputs(_frames(5.0, 0.2))[0]
    steps = 0
    for i in range(8 * 60):
        if clock.route(FrameInput(frame.raw, i + 1, i / 8, None, 0.0, {}, frame.knobs)) is not None:
            steps += 1
    assert steps / 60.0 == pytest.approx(5.0, abs=0.05)


@pytest.mark.parametrize("phase", [0.1, 0.25, 0.4999, 0.5, 0.75, 0.9999])
def test_a_phase_changes_nothing_at_the_learned_rate_or_slower(phase: float) -> None:
    """A shifted grid steps the same frames as an unshifted one when the game sends at 5 Hz or slower:
    the phase only spreads sessions that send faster."""
    for hz in (5.0, 2.0):
        frames = _inputs(_frames(hz, 20.0))
        plain, shifted = ModelClock(0.2), ModelClock(0.2, phase=phase)
        stepped = [(plain.route(f) is not None, shifted.route(f) is not None) for f in frames]
        assert all(a == b for a, b in stepped) and sum(a for a, _ in stepped) >= len(frames) - 1


def test_sessions_that_start_together_step_in_different_ticks(bundled: Checkpoint) -> None:
    """100 sessions joined at once, sending the same 60 Hz game times (a match that starts together):
    each still steps five times a second, but no frame holds more than 10 of their steps, spread over the
    twelve frames of a period (unshifted, all 100 step with the same frame)."""
    engine = Engine(bundled, EngineConfig(device="cpu", max_slots=128))
    sessions = [Session(f"s{i}", "", spec_of(hello()), frozenset(), 0.0, 0.0) for i in range(100)]
    for s in sessions:
        engine.join(s)
    frame = _inputs(_frames(5.0, 0.2))[0]
    frames = [FrameInput(frame.raw, i, i / 60, None, 0.0, {}, frame.knobs) for i in range(1, 181)]
    stepped = np.array([[s.clock.route(f) is not None for s in sessions] for f in frames])  # type: ignore[union-attr]
    assert set(stepped.sum(axis=0).tolist()) <= {14, 15}  # 3 s at 5 Hz, the first step one period in
    assert stepped.sum(axis=1).max() <= 10  # 100 / 12 frames, give or take the golden ratio's spread
    unshifted = [ModelClock(0.2) for _ in range(100)]
    assert max(sum(c.route(f) is not None for c in unshifted) for f in frames) == 100


def _predictions(bundled: Checkpoint, hz: float, after: int = 0) -> dict[float, tuple[float, ...]]:
    """The model's insight at each of its steps, for the scripted game sent at hz; `after` sessions joined
    before it (the engine's first session has phase 0; later ones are shifted)."""
    engine = Engine(bundled, EngineConfig(device="cpu", max_slots=8))
    h = hello(policy="static", params={"npc_hints": "off"})
    for i in range(after):
        engine.join(Session(f"other{i}", "", spec_of(h), frozenset(h.capabilities), 0.0, 0.0))
    session = Session("s", "", spec_of(h), frozenset(h.capabilities), 0.0, 0.0)
    engine.join(session)
    out: dict[float, tuple[float, ...]] = {}
    ticks = engine.ticks
    for f in _frames(hz, 40.0):
        frame = _inputs([f])[0]
        frame.tracks = session.tracks
        responses = engine.step_now([(session, frame)])["s"]
        g = responses[0].guidance
        assert g.sequence == f.sequence  # every frame answered, with its own sequence
        if engine.ticks != ticks:  # this frame was a model step
            ticks = engine.ticks
            ins = g.insights[0]
            out[round(f.game_time, 6)] = (ins.p_fail, ins.p_quit, ins.frustration, ins.engagement, ins.skill)
    return out


def test_same_predictions_at_every_rate(bundled: Checkpoint) -> None:
    five = _predictions(bundled, 5.0)
    assert len(five) == 200
    for hz in RATES[1:]:
        other = _predictions(bundled, hz)
        assert sorted(other) == sorted(five), hz  # the model stepped at the same game times
        got = np.array([other[t] for t in sorted(five)])
        want = np.array([five[t] for t in sorted(five)])
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=f"{hz} Hz")


def test_a_shifted_session_predicts_what_the_5hz_stream_does(bundled: Checkpoint) -> None:
    """A session whose grid is shifted (the third to join: phase 0.24 of a period, and the fourth: 0.85)
    steps 5 times a second at 60 Hz, and its insights stay those of the 5 Hz stream, compared at the 5 Hz
    step nearest in time to each of its steps (at most half a period apart)."""
    five = _predictions(bundled, 5.0)
    times = np.array(sorted(five))
    want = np.array([five[t] for t in times])
    for after in (2, 3):
        shifted = _predictions(bundled, 60.0, after)
        assert len(shifted) in (199, 200)
        at = np.array(sorted(shifted))
        got = np.array([shifted[t] for t in at])
        nearest = np.abs(at[:, None] - times[None, :]).argmin(axis=1)
        assert np.abs(at - times[nearest]).max() <= 0.1 + 1e-6
        assert not set(at.round(6)) <= set(times.round(6))  # shifted: other times
        assert np.abs(got - want[nearest]).mean(axis=0).max() < 0.01


def test_same_sessions_and_examples_at_every_rate(bundled: Checkpoint, tmp_path: Path) -> None:
    """Simulated players at the designer's defaults (nothing reacts to the rate): the same sessions, and
    the dataset builder gives the same examples from recordings at any rate."""
    pop = load_population("default", 3)
    lengths, examples = {}, {}
    for hz in (5.0, 30.0, 60.0):
        rec = tmp_path / f"rec{hz:g}"
        cfg = OfflineConfig(
            sessions=4, max_seconds=60.0, policies=["static"], npc_hints=False, telemetry_hz=hz, record_dir=str(rec)
        )
        rows = run_offline(pop, cfg, bundled)
        lengths[hz] = [r.seconds for r in rows]
        examples[hz] = examples_of(sorted(rec.glob("*.mbrec")), Horizons())
    for hz in (30.0, 60.0):  # a quit ends a session at the same tick; the cap is checked once a frame
        assert np.minimum(lengths[hz], 60.0) == pytest.approx(np.minimum(lengths[5.0], 60.0), abs=1e-6), hz
    for hz in (30.0, 60.0):
        for a, b in zip(examples[5.0], examples[hz], strict=True):
            n = min(len(a), len(b))  # a capped session's last step may fall after the other's end
            assert n >= len(a) - 1 and n > 100
            np.testing.assert_allclose(a.players[:n], b.players[:n], atol=1e-4)
            np.testing.assert_array_equal(a.fail[:n], b.fail[:n])
            np.testing.assert_array_equal(a.quit[:n], b.quit[:n])


def test_a_60hz_session_is_answered_in_order_and_steps_at_5hz(tiny_checkpoint: Checkpoint) -> None:
    """A burst of 60 Hz frames: one answer per frame, in sequence order (frames that arrive while their
    session's step is in flight wait for it), knobs within their rate between any two answers."""
    from sidecar.limits import Limits
    from tests.conftest import make_sidecar

    limits = Limits(max_frames_per_second=1e6, max_messages_per_second_per_connection=1e6)
    sidecar = make_sidecar(tiny_checkpoint, limits=limits)
    engine = sidecar.sidecar.engine
    c = WsSession(sidecar.ws_url)
    c.send(hello_req(policy="static", params={"level": "1.0"}))
    welcome = c.recv().welcome
    assert welcome.model_rate_hz == pytest.approx(5.0)
    frames = _frames(60.0, 20.0)
    g_time = {f.sequence: f.game_time for f in frames}
    routed, between = engine.step_frames, engine.between_frames
    for f in frames:  # as fast as the socket takes them: many arrive while a step is in flight
        c.send(frame_req(f))
    answered, last = [], None
    while len(answered) < len(frames):
        resp = c.recv()
        kind = resp.WhichOneof("kind")
        if kind == "superseded":
            answered.append(resp.superseded.sequence)
            continue
        assert kind == "guidance", resp
        g = resp.guidance
        answered.append(g.sequence)
        if last is not None:
            dt = g_time[g.sequence] - g_time[last.sequence]
            for k, spec in zip(g.knobs, KNOBS, strict=True):
                prev = next(x.value for x in last.knobs if x.name == k.name)
                assert abs(k.value - prev) <= spec.max_change_per_second * dt + 1e-5
        last = g
    assert answered == [f.sequence for f in frames]
    steps = engine.step_frames - routed
    assert steps == 20 * 5  # 5 model steps a second of game time (a burst this fast supersedes some)
    assert engine.between_frames - between + steps <= len(frames)
    c.close()
    sidecar.stop()


@pytest.mark.parametrize("at_once", [True, False])
def test_a_60hz_step_frame_is_answered_at_once_and_its_prediction_follows(
    tiny_checkpoint: Checkpoint, at_once: bool
) -> None:
    """A game faster than the model rate: the frame that takes a step is answered at once from the latest
    prediction (no frame waits for a tick), and each step's prediction reaches the frames after it. With
    answer_steps_at_once=False (`serve --wait-for-steps`) such a frame waits for its step, as before."""
    with _one_session(tiny_checkpoint, EngineConfig(device="cpu", max_slots=64, answer_steps_at_once=at_once)) as (
        engine,
        c,
    ):
        steps, early = engine.step_frames, engine.steps_answered_at_once
        seen: list[tuple[float, ...]] = []
        start = time.monotonic()
        for f in _frames(60.0, 3.0):  # in real time, as a game sends them
            time.sleep(max(start + f.game_time - time.monotonic(), 0.0))
            c.send(frame_req(f))
            g = c.recv().guidance
            assert g.sequence == f.sequence
            risk = tuple(round(i.p_quit, 6) for i in g.insights)
            if risk and (not seen or seen[-1] != risk):
                seen.append(risk)
        stepped = engine.step_frames - steps
        assert stepped == 3 * 5  # the model clock: 5 steps a second of game time
        # Every step but the first (no earlier step to tell the game runs in real time); a stall of this
        # process may make one or two look faster than real time, and those wait for their steps.
        at_once_now = engine.steps_answered_at_once - early
        assert stepped - 3 <= at_once_now <= stepped - 1 if at_once else at_once_now == 0
        assert len(seen) >= stepped - 2  # the predictions change with the steps, and reach the game


def test_a_model_failure_on_a_step_answered_at_once_reaches_the_game(tiny_checkpoint: Checkpoint) -> None:
    """The frame that took the step was answered before the step ran: when the model then fails, the
    game still hears it (MODEL_UNAVAILABLE naming that frame, after the next frame's answer), and the
    frames after the step ease toward the designer's defaults (fallback) until the next good step."""
    with _one_session(tiny_checkpoint, EngineConfig(device="cpu", max_slots=64)) as (engine, c):
        errors: list[tuple[pb.Error, int]] = []  # each with the sequence of the guidance before it
        fallback: list[int] = []
        last, failed_at = 0, 0
        start = time.monotonic()
        for f in _frames(60.0, 2.0):  # in real time, as a game sends them
            time.sleep(max(start + f.game_time - time.monotonic(), 0.0))
            if f.game_time >= 1.0 and not failed_at:  # the next step fails (several steps in: answered at once)
                engine.runner.fail_next = RuntimeError("device lost (injected)")
                failed_at, at_once = f.sequence, engine.steps_answered_at_once
            c.send(frame_req(f))
            while True:
                r = c.recv()
                if r.HasField("error"):
                    errors.append((r.error, last))
                    continue
                assert r.guidance.sequence == f.sequence  # every frame answered, in order
                last = f.sequence
                if r.guidance.fallback:
                    fallback.append(f.sequence)
                break
        assert engine.runner.fail_next is None  # the injected failure was used
        assert engine.steps_answered_at_once > at_once
        assert len(errors) == 1, errors
        err, after = errors[0]
        assert err.code == pb.ERROR_CODE_MODEL_UNAVAILABLE and "device lost" in err.message
        assert failed_at <= err.sequence < after  # the step's frame, told after a later frame's answer
        assert fallback and fallback[0] > err.sequence  # the frames after the failed step: the defaults
        assert fallback[-1] < last  # and the next step's prediction again


def test_a_game_at_the_model_rate_waits_for_its_steps(tiny_checkpoint: Checkpoint) -> None:
    """At the model rate (5 Hz) every frame steps and nothing is folded, and a client faster than real
    time at 60 Hz (a replay): each step frame waits for its own step's prediction, none is skipped."""
    with _one_session(tiny_checkpoint, EngineConfig(device="cpu", max_slots=64)) as (engine, c):
        steps, early = engine.step_frames, engine.steps_answered_at_once
        for f in [*_frames(5.0, 3.0), *_frames(60.0, 6.0)[180:]]:  # then 60 Hz, as fast as answered
            c.send(frame_req(f))
            assert c.recv().guidance.sequence == f.sequence
        assert engine.step_frames - steps == 15 + 15
        assert engine.steps_answered_at_once == early


@contextmanager
def _one_session(checkpoint: Checkpoint, cfg: EngineConfig) -> Iterator[tuple[Engine, WsSession]]:
    """A served sidecar with `cfg` and one WebSocket session welcomed on it: its engine and the client."""
    from tests.conftest import make_sidecar

    sc = make_sidecar(checkpoint, engine=cfg)
    try:
        c = WsSession(sc.ws_url)
        c.send(hello_req())
        c.recv()
        yield sc.sidecar.engine, c
        c.close()
    finally:
        sc.stop()


def test_model_every_frame_steps_every_frame(tiny_checkpoint: Checkpoint) -> None:
    from tests.conftest import make_sidecar

    sc = make_sidecar(tiny_checkpoint, engine=EngineConfig(device="cpu", max_slots=64, model_rate_hz=0.0))
    try:
        c = WsSession(sc.ws_url)
        c.send(hello_req())
        assert c.recv().welcome.model_rate_hz == 0.0
        ticks = sc.sidecar.engine.ticks
        frames = _frames(60.0, 2.0)
        for f in frames:
            c.send(frame_req(f))
            assert c.recv().guidance.sequence == f.sequence
        assert sc.sidecar.engine.ticks - ticks == len(frames)
    finally:
        sc.stop()


def test_players_joining_and_leaving_between_steps_fold_by_id() -> None:
    """A multiplayer frame whose players change between two steps: each player's counts add up under
    its own id, and an event of a player who left is kept but points at no row."""
    base = _inputs(_frames(5.0, 0.2))[0]
    row = base.raw.players[0]
    shots = PLAYER_COLUMNS.index("input.shots_fired")

    def frame(t: float, ids: list[str], shots_each: float, events: list[tuple[float, int]]) -> FrameInput:
        players = np.repeat(row[None, :], len(ids), axis=0)
        players[:, shots] = shots_each
        ev = np.array([(etype, idx, 1.0, t) for etype, idx in events], np.float64).reshape(len(events), 4)
        raw = replace(base.raw, players=players, events=ev, player_ids=ids)
        return FrameInput(raw, 1, t, None, 0.0, {}, base.knobs)

    clock = ModelClock(0.2)
    assert clock.route(frame(0.05, ["a", "b"], 1.0, [])) is None
    assert clock.route(frame(0.10, ["b", "c"], 2.0, [(pb.EVENT_TYPE_KILL, 1)])) is None  # a left, c came
    assert clock.route(frame(0.15, ["a", "c"], 4.0, [(pb.EVENT_TYPE_DEATH, 0)])) is None  # a is back
    step = clock.route(frame(0.20, ["c", "b"], 8.0, []))
    assert step is not None
    got = dict(zip(step.raw.player_ids, step.raw.players[:, shots].tolist(), strict=True))
    assert got == {"c": 2.0 + 4.0 + 8.0, "b": 1.0 + 2.0 + 8.0}
    events = {(int(e), int(i)) for e, i, _, _ in step.raw.events.tolist()}
    assert events == {(pb.EVENT_TYPE_KILL, 0), (pb.EVENT_TYPE_DEATH, -1)}  # c's kill; a's death: a is gone


def test_a_session_holds_its_director_clock_and_steps_from_join_to_leave(bundled: Checkpoint) -> None:
    """One object per session (session.py): joined, it carries its director, model clock and steps in
    flight; resumed with its state, it keeps them; leaving the engine clears them and finishes it."""
    from sidecar.limits import Limits
    from sidecar.session import SessionRegistry, SessionStatus

    engine = Engine(bundled, EngineConfig(device="cpu", max_slots=8))
    registry = SessionRegistry(Limits())
    session, _, _ = registry.open(spec_of(hello(policy="rubber_band")), 0.0)
    assert session.status is SessionStatus.ATTACHED and session.director is None
    engine.join(session)
    director, clock = session.director, session.clock
    assert director is not None and clock is not None and director.session is session
    assert engine.sessions[session.session_id] is session
    for f in _inputs(_frames(30.0, 1.0)):
        f.tracks = session.tracks
        engine.step_now([(session, f)])
    assert not session.steps  # every step answered
    registry.detach(session, 1.0)
    assert session.status is SessionStatus.DETACHED and not session.attached
    resumed, was_resumed, reset = registry.open(replace(spec_of(hello()), resume_token=session.resume_token), 2.0)
    assert resumed is session and was_resumed and not reset and session.status is SessionStatus.ATTACHED
    engine.join(session)
    assert session.director is director and session.clock is clock  # its state kept
    engine.leave(session.session_id)
    assert session.status is SessionStatus.FINISHED and session.director is None and session.clock is None
    assert session.session_id not in engine.sessions
