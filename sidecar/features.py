"""Featurizer: protobuf frames -> fixed-layout float arrays for the player model.

The same code runs in the sidecar (on every accepted frame) and in training (over recorded frames),
so a checkpoint always sees the features it was trained on. The layout is named column by column;
its version and a hash of the names are stored in every checkpoint and checked at load.

Per-player running aggregates (exponential moving averages of deaths, kills, damage...) live in a
small PlayerTrack kept by the session; they make the events of frames that were superseded before
the model ran still count, and they are the signals explanations name.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from sidecar.schema import pb

FEATURE_LAYOUT_VERSION = 1
MAX_MODEL_NPCS = 16  # the model sees the nearest NPCs of each player, padded to this many
ARENA_SCALE = 50.0  # game units that count as "far"; positions are divided by it

PLAYER_COLUMNS: tuple[str, ...] = (
    "dt",
    "health",
    "dead",
    "vel_x",
    "vel_z",
    "speed",
    "move_x",
    "move_y",
    "shots_fired",
    "shots_hit",
    "dodges",
    "apm",
    "damage_taken",
    "damage_dealt",
    "kills",
    "deaths",
    "objectives",
    "paused",
    "difficulty",
    "npcs_alive",
    "nearest_npc",
    "mean_npc_dist",
    "npcs_targeting",
    "npcs_attacking",
    "heart_rate",
    "heart_rate_known",
    "vr",
    "recent_deaths",
    "recent_kills",
    "recent_damage",
    "recent_accuracy",
    "recent_activity",
    "time_since_death",
    "time_alive",
    "session_minutes",
)
NPC_STATES = 7
NPC_TACTICS = 7
NPC_COLUMNS: tuple[str, ...] = (
    "dx",
    "dz",
    "dist",
    "health",
    *(f"state_{i}" for i in range(NPC_STATES)),
    *(f"tactic_{i}" for i in range(NPC_TACTICS)),
    "targets_player",
)
PLAYER_DIM = len(PLAYER_COLUMNS)
NPC_DIM = len(NPC_COLUMNS)
P = {name: i for i, name in enumerate(PLAYER_COLUMNS)}
# Columns that count events: when frames are merged (latest wins) these add up instead of replacing.
EVENT_COLUMNS = np.array(
    [
        P[c]
        for c in ("shots_fired", "shots_hit", "dodges", "damage_taken", "damage_dealt", "kills", "deaths", "objectives")
    ]
)


def layout_hash() -> str:
    text = f"v{FEATURE_LAYOUT_VERSION}|{MAX_MODEL_NPCS}|" + ",".join(PLAYER_COLUMNS) + "|" + ",".join(NPC_COLUMNS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# Time constants (seconds) of the running aggregates.
_TAU_RECENT = 60.0
_TAU_DAMAGE = 20.0


@dataclass
class PlayerTrack:
    """Running aggregates for one player, updated frame by frame."""

    recent_deaths: float = 0.0
    recent_kills: float = 0.0
    recent_damage: float = 0.0
    recent_shots: float = 0.0
    recent_hits: float = 0.0
    recent_activity: float = 0.0
    last_death_time: float = -1.0
    alive_since: float = 0.0


@dataclass
class KnobNormalizer:
    """Maps the game's knob values to one difficulty in [0, 1] (0 easiest)."""

    names: list[str]
    lo: np.ndarray
    span: np.ndarray
    easier_when_higher: np.ndarray

    @classmethod
    def from_specs(cls, specs: list[pb.KnobSpec]) -> KnobNormalizer:
        lo = np.array([k.min_value for k in specs], np.float32)
        span = np.array([max(k.max_value - k.min_value, 1e-9) for k in specs], np.float32)
        return cls([k.name for k in specs], lo, span, np.array([k.higher_is_easier for k in specs], bool))

    def to_difficulty(self, values: np.ndarray) -> float:
        if len(self.names) == 0:
            return 0.5
        total = 0.0
        for v, lo, span, flip in zip(values.tolist(), self._lo, self._span, self._flip, strict=True):
            x = min(max((v - lo) / span, 0.0), 1.0)
            total += 1.0 - x if flip else x
        return total / len(self.names)

    def __post_init__(self) -> None:
        # Plain-float copies: per-frame work on a handful of knobs is cheaper outside numpy.
        self._lo = self.lo.tolist()
        self._span = self.span.tolist()
        self._flip = self.easier_when_higher.tolist()

    def to_values(self, difficulty: float) -> np.ndarray:
        d = np.where(self.easier_when_higher, 1.0 - difficulty, difficulty)
        return (self.lo + d * self.span).astype(np.float32)


@dataclass
class FrameFeatures:
    """One frame, featurized: plain numpy data that the scheduler and runner consume."""

    sequence: int
    game_time: float
    player_ids: list[str]
    players: np.ndarray  # [P, PLAYER_DIM] float32
    npcs: np.ndarray  # [P, MAX_MODEL_NPCS, NPC_DIM] float32
    npc_mask: np.ndarray  # [P, MAX_MODEL_NPCS] bool, True where an NPC is present
    npc_ids: np.ndarray  # [P, MAX_MODEL_NPCS] int64, -1 for padding
    all_npc_ids: list[int] = field(default_factory=list)
    npc_target_player: list[int] = field(default_factory=list)  # per NPC: index into player_ids
    knob_values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    difficulty: float = 0.5


def _decay(dt: float, tau: float) -> float:
    return math.exp(-dt / tau)


# Raw fields pulled out of the protobuf in one pass; named so validation can say which one is bad.
RAW_PLAYER_FIELDS: tuple[str, ...] = (
    "health",
    "max_health",
    "dead",
    "velocity.x",
    "velocity.z",
    "input.move_x",
    "input.move_y",
    "input.shots_fired",
    "input.shots_hit",
    "input.dodges",
    "input.actions_per_minute",
    "biometrics.heart_rate_bpm",
    "has_vr",
    "position.x",
    "position.z",
    "position.y",
    "velocity.y",
    "input.aim_x",
    "input.aim_y",
    "biometrics.skin_conductance_us",
)
RAW_NPC_FIELDS: tuple[str, ...] = ("position.x", "position.z", "health", "state", "tactic", "npc_id", "position.y")
RP = {name: i for i, name in enumerate(RAW_PLAYER_FIELDS)}
_POS_XZ = slice(RP["position.x"], RP["position.z"] + 1)
_EYE_STATES = np.eye(NPC_STATES, dtype=np.float32)
_EYE_TACTICS = np.eye(NPC_TACTICS, dtype=np.float32)
assert RP["position.z"] == RP["position.x"] + 1


@dataclass
class RawFrame:
    """The numbers of one frame as arrays, before validation and featurization."""

    players: np.ndarray  # [P, len(RAW_PLAYER_FIELDS)] float64
    npcs: np.ndarray  # [N, len(RAW_NPC_FIELDS)] float64
    events: np.ndarray  # [E, 4] float64: type, player index (-1 unknown), amount, game_time
    knob_values: np.ndarray  # [K] float32, in the session's knob order (NaN where not reported)
    player_ids: list[str]
    npc_target: list[int]


def extract(frame: pb.Frame, knob_names: list[str]) -> RawFrame:
    players = frame.players
    player_ids = [p.player_id for p in players]
    index_of = {pid: i for i, pid in enumerate(player_ids)}
    single = len(players) == 1
    rows = []
    for p in players:
        # One read per sub-message: each attribute access on a nested message builds a wrapper.
        pos, vel, inp, bio = p.position, p.velocity, p.input, p.biometrics
        rows.append(
            (
                p.health,
                p.max_health,
                float(p.dead),
                vel.x,
                vel.z,
                inp.move_x,
                inp.move_y,
                inp.shots_fired,
                inp.shots_hit,
                inp.dodges,
                inp.actions_per_minute,
                bio.heart_rate_bpm,
                float(p.HasField("vr")),
                pos.x,
                pos.z,
                pos.y,
                vel.y,
                inp.aim_x,
                inp.aim_y,
                bio.skin_conductance_us,
            )
        )
    raw = np.array(rows, np.float64).reshape(len(players), len(RAW_PLAYER_FIELDS))
    npcs = frame.npcs
    nrows = []
    for n in npcs:
        npos = n.position
        nrows.append((npos.x, npos.z, n.health, n.state, n.tactic, n.npc_id, npos.y))
    nraw = np.array(nrows, np.float64).reshape(len(npcs), len(RAW_NPC_FIELDS))
    events = np.array(
        [
            (e.type, index_of.get(e.player_id, 0 if single and not e.player_id else -1), e.amount, e.game_time)
            for e in frame.events
        ],
        np.float64,
    ).reshape(len(frame.events), 4)
    knob_map = {k.name: k.value for k in frame.knobs}
    knob_values = np.array([knob_map.get(n, np.nan) for n in knob_names], np.float32)
    npc_target = [index_of.get(n.target_player_id, -1) for n in npcs]
    return RawFrame(raw, nraw, events, knob_values, player_ids, npc_target)


def featurize(
    raw: RawFrame,
    sequence: int,
    game_time: float,
    tracks: dict[str, PlayerTrack],
    knobs: KnobNormalizer,
    prev_game_time: float | None,
    session_start: float = 0.0,
) -> FrameFeatures:
    """Featurize one validated frame, updating the players' running aggregates in `tracks`."""
    gt = game_time
    dt = 0.0 if prev_game_time is None else min(max(gt - prev_game_time, 0.0), 1.0)
    knob_values = raw.knob_values
    if np.isnan(knob_values).any():
        # A knob the frame did not report counts as its range midpoint.
        knob_values = np.where(np.isnan(knob_values), knobs.lo + 0.5 * knobs.span, knob_values)
    difficulty = knobs.to_difficulty(knob_values)
    player_ids = raw.player_ids
    n_players = len(player_ids)
    rp = raw.players

    # Events -> per-player counts [P, 6]: damage_taken, damage_dealt, kills, deaths, objectives, paused.
    ev = np.zeros((n_players, 6), np.float32)
    for t, i, amount, _ in raw.events.tolist():
        i = int(i)
        if i < 0:
            continue
        if t == pb.EVENT_TYPE_DAMAGE_TAKEN:
            ev[i, 0] += amount
        elif t == pb.EVENT_TYPE_DAMAGE_DEALT:
            ev[i, 1] += amount
        elif t == pb.EVENT_TYPE_KILL:
            ev[i, 2] += 1
        elif t == pb.EVENT_TYPE_DEATH:
            ev[i, 3] += 1
        elif t in (pb.EVENT_TYPE_OBJECTIVE, pb.EVENT_TYPE_CHECKPOINT):
            ev[i, 4] += 1
        elif t == pb.EVENT_TYPE_PAUSE:
            ev[i, 5] = 1
        elif t == pb.EVENT_TYPE_RESUME:
            ev[i, 5] = 0

    nraw = raw.npcs
    alive = nraw[:, 3] != pb.NPC_STATE_DEAD
    target_arr = np.array(raw.npc_target, np.int64)
    n_alive = int(alive.sum())
    attacking = int(((nraw[:, 3] == pb.NPC_STATE_ATTACK) & alive).sum())
    npc_feats = np.zeros((n_players, MAX_MODEL_NPCS, NPC_DIM), np.float32)
    npc_mask = np.zeros((n_players, MAX_MODEL_NPCS), bool)
    npc_ids = np.full((n_players, MAX_MODEL_NPCS), -1, np.int64)
    # NPCs around each player, all players at once: nearest first, dead ones left out. Every player
    # sees the same live NPCs, so each gets the same count k, in its own order.
    k = min(n_alive, MAX_MODEL_NPCS)
    nearest_l = [1.0] * n_players
    mean_l = [1.0] * n_players
    targeting_l = [0] * n_players
    if k:
        pos = rp[:, _POS_XZ]  # [P, 2]
        d = nraw[None, :, :2] - pos[:, None, :]  # [P, N, 2]
        dist = np.hypot(d[..., 0], d[..., 1])  # [P, N]
        order = np.argsort(np.where(alive, dist, np.inf), axis=1, kind="stable")[:, :k]  # [P, k]
        rows_ix = np.arange(n_players)[:, None]
        sel = nraw[order]  # [P, k, RAW_NPC]: one gather, then slices
        dd = sel[..., :2] - pos[:, None, :]
        near = np.hypot(dd[..., 0], dd[..., 1])  # [P, k]
        f = npc_feats[:, :k]
        f[..., 0:2] = dd / ARENA_SCALE
        f[..., 2] = near / ARENA_SCALE
        f[..., 3] = sel[..., 2]
        # One-hot state and tactic by row lookup in small identity tables (cheaper than scattering ones).
        f[..., 4 : 4 + NPC_STATES] = _EYE_STATES[np.clip(sel[..., 3], 0, NPC_STATES - 1).astype(np.int64)]
        f[..., 4 + NPC_STATES : 4 + NPC_STATES + NPC_TACTICS] = _EYE_TACTICS[
            np.clip(sel[..., 4], 0, NPC_TACTICS - 1).astype(np.int64)
        ]
        f[..., -1] = target_arr[order] == rows_ix
        npc_mask[:, :k] = True
        npc_ids[:, :k] = sel[..., 5]
        cap = 2 * ARENA_SCALE
        nearest_l = (np.minimum(near[:, 0], cap) / ARENA_SCALE).tolist()
        mean_l = (np.minimum(near.sum(axis=1) / k, cap) / ARENA_SCALE).tolist()
        targeted = target_arr[alive]
        targeting_l = np.bincount(targeted[targeted >= 0], minlength=n_players)[:n_players].tolist()
    out = np.empty((n_players, PLAYER_DIM), np.float32)
    a_recent = _decay(dt, _TAU_RECENT)
    a_damage = _decay(dt, _TAU_DAMAGE)
    a_act = _decay(dt, 10.0)
    session_minutes = min(max(gt - session_start, 0.0) / 600.0, 3.0)
    rows = rp.tolist()
    evl = ev.tolist()
    for i, pid in enumerate(player_ids):
        r = rows[i]
        e = evl[i]
        nearest, mean_dist, targeting = nearest_l[i], mean_l[i], targeting_l[i]
        max_health = max(r[RP["max_health"]], 1e-6)
        vx, vz = r[RP["velocity.x"]], r[RP["velocity.z"]]
        mx, my = r[RP["input.move_x"]], r[RP["input.move_y"]]
        shots, hits = min(r[RP["input.shots_fired"]], 10.0), min(r[RP["input.shots_hit"]], 10.0)
        damage_taken = min(e[0] / max_health, 5.0)
        hr = r[RP["biometrics.heart_rate_bpm"]]
        # Running aggregates.
        tr = tracks.get(pid)
        if tr is None:
            tr = tracks[pid] = PlayerTrack(alive_since=gt)
        tr.recent_deaths = tr.recent_deaths * a_recent + e[3]
        tr.recent_kills = tr.recent_kills * a_recent + e[2]
        tr.recent_damage = tr.recent_damage * a_damage + damage_taken
        tr.recent_shots = tr.recent_shots * a_recent + shots
        tr.recent_hits = tr.recent_hits * a_recent + hits
        activity = min(abs(mx) + abs(my) + min(shots, 1.0), 2.0) / 2.0
        tr.recent_activity = tr.recent_activity * a_act + activity * (1.0 - a_act)
        if e[3] > 0:
            tr.last_death_time = gt
            tr.alive_since = gt
        since = 60.0 if tr.last_death_time < 0 else gt - tr.last_death_time
        out[i] = (
            dt,
            r[RP["health"]] / max_health,
            r[RP["dead"]],
            min(max(vx / 10.0, -5.0), 5.0),
            min(max(vz / 10.0, -5.0), 5.0),
            min(math.hypot(vx, vz) / 10.0, 5.0),
            mx,
            my,
            shots,
            hits,
            min(r[RP["input.dodges"]], 10.0),
            min(r[RP["input.actions_per_minute"]] / 300.0, 5.0),
            damage_taken,
            min(e[1] / 100.0, 5.0),
            min(e[2], 10.0),
            min(e[3], 10.0),
            min(e[4], 10.0),
            e[5],
            difficulty,
            n_alive / MAX_MODEL_NPCS,
            nearest,
            mean_dist,
            targeting / MAX_MODEL_NPCS,
            attacking / MAX_MODEL_NPCS,
            min(hr / 200.0, 2.0),
            float(hr > 0),
            r[RP["has_vr"]],
            tr.recent_deaths / 5.0,
            tr.recent_kills / 20.0,
            tr.recent_damage,
            tr.recent_hits / (tr.recent_shots + 1.0),
            tr.recent_activity,
            min(since, 120.0) / 60.0,
            min(gt - tr.alive_since, 120.0) / 60.0,
            session_minutes,
        )

    return FrameFeatures(
        sequence=sequence,
        game_time=gt,
        player_ids=player_ids,
        players=out,
        npcs=npc_feats,
        npc_mask=npc_mask,
        npc_ids=npc_ids,
        all_npc_ids=nraw[:, 5].astype(np.int64).tolist(),
        npc_target_player=raw.npc_target,
        knob_values=knob_values,
        difficulty=difficulty,
    )
