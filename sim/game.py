"""The arena game core: deterministic for a seed, no I/O, stepped at a fixed tick.

One player avatar against waves of NPC enemies in a square arena (x, z in [-ARENA, ARENA]). NPCs
follow the tactic hints they are given (hold, advance, flank, retreat, regroup, pressure) or default
to advancing. Four difficulty knobs (enemy accuracy, damage, speed, spawn rate) shape the fight.
The game produces exactly the protobuf frames an engine plugin would send (`frame()`), and the same
numbers as arrays for the in-process fast path (`raw_frame()`), which the tests hold equal.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from sidecar.features import RAW_NPC_FIELDS, RAW_PLAYER_FIELDS, RawFrame
from sidecar.policies.director import TACTIC_ENUMS
from sidecar.wire.schema import pb

ARENA = 20.0
TICK_HZ = 30
DT = 1.0 / TICK_HZ
PLAYER_SPEED = 6.0
PLAYER_MAX_HEALTH = 100.0
FIRE_INTERVAL = 0.25
DODGE_COOLDOWN = 1.5
DODGE_TIME = 0.35
RESPAWN_S = 3.0
MAX_NPCS = 8
NPC_RANGE = 16.0
PLAYER_RANGE = 22.0
PLAYER_ID = "p1"

KNOBS: tuple[pb.KnobSpec, ...] = (
    pb.KnobSpec(name="enemy_accuracy", min_value=0.05, max_value=0.65, default_value=0.35, max_change_per_second=0.1),
    pb.KnobSpec(name="enemy_damage", min_value=3.0, max_value=16.0, default_value=9.5, max_change_per_second=2.5),
    pb.KnobSpec(name="enemy_speed", min_value=1.5, max_value=5.5, default_value=3.5, max_change_per_second=0.7),
    pb.KnobSpec(name="spawn_rate", min_value=0.08, max_value=0.7, default_value=0.39, max_change_per_second=0.1),
)
# The arena implements every tactic the director knows.
TACTICS: tuple[int, ...] = tuple(int(t) for t in TACTIC_ENUMS)


def knob_values_for(difficulty: float) -> dict[str, float]:
    d = min(max(difficulty, 0.0), 1.0)
    return {k.name: k.min_value + d * (k.max_value - k.min_value) for k in KNOBS}


@dataclass
class Npc:
    npc_id: int
    x: float
    z: float
    health: float = 1.0
    state: int = pb.NPC_STATE_CHASE
    tactic: int = pb.NPC_TACTIC_ADVANCE
    hinted: bool = False
    aggression: float = 0.5
    cooldown: float = 1.0
    flank_sign: float = 1.0


@dataclass
class Action:
    move_x: float = 0.0
    move_z: float = 0.0
    aim_at: int = -1  # npc id, -1 for none
    shoot: bool = False
    dodge: bool = False
    hit_chance: float = 0.0  # the player's chance to hit with this shot (from their skill and state)
    quit: bool = False


@dataclass
class PlayerAvatar:
    x: float = 0.0
    z: float = 0.0
    vx: float = 0.0
    vz: float = 0.0
    health: float = PLAYER_MAX_HEALTH
    dead: bool = False
    respawn_at: float = 0.0
    fire_cd: float = 0.0
    dodge_cd: float = 0.0
    dodging_until: float = -1.0
    shots_fired: int = 0
    shots_hit: int = 0
    dodges: int = 0
    actions: float = 0.0


@dataclass
class Stats:
    kills: int = 0
    deaths: int = 0
    damage_taken: float = 0.0
    damage_dealt: float = 0.0
    shots: int = 0
    hits: int = 0


@dataclass
class Game:
    seed: int
    session_name: str = "sim"
    t: float = 0.0
    tick: int = 0
    knobs: dict[str, float] = field(default_factory=lambda: {k.name: k.default_value for k in KNOBS})
    player: PlayerAvatar = field(default_factory=PlayerAvatar)
    npcs: list[Npc] = field(default_factory=list)
    events: list[tuple[int, int, float, float]] = field(default_factory=list)  # type, npc id, amount, time
    stats: Stats = field(default_factory=Stats)
    over: bool = False
    next_npc_id: int = 1
    sequence: int = 0
    _acc_moves: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # move x,z aim x,z (last)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    # -- control ----------------------------------------------------------------------------
    def apply_knobs(self, values: dict[str, float]) -> None:
        for k in KNOBS:
            if k.name in values:
                self.knobs[k.name] = min(max(float(values[k.name]), k.min_value), k.max_value)

    def apply_hint(self, npc_id: int, tactic: int, aggression: float) -> None:
        for n in self.npcs:
            if n.npc_id == npc_id:
                if tactic == pb.NPC_TACTIC_UNSPECIFIED:  # nothing asked: its own behaviour again
                    n.tactic, n.hinted, n.aggression = Npc.tactic, False, Npc.aggression
                else:
                    n.tactic, n.hinted, n.aggression = tactic, True, aggression
                return

    def nearest_npc(self) -> Npc | None:
        p = self.player
        best, best_d = None, 1e9
        for n in self.npcs:
            d = (n.x - p.x) ** 2 + (n.z - p.z) ** 2
            if d < best_d:
                best, best_d = n, d
        return best

    # -- simulation -------------------------------------------------------------------------
    def step(self, action: Action) -> None:
        """Advance one tick of DT seconds."""
        if self.over:
            return
        rng, p, t = self.rng, self.player, self.t
        if action.quit:
            self.events.append((pb.EVENT_TYPE_QUIT, 0, 0.0, t))
            self.over = True
            return
        if p.dead:
            p.vx = p.vz = 0.0
            if t >= p.respawn_at:
                p.dead, p.health = False, PLAYER_MAX_HEALTH
                p.x = p.z = 0.0
                self.events.append((pb.EVENT_TYPE_CHECKPOINT, 0, 0.0, t))
        else:
            self._player_act(action, rng, t)
        self._spawn(rng, t)
        self._npcs_act(rng, t)
        self.t = round(t + DT, 9)
        self.tick += 1

    def _player_act(self, a: Action, rng: random.Random, t: float) -> None:
        p = self.player
        mag = math.hypot(a.move_x, a.move_z)
        mx, mz = (a.move_x / mag, a.move_z / mag) if mag > 1.0 else (a.move_x, a.move_z)
        speed = PLAYER_SPEED * (2.2 if t < p.dodging_until else 1.0)
        p.vx, p.vz = mx * speed, mz * speed
        p.x = min(max(p.x + p.vx * DT, -ARENA), ARENA)
        p.z = min(max(p.z + p.vz * DT, -ARENA), ARENA)
        self._acc_moves[0], self._acc_moves[1] = mx, mz
        p.actions += abs(mx) + abs(mz) > 0.1
        p.fire_cd -= DT
        p.dodge_cd -= DT
        if a.dodge and p.dodge_cd <= 0:
            p.dodging_until, p.dodge_cd = t + DODGE_TIME, DODGE_COOLDOWN
            p.dodges += 1
            p.actions += 1
        if a.shoot and p.fire_cd <= 0 and a.aim_at >= 0:
            target = next((n for n in self.npcs if n.npc_id == a.aim_at), None)
            p.fire_cd = FIRE_INTERVAL
            p.shots_fired += 1
            p.actions += 1
            self.stats.shots += 1
            if target is not None:
                dx, dz = target.x - p.x, target.z - p.z
                d = math.hypot(dx, dz)
                self._acc_moves[2], self._acc_moves[3] = dx / (d + 1e-9), dz / (d + 1e-9)
                if d <= PLAYER_RANGE and rng.random() < a.hit_chance:
                    p.shots_hit += 1
                    self.stats.hits += 1
                    dmg = 0.34
                    target.health -= dmg
                    self.events.append((pb.EVENT_TYPE_DAMAGE_DEALT, target.npc_id, 34.0, t))
                    self.stats.damage_dealt += 34.0
                    if target.health <= 0.0:
                        self.npcs.remove(target)
                        self.events.append((pb.EVENT_TYPE_KILL, target.npc_id, 0.0, t))
                        self.stats.kills += 1

    def _spawn(self, rng: random.Random, t: float) -> None:
        if len(self.npcs) >= MAX_NPCS or rng.random() >= self.knobs["spawn_rate"] * DT:
            return
        side = rng.randrange(4)
        u = rng.uniform(-ARENA, ARENA)
        x, z = ((u, -ARENA), (u, ARENA), (-ARENA, u), (ARENA, u))[side]
        self.npcs.append(
            Npc(self.next_npc_id, x, z, flank_sign=rng.choice((-1.0, 1.0)), cooldown=rng.uniform(0.5, 1.5))
        )
        self.events.append((pb.EVENT_TYPE_SPAWN, self.next_npc_id, 0.0, t))
        self.next_npc_id += 1

    def _npcs_act(self, rng: random.Random, t: float) -> None:
        p = self.player
        acc = self.knobs["enemy_accuracy"]
        dmg = self.knobs["enemy_damage"]
        speed = self.knobs["enemy_speed"]
        if self.npcs:
            cx = sum(n.x for n in self.npcs) / len(self.npcs)
            cz = sum(n.z for n in self.npcs) / len(self.npcs)
        dodging = t < p.dodging_until
        for n in self.npcs:
            dx, dz = p.x - n.x, p.z - n.z
            d = math.hypot(dx, dz) + 1e-9
            ux, uz = dx / d, dz / d
            tactic = n.tactic
            if tactic == pb.NPC_TACTIC_HOLD:
                vx = vz = 0.0
            elif tactic == pb.NPC_TACTIC_FLANK:
                radial = (d - 8.0) / 8.0
                vx, vz = ux * radial - uz * n.flank_sign, uz * radial + ux * n.flank_sign
            elif tactic == pb.NPC_TACTIC_RETREAT:
                vx, vz = (-ux, -uz) if d < 16.0 else (0.0, 0.0)
            elif tactic == pb.NPC_TACTIC_REGROUP:
                gx, gz = cx - n.x, cz - n.z
                g = math.hypot(gx, gz) + 1e-9
                vx, vz = (gx / g, gz / g) if g > 2.0 else (0.0, 0.0)
            elif tactic == pb.NPC_TACTIC_PRESSURE:
                vx, vz = (ux, uz) if d > 3.0 else (0.0, 0.0)
            else:  # advance (and the default)
                vx, vz = (ux, uz) if d > 6.0 else (0.0, 0.0)
            v = math.hypot(vx, vz)
            if v > 1.0:
                vx, vz = vx / v, vz / v
            n.x = min(max(n.x + vx * speed * DT, -ARENA), ARENA)
            n.z = min(max(n.z + vz * speed * DT, -ARENA), ARENA)
            n.cooldown -= DT
            in_range = d <= NPC_RANGE and not p.dead
            n.state = pb.NPC_STATE_ATTACK if in_range else (pb.NPC_STATE_IDLE if v < 0.1 else pb.NPC_STATE_CHASE)
            if in_range and n.cooldown <= 0.0:
                rate = 0.6 if tactic == pb.NPC_TACTIC_PRESSURE else 1.0
                if tactic == pb.NPC_TACTIC_RETREAT:
                    rate = 1.6
                n.cooldown = rate * (1.25 - 0.5 * n.aggression) * rng.uniform(0.8, 1.2)
                # Strafing across the NPC's line of fire makes the player harder to hit.
                lateral = abs(p.vx * uz - p.vz * ux) / PLAYER_SPEED
                hit = (
                    acc * (1.0 - d / (NPC_RANGE * 1.6)) * (0.25 if dodging else 1.0) * (1.0 - 0.45 * min(lateral, 1.0))
                )
                if rng.random() < hit:
                    self._hurt(dmg, n.npc_id, t)
                    if p.dead:
                        break

    def _hurt(self, amount: float, npc_id: int, t: float) -> None:
        p = self.player
        p.health -= amount
        self.stats.damage_taken += amount
        self.events.append((pb.EVENT_TYPE_DAMAGE_TAKEN, npc_id, amount, t))
        if p.health <= 0.0:
            p.health, p.dead, p.respawn_at = 0.0, True, t + RESPAWN_S
            self.stats.deaths += 1
            self.events.append((pb.EVENT_TYPE_DEATH, npc_id, 0.0, t))
            self.npcs.clear()  # a fresh wave after each death gives the player a breather

    # -- telemetry --------------------------------------------------------------------------
    def _take_input(self) -> tuple[int, int, int, float]:
        p = self.player
        shots, hits, dodges, apm = p.shots_fired, p.shots_hit, p.dodges, p.actions
        p.shots_fired = p.shots_hit = p.dodges = 0
        p.actions = 0.0
        return shots, hits, dodges, apm

    def frame(self, frame_dt: float) -> pb.Frame:
        """The protobuf frame an engine would send now; consumes the events and input since the last."""
        p = self.player
        self.sequence += 1
        shots, hits, dodges, actions = self._take_input()
        f = pb.Frame(sequence=self.sequence, game_time=self.t)
        pl = f.players.add(player_id=PLAYER_ID, health=p.health, max_health=PLAYER_MAX_HEALTH, dead=p.dead)
        pl.position.x, pl.position.z = p.x, p.z
        pl.velocity.x, pl.velocity.z = p.vx, p.vz
        inp = pl.input
        inp.move_x, inp.move_y, inp.aim_x, inp.aim_y = self._acc_moves
        inp.shots_fired, inp.shots_hit, inp.dodges = shots, hits, dodges
        inp.actions_per_minute = actions * 60.0 / max(frame_dt, 1e-6)
        for n in self.npcs:
            m = f.npcs.add(
                npc_id=n.npc_id,
                kind="grunt",
                health=max(n.health, 0.0),
                state=n.state,
                target_player_id=PLAYER_ID,
                tactic=n.tactic,
            )
            m.position.x, m.position.z = n.x, n.z
        for etype, npc_id, amount, et in self.events:
            f.events.add(type=etype, player_id=PLAYER_ID, npc_id=npc_id, amount=amount, game_time=et)
        self.events.clear()
        for name, value in self.knobs.items():
            f.knobs.add(name=name, value=value)
        return f

    def raw_frame(self, frame_dt: float, knob_names: list[str]) -> tuple[int, float, RawFrame]:
        """The same numbers as frame(), straight into arrays (the offline fast path)."""
        f32 = np.float32
        p = self.player
        self.sequence += 1
        shots, hits, dodges, actions = self._take_input()
        mx, mz, ax, az = self._acc_moves
        # Values pass through float32 exactly as a protobuf float field would; columns in RAW_*_FIELDS order.
        apm = actions * 60.0 / max(frame_dt, 1e-6)
        row = (p.x, 0.0, p.z, p.vx, 0.0, p.vz, p.health, PLAYER_MAX_HEALTH, float(p.dead), mx, mz, ax, az)
        players = np.array([(*row, shots, hits, dodges, apm, 0.0, 0.0, 0.0)], f32).astype(np.float64)
        assert players.shape[1] == len(RAW_PLAYER_FIELDS)
        npcs = (
            np.array([(n.x, 0.0, n.z, max(n.health, 0.0), n.state, n.tactic, 0.0, 0.0) for n in self.npcs], f32)
            .astype(np.float64)
            .reshape(len(self.npcs), len(RAW_NPC_FIELDS))
        )
        npcs[:, RAW_NPC_FIELDS.index("npc_id")] = [n.npc_id for n in self.npcs]
        events = np.array([(e, 0, a, t) for e, _, a, t in self.events], np.float64).reshape(len(self.events), 4)
        events[:, 2] = events[:, 2].astype(f32)
        self.events.clear()
        knobs = np.array([self.knobs[k] for k in knob_names], f32)
        raw = RawFrame(players, npcs, events, knobs, [PLAYER_ID])  # every NPC targets the one player (row 0)
        return self.sequence, self.t, raw


class FrameTimer:
    """When a game that sends `hz` telemetry frames a second sends each one. The arena ticks at TICK_HZ;
    frame k goes out at the first tick at or after k / hz seconds, so above TICK_HZ some frames show the
    same tick again (as an engine rendering faster than its physics would send). `interval` is the game
    time the frame covers, what its rates are measured over."""

    def __init__(self, hz: float) -> None:
        if not hz > 0:
            raise ValueError(f"telemetry rate must be > 0 frames a second, got {hz}")
        self.hz = hz
        self.k = 0
        self.last_tick = 0

    @property
    def due_tick(self) -> int:
        return math.ceil((self.k + 1) * TICK_HZ / self.hz - 1e-9)

    def play(self, game: Game, act: Callable[[Game], Action]) -> None:
        """Step the game (its player acting each tick) up to the next frame's send time, or its end."""
        due = self.due_tick
        while game.tick < due and not game.over:
            game.step(act(game))

    def interval(self, game: Game) -> float:
        """The game time the next frame covers; advances the timer."""
        self.k += 1
        interval = (game.tick - self.last_tick) * DT
        self.last_tick = game.tick
        return interval


def hello(
    policy: str = "",
    consent: bool = False,
    params: dict[str, str] | None = None,
    capabilities: tuple[int, ...] = (pb.CAPABILITY_NPC_HINTS, pb.CAPABILITY_INSIGHT),
    tick_rate_hz: float = 10.0,
    resume_token: str = "",
    player_id: str = "",
) -> pb.Hello:
    return pb.Hello(
        protocol_version=1,
        game_id="metabrain.sim.arena",
        game_build="0.1.0",
        knobs=list(KNOBS),
        npc_tactics=cast(Any, list(TACTICS)),
        tick_rate_hz=tick_rate_hz,
        capabilities=cast(Any, list(capabilities)),
        recording_consent=consent,
        policy=policy,
        policy_params=params or {},
        resume_token=resume_token,
        player_id=player_id,
    )


def goodbye(over: bool) -> pb.SessionRequest:
    """The goodbye that ends a simulated session: the player quit (`over`), or the simulation's time
    limit cut the session short (`cut_short`: the portfolio counts it as censored, not as a quit)."""
    return pb.SessionRequest(goodbye=pb.Goodbye(reason="quit" if over else "time limit", cut_short=not over))
