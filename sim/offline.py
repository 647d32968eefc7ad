"""Offline simulation: many sessions in one process, as fast as the CPU allows.

Every telemetry tick, all live sessions' frames are stepped through the sidecar's own engine in one
batch (the same scheduler, runner and directors as `metabrain serve`, minus the network). Frames go
straight from the game into arrays (Game.raw_frame); when recording, the game builds real protobuf
frames instead and the recording holds exactly what a live sidecar would have received and sent.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sidecar.engine.engine import Engine, EngineConfig
from sidecar.features import FrameInput
from sidecar.model.checkpoint import Checkpoint, load_checkpoint
from sidecar.operations.recording import RecordingWriter
from sidecar.policies.contextual import ContextualPolicy
from sidecar.policies.difficulty import DEFAULT_BAND, DifficultyPolicy, DirectorNote, Observation
from sidecar.session import Session
from sidecar.wire.frames import extract
from sidecar.wire.hello import spec_of
from sidecar.wire.schema import pb
from sim.game import KNOBS, TACTICS, TICK_HZ, FrameTimer, Game, goodbye, hello
from sim.players import PlayerModel
from sim.policy_labels import PolicyRun
from sim.populations import Population

KNOB_NAMES = [k.name for k in KNOBS]


class RandomWalkPolicy(DifficultyPolicy):
    """Data generation: a difficulty that wanders and sometimes jumps, so data covers every level."""

    name = "random_walk"

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.level = self.rng.random()

    def target(self, obs: Observation) -> float:
        if self.rng.random() < obs.dt / 40.0:
            self.level = self.rng.random()
        self.level = min(max(self.level + self.rng.gauss(0.0, 0.08) * math.sqrt(obs.dt), 0.0), 1.0)
        return self.level


class PiecewisePolicy(DifficultyPolicy):
    """Data generation for the value heads: hold a level drawn uniformly at random for 200-400 s, then
    draw again. A switch is a randomised experiment: what follows it depends on the new level alone
    given the player's state, which is what the value heads must learn (a level that drifts with the
    state, or averages out, cannot teach it). The level is logged in the guidance's director note."""

    name = "piecewise"

    def __init__(self, seed: int, designer_level: float) -> None:
        self.rng = random.Random(seed)
        self.designer = designer_level
        self.until = -1.0
        self.note = DirectorNote(designer_level=designer_level)

    def target(self, obs: Observation) -> float:
        if obs.game_time >= self.until:
            level = self.rng.random()
            self.until = obs.game_time + self.rng.uniform(200.0, 400.0)
            self.note = DirectorNote(target_level=level, designer_level=self.designer, propensity=1.0)
        return self.note.target_level if self.note is not None else self.designer


@dataclass
class SessionSummary:
    index: int
    archetype: str
    skill: float
    policy: str
    seconds: float
    quit: bool
    kills: int
    deaths: int
    difficulty_mean: float
    difficulty_min: float
    difficulty_max: float
    in_band_share: float
    hints: bool
    curve: list[tuple[float, float, float]] = field(default_factory=list)  # (time, difficulty, p_fail)
    drawn: str = ""  # the director a portfolio session was given


@dataclass
class _Live:
    index: int
    player: PlayerModel
    game: Game
    session: Session
    arm: str  # the director's label (a policy, or a mixture's arm)
    writer: RecordingWriter | None
    random_tactics: bool
    tactic_rng: random.Random
    timer: FrameTimer
    diffs: list[float] = field(default_factory=list)
    in_band: int = 0
    frames: int = 0
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    prev_time: float | None = None


@dataclass
class OfflineConfig:
    sessions: int = 100
    max_seconds: float = 900.0
    telemetry_hz: float = 5.0  # frames a second the game sends (the arena ticks at 30 Hz)
    seed: int = 0
    policies: list[str] = field(default_factory=lambda: ["predictive"])  # assigned round-robin
    params: dict[str, str] = field(default_factory=dict)
    npc_hints: bool = True
    random_tactics: bool = False  # data generation: NPCs pick random tactics instead of hints
    random_static_levels: bool = False  # data generation: each static session gets its own random level
    record_dir: str | None = None
    curve_every_s: float = 5.0
    batch_sessions: int = 4096  # sessions played at once; the next player starts when one ends
    # Each session draws its director from these (label, probability) pairs instead of `policies`; the
    # label and its probability go into the recording, for off-policy evaluation of each of them.
    mixture: list[tuple[PolicyRun, float]] = field(default_factory=list)


def run_offline(
    population: Population,
    cfg: OfflineConfig,
    checkpoint: Checkpoint | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[SessionSummary]:
    ckpt = checkpoint or load_checkpoint()
    engine = Engine(
        ckpt, EngineConfig(device="cpu", max_batch=cfg.batch_sessions * 2, max_slots=cfg.batch_sessions + 8)
    )
    players = population.players(cfg.sessions)
    pending = list(enumerate(players))
    pending.reverse()
    live: list[_Live] = []
    done: list[SessionSummary] = []
    while pending or live:
        while pending and len(live) < cfg.batch_sessions:
            i, player = pending.pop()
            live.append(_open(i, player, cfg, engine, ckpt.version))
        frames: list[tuple[Session, FrameInput]] = []
        for s in live:
            s.timer.play(s.game, s.player.act)
            frames.append((s.session, _frame(s, s.timer.interval(s.game))))
        answers = engine.step_now(frames)
        still: list[_Live] = []
        for s in live:
            responses = answers.get(s.session.session_id, [])
            _apply(s, responses, cfg)
            if s.game.over or s.game.t >= cfg.max_seconds:
                done.append(_close(s, engine, cfg))
                if progress is not None:
                    progress(1)
            else:
                still.append(s)
        live = still
    done.sort(key=lambda r: r.index)
    return done


def _open(i: int, player: PlayerModel, cfg: OfflineConfig, engine: Engine, model_version: str) -> _Live:
    policy = cfg.policies[i % len(cfg.policies)]
    seed = cfg.seed * 1_000_003 + i
    params = dict(cfg.params)
    arm, propensity = policy, 1.0
    if cfg.mixture:
        runs, weights = zip(*cfg.mixture, strict=True)
        pick = random.Random(seed ^ 0xA55).choices(range(len(runs)), weights)[0]
        run, propensity = runs[pick], weights[pick]
        arm, policy, params = run.label, run.policy, {**params, **run.params}
        if not run.hints:
            params["npc_hints"] = "off"
    if not cfg.npc_hints:
        params["npc_hints"] = "off"
    if policy == "static" and cfg.random_static_levels:
        params["level"] = f"{random.Random(seed).random():.3f}"
    h = hello(
        policy="static" if policy in ("random_walk", "piecewise") else policy,
        params=params,
        capabilities=(pb.CAPABILITY_NPC_HINTS, pb.CAPABILITY_INSIGHT),
    )
    session = Session(
        session_id=f"sim-{i}",
        resume_token="",
        spec=spec_of(h),
        capabilities=frozenset(h.capabilities),
        created_at=0.0,
        last_seen=0.0,
    )
    engine.join(session)
    director = session.director
    assert director is not None
    if policy == "random_walk":
        director.policy = RandomWalkPolicy(seed)
    elif policy == "piecewise":
        director.policy = PiecewisePolicy(seed, director.default_level)
    writer = None
    if cfg.record_dir:
        writer = RecordingWriter(
            Path(cfg.record_dir) / f"sim-{cfg.seed}-{i:06d}.mbrec",
            {
                "game_id": h.game_id,
                "model_version": model_version,
                "created_at": time.time(),
                "session_id": f"sim-{i}",
                "source": "metabrain sim",
                "policy": policy,
                # As a served recording has them: a mixture's draw, or else the portfolio's own (its
                # candidate and that draw's probability), or the policy itself.
                "experiment": "mixture" if cfg.mixture else session.experiment,
                "arm": arm if cfg.mixture else (session.arm or arm),
                "assignment_propensity": propensity if cfg.mixture else session.assignment_propensity,
                "archetype": player.traits.archetype,
            },
            flush_every=256,
        )
        writer.write(0.0, "in", pb.SessionRequest(hello=h).SerializeToString())
    return _Live(
        i,
        player,
        Game(seed),
        session,
        arm,
        writer,
        cfg.random_tactics,
        random.Random(seed ^ 0x5EED),
        FrameTimer(cfg.telemetry_hz),
    )


def _frame(s: _Live, frame_dt: float) -> FrameInput:
    sess = s.session
    if s.writer is not None:
        frame = s.game.frame(frame_dt)
        s.writer.write(s.game.t, "in", pb.SessionRequest(frame=frame).SerializeToString())
        seq, gt, raw = frame.sequence, frame.game_time, extract(frame, sess.knobs.names)
    else:
        seq, gt, raw = s.game.raw_frame(frame_dt, sess.knobs.names)
    if sess.start_game_time is None:
        sess.start_game_time = gt
    f = FrameInput(raw, seq, gt, s.prev_time, sess.start_game_time, sess.tracks, sess.knobs)
    s.prev_time = gt
    return f


def _apply(s: _Live, responses: list[pb.SessionResponse], cfg: OfflineConfig) -> None:
    game = s.game
    for resp in responses:
        if s.writer is not None:
            s.writer.write(game.t, "out", resp.SerializeToString())
        if resp.WhichOneof("kind") != "guidance":
            continue
        g = resp.guidance
        game.apply_knobs({k.name: k.value for k in g.knobs})
        if not s.random_tactics:
            for h in g.npc_hints:
                game.apply_hint(h.npc_id, h.tactic, h.aggression)
        d = s.session.knobs.to_difficulty(np.array([game.knobs[n] for n in s.session.knobs.names], np.float32))
        s.diffs.append(d)
        s.frames += 1
        p_fail = g.insights[0].p_fail if g.insights else 0.0
        lo, hi = DEFAULT_BAND
        s.in_band += lo <= p_fail <= hi
        if not s.curve or game.t - s.curve[-1][0] >= cfg.curve_every_s:
            s.curve.append((game.t, d, p_fail))
    if s.random_tactics:
        for n in game.npcs:
            if not n.hinted or s.tactic_rng.random() < 0.6 / cfg.telemetry_hz:  # ~0.6 re-draws a second
                n.tactic, n.hinted = s.tactic_rng.choice(TACTICS), True
                n.aggression = s.tactic_rng.random()


def _close(s: _Live, engine: Engine, cfg: OfflineConfig) -> SessionSummary:
    director = s.session.director
    drawn = director.arm.label if director is not None and director.arm is not None else ""
    if director is not None and isinstance(director.policy, ContextualPolicy):
        drawn = director.policy.drawn
    engine.leave(s.session.session_id, by_player=s.game.over)
    if s.writer is not None:
        s.writer.write(
            s.game.t,
            "in",
            goodbye(s.game.over).SerializeToString(),
        )
        s.writer.close()
    diffs = s.diffs or [0.5]
    st = s.game.stats
    return SessionSummary(
        index=s.index,
        archetype=s.player.traits.archetype,
        skill=s.player.traits.skill,
        policy=s.arm,
        seconds=s.game.t,
        quit=s.game.over,
        kills=st.kills,
        deaths=st.deaths,
        difficulty_mean=float(np.mean(diffs)),
        difficulty_min=float(np.min(diffs)),
        difficulty_max=float(np.max(diffs)),
        in_band_share=s.in_band / max(s.frames, 1),
        hints=cfg.npc_hints,
        curve=s.curve,
        drawn=drawn,
    )


__all__ = ["TICK_HZ", "OfflineConfig", "PiecewisePolicy", "RandomWalkPolicy", "SessionSummary", "run_offline"]


def play_fixed(player: PlayerModel, seed: int, level: float, max_seconds: float = 1200.0) -> tuple[float, bool, Game]:
    """One session at a fixed difficulty with no director at all (population checks, benchmarks)."""
    from sim.game import knob_values_for

    game = Game(seed)
    game.apply_knobs(knob_values_for(level))
    while not game.over and game.t < max_seconds:
        game.step(player.act(game))
    return game.t, game.over, game
