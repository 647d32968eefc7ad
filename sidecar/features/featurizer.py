"""The featurizer: validated frames -> the model's input rows (sidecar/features/layout.py).

The same code runs in the sidecar (on every accepted frame) and in training (over recorded frames),
so a checkpoint always sees the features it was trained on. The definition is the array program
here, in named stages over a round of frames: per-frame scalars, events, the NPCs each player sees,
the running aggregates, then the player columns, assembled by name into the layout's order. Where it
was built, _frame_kernel.c does the same arithmetic a frame at a time, to the array program's bits for
a frame alone (tests/test_frame_kernel.py), and runs instead: ~40 numpy calls a round are most of a
small tick's featurizing (0.28 ms of it for one frame against 0.014 in C).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from sidecar.columns import EventType, NpcState
from sidecar.features.knobs import KnobSet
from sidecar.features.layout import (
    ARENA_SCALE,
    MAX_MODEL_NPCS,
    NPC_COLUMNS,
    NPC_DIM,
    NPC_STATES,
    NPC_TACTICS,
    PLAYER_COLUMNS,
    PLAYER_DIM,
    RAW_NPC_FIELDS,
    RAW_PLAYER_FIELDS,
    RP,
)
from sidecar.features.raw import RawFrame
from sidecar.features.tracks import TAU_ACTIVITY, TAU_DAMAGE, TAU_RECENT, TRACK_FIELDS, PlayerTrack

try:
    from sidecar.features import _frame_kernel
except ImportError:  # no C compiler where it was installed: the array program does every round
    _frame_kernel = None  # type: ignore[assignment]

__all__ = ["FrameFeatures", "FrameInput", "compiled_featurizer_available", "featurize", "featurize_many"]

_RN = {name: i for i, name in enumerate(RAW_NPC_FIELDS)}
_POS_XZ = [RP["position.x"], RP["position.z"]]
_NPC_XZ = [_RN["position.x"], _RN["position.z"]]
_NPC_X, _NPC_Z, _NPC_HEALTH = _RN["position.x"], _RN["position.z"], _RN["health"]
_NPC_STATE, _NPC_TACTIC, _NPC_TARGET, _NPC_ID = _RN["state"], _RN["tactic"], _RN["target"], _RN["npc_id"]
_EYE_STATES = np.eye(NPC_STATES, dtype=np.float32)
_EYE_TACTICS = np.eye(NPC_TACTICS, dtype=np.float32)


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
    knob_values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # as reported; NaN: not
    difficulty: float = 0.5


@dataclass
class FrameInput:
    """A validated frame waiting to be featurized, with what featurizing it needs of its session."""

    raw: RawFrame
    sequence: int
    game_time: float
    prev_game_time: float | None  # the game time of the session's previous accepted frame
    session_start: float
    tracks: dict[str, PlayerTrack]  # the session's running aggregates, updated in place
    knobs: KnobSet


def featurize(
    raw: RawFrame,
    sequence: int,
    game_time: float,
    tracks: dict[str, PlayerTrack],
    knobs: KnobSet,
    prev_game_time: float | None,
    session_start: float = 0.0,
) -> FrameFeatures:
    """Featurize one validated frame, updating the players' running aggregates in `tracks`."""
    return featurize_many([FrameInput(raw, sequence, game_time, prev_game_time, session_start, tracks, knobs)])[0]


def featurize_many(frames: Sequence[FrameInput], compiled: bool = True) -> list[FrameFeatures]:
    """Featurize frames of many sessions (a session's frames in the order given): the sidecar's tick,
    a training batch of recordings. compiled=False: the array program only (`serve --pure-python`)."""
    out: list[FrameFeatures] = []
    order: list[int] = []
    rest = list(range(len(frames)))
    # A session's later frame needs the aggregates its earlier one updates: rounds of at most one
    # frame per session (one round, almost always).
    while rest:
        seen: set[int] = set()
        now: list[int] = []
        later: list[int] = []
        for i in rest:
            key = id(frames[i].tracks)
            (later if key in seen else now).append(i)
            seen.add(key)
        out.extend(_featurize_round([frames[i] for i in now], compiled))
        order.extend(now)
        rest = later
    if len(order) > 1 and order != sorted(order):
        by_index = dict(zip(order, out, strict=True))
        out = [by_index[i] for i in range(len(frames))]
    return out


def _featurize_round(frames: list[FrameInput], compiled: bool = True) -> list[FrameFeatures]:
    """Frames of distinct sessions, in order: in C a frame at a time where it was built (20x faster
    for a tick of one frame, 1.2x at 4,096: `python -m sim.bench.featurize`), else, and for the frames
    it declines, as array programs."""
    if _KERNEL is None or not compiled:
        return _featurize_by_width(frames)
    return _featurize_compiled(frames, _KERNEL)


def _featurize_by_width(frames: list[FrameInput]) -> list[FrameFeatures]:
    """Frames of distinct sessions, in order, as array programs over frames of similar NPC counts: NPC
    arrays are padded to a program's widest frame, and frames with a few NPCs are not padded to one
    frame's hundreds (that would be rows x 256 for the whole tick)."""
    by_width: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        by_width.setdefault(_width_bucket(len(f.raw.npcs)), []).append(i)
    if len(by_width) == 1:
        return _featurize_arrays(frames)
    out: list[FrameFeatures | None] = [None] * len(frames)
    for group in by_width.values():
        for i, features in zip(group, _featurize_arrays([frames[i] for i in group]), strict=True):
            out[i] = features
    return [features for features in out if features is not None]


def _width_bucket(npcs: int) -> int:
    """NPC counts featurized together: up to 16, 64, 256, ... (the smallest power of 4 from 16 that holds them)."""
    width = 16
    while width < npcs:
        width *= 4
    return width


def _nearest(key: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k smallest keys, smallest first, ties by index: the first k of a
    stable argsort. key: [R, N]. With many more columns than k (a crowded multiplayer frame) it
    selects the k first and sorts only those (the stable sort of [2048, 128] took 7 ms)."""
    if key.shape[1] <= 4 * k:
        return np.argsort(key, axis=1, kind="stable")[:, :k]
    kth = np.partition(key, k - 1, axis=1)[:, k - 1 : k]  # [R, 1] each row's k-th smallest key
    take = key <= kth
    over = np.flatnonzero(take.sum(axis=1) > k)  # rows where keys tie with the k-th: the lowest-index
    if len(over):  # ones of those fill the row up to k
        sub, kth_o = key[over], kth[over]
        less, tie = sub < kth_o, sub == kth_o
        take[over] = less | (tie & (np.cumsum(tie, axis=1) <= k - less.sum(axis=1, keepdims=True)))
    cols = np.nonzero(take)[1].reshape(len(key), k)  # [R, k] in index order
    by_key = np.argsort(np.take_along_axis(key, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, by_key, axis=1)


def _featurize_arrays(frames: list[FrameInput]) -> list[FrameFeatures]:
    """Frames of distinct sessions. Rows: all players of all frames, frame after frame."""
    per_frame = _PerFrame.of(frames)
    rows = _Rows.of(frames, per_frame)
    events = _event_counts(frames, rows)  # [R, 6]
    npcs = _NpcView.of(frames, rows)
    recent = _update_tracks(frames, rows, events)
    players = _assemble(_player_columns(rows, per_frame, events, npcs, recent))  # [R, PLAYER_DIM]
    out = []
    for j, f in enumerate(frames):
        span = slice(rows.offsets[j], rows.offsets[j + 1])
        all_ids = npcs.id_list[npcs.starts[j] : npcs.starts[j + 1]]
        tables = (players, npcs.features, npcs.mask, npcs.ids)
        out.append(_features_of(f, span, tables, all_ids, per_frame.difficulty[j]))
    return out


def _features_of(
    f: FrameInput,
    span: slice,
    tables: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    all_npc_ids: list[int],
    difficulty: float,
) -> FrameFeatures:
    """A frame's features: its rows `span` of the round's (players, npcs, npc mask, npc ids) arrays."""
    players, npcs, mask, ids = tables
    return FrameFeatures(
        sequence=f.sequence,
        game_time=f.game_time,
        player_ids=f.raw.player_ids,
        players=players[span],
        npcs=npcs[span],
        npc_mask=mask[span],
        npc_ids=ids[span],
        all_npc_ids=all_npc_ids,
        knob_values=f.raw.knob_values,
        difficulty=difficulty,
    )


def _kernel_if_layout_matches() -> ModuleType | None:
    """The C kernel, if it was built and writes this layout (else None: a changed layout turns it off)."""
    k = _frame_kernel
    if k is None:
        return None
    codes = {t.name: int(t) for t in EventType} | {"ATTACK": int(NpcState.ATTACK), "DEAD": int(NpcState.DEAD)}
    same = (
        k.PLAYER_COLUMNS == PLAYER_COLUMNS
        and k.NPC_COLUMNS == NPC_COLUMNS
        and k.RAW_PLAYER_FIELDS == RAW_PLAYER_FIELDS
        and k.RAW_NPC_FIELDS == RAW_NPC_FIELDS
        and k.TRACK_FIELDS == TRACK_FIELDS
        and k.MAX_MODEL_NPCS == MAX_MODEL_NPCS
        and k.ARENA_SCALE == ARENA_SCALE
        and all(codes.get(name) == code for name, code in k.CODES.items())
    )
    return k if same else None


_KERNEL = _kernel_if_layout_matches()


def compiled_featurizer_available() -> bool:
    """Whether frames are featurized in C (the kernel built, and writing this layout)."""
    return _KERNEL is not None


_DECAY_TAUS = np.array([TAU_RECENT, TAU_DAMAGE, TAU_ACTIVITY])
_decays: dict[float, tuple[float, float, float]] = {}


def _decay(dt: float) -> tuple[float, float, float]:
    """exp(-dt / tau) of the three time constants, by numpy's exp (as the array program's; libm's can
    differ in the last bit), kept per dt: a game sends at a fixed rate, so a few dts recur."""
    got = _decays.get(dt)
    if got is None:
        if len(_decays) >= 4096:
            _decays.clear()
        a, b, c = np.exp(-np.full(3, dt) / _DECAY_TAUS).tolist()
        got = _decays[dt] = (a, b, c)
    return got


def _featurize_compiled(frames: list[FrameInput], kernel: Any) -> list[FrameFeatures]:
    """Frames of distinct sessions, each featurized alone in C into one set of arrays for the round;
    the frames it declines go through the array program together."""
    per_frame = _PerFrame.of(frames)
    n_rows = sum(len(f.raw.player_ids) for f in frames)
    players = np.empty((n_rows, PLAYER_DIM), np.float32)
    npcs = np.empty((n_rows, MAX_MODEL_NPCS, NPC_DIM), np.float32)
    mask = np.empty((n_rows, MAX_MODEL_NPCS), bool)
    ids = np.empty((n_rows, MAX_MODEL_NPCS), np.int64)
    out: list[FrameFeatures | None] = []
    declined: list[int] = []
    row = 0
    for j, f in enumerate(frames):
        tracks = [_track(f, pid) for pid in f.raw.player_ids]
        raw, dt = f.raw, per_frame.dt[j]
        got = kernel.featurize_frame(
            raw.players, raw.npcs, raw.events, [t.values for t in tracks], players, npcs, mask, ids, row,
            dt, per_frame.difficulty[j], per_frame.minutes[j], f.game_time, *_decay(dt),
        )  # fmt: skip
        if got is None:
            declined.append(j)
            out.append(None)
        else:
            all_ids, values = got
            for t, v in zip(tracks, values, strict=True):
                t.values = v
            span = slice(row, row + len(tracks))
            out.append(_features_of(f, span, (players, npcs, mask, ids), all_ids, per_frame.difficulty[j]))
        row += len(tracks)
    if declined:
        for j, features in zip(declined, _featurize_by_width([frames[j] for j in declined]), strict=True):
            out[j] = features
    return [features for features in out if features is not None]


def _track(f: FrameInput, pid: str) -> PlayerTrack:
    """The player's running aggregates, begun at this frame for a new player."""
    tr = f.tracks.get(pid)
    if tr is None:
        tr = f.tracks[pid] = PlayerTrack.new(f.game_time)
    return tr


@dataclass
class _PerFrame:
    """One value per frame (plain Python: a handful of frames, one number each)."""

    dt: list[float]  # seconds since the session's previous frame, in [0, 1]
    difficulty: list[float]  # the knobs the frame reports, as one level (unreported: range midpoint)
    minutes: list[float]  # session minutes / 10, in [0, 3]

    @classmethod
    def of(cls, frames: list[FrameInput]) -> _PerFrame:
        dts, difficulties, minutes = [], [], []
        any_missing = bool(np.isnan(np.concatenate([f.raw.knob_values for f in frames])).any())
        for f in frames:
            gt, prev = f.game_time, f.prev_game_time
            dts.append(0.0 if prev is None else min(max(gt - prev, 0.0), 1.0))
            kv = f.raw.knob_values
            if any_missing and np.isnan(kv).any():
                kv = np.where(np.isnan(kv), f.knobs.midpoints(), kv)
            difficulties.append(f.knobs.to_difficulty(kv))
            minutes.append(min(max(gt - f.session_start, 0.0) / 600.0, 3.0))
        return cls(dts, difficulties, minutes)


@dataclass
class _Rows:
    """The round's player rows: every player of every frame, frame after frame."""

    n: int
    offsets: list[int]  # [F + 1] each frame's first row
    frame: np.ndarray  # [R] the frame of each row
    raw: np.ndarray  # [R, RAW_PLAYER] the raw player columns
    game_time: np.ndarray  # [R]
    dt: np.ndarray  # [R]

    @classmethod
    def of(cls, frames: list[FrameInput], per_frame: _PerFrame) -> _Rows:
        counts = [len(f.raw.player_ids) for f in frames]
        offsets = np.cumsum([0, *counts]).tolist()
        fi = np.repeat(np.arange(len(frames)), counts)
        raw = np.concatenate([f.raw.players for f in frames]) if len(frames) > 1 else frames[0].raw.players
        game_time = np.array([f.game_time for f in frames])[fi]
        return cls(offsets[-1], offsets, fi, raw, game_time, np.array(per_frame.dt)[fi])


# Event types -> the column of _event_counts they count in (by amount, by one, or set / cleared).
_DAMAGE_TAKEN, _DAMAGE_DEALT, _KILLS, _DEATHS, _OBJECTIVES, _PAUSED = range(6)
_BY_AMOUNT = {EventType.DAMAGE_TAKEN: _DAMAGE_TAKEN, EventType.DAMAGE_DEALT: _DAMAGE_DEALT}
_BY_ONE = {EventType.KILL: _KILLS, EventType.DEATH: _DEATHS, EventType.OBJECTIVE: _OBJECTIVES}
_BY_ONE[EventType.CHECKPOINT] = _OBJECTIVES


def _event_counts(frames: list[FrameInput], rows: _Rows) -> np.ndarray:
    """[R, 6] float64 per player row: damage taken, damage dealt, kills, deaths, objectives, paused."""
    ev = np.zeros((rows.n, 6), np.float32)  # summed in float32, as recorded datasets were
    for f, off in zip(frames, rows.offsets, strict=False):
        for t, i, amount, _ in f.raw.events.tolist():
            if i < 0:
                continue
            i = off + int(i)
            if t in _BY_AMOUNT:
                ev[i, _BY_AMOUNT[t]] += amount
            elif t in _BY_ONE:
                ev[i, _BY_ONE[t]] += 1
            elif t == EventType.PAUSE:
                ev[i, _PAUSED] = 1
            elif t == EventType.RESUME:
                ev[i, _PAUSED] = 0
    return ev.astype(np.float64)


@dataclass
class _NpcView:
    """What each player row sees of its frame's NPCs: the live ones, nearest first, up to MAX_MODEL_NPCS."""

    features: np.ndarray  # [R, MAX_MODEL_NPCS, NPC_DIM] float32
    mask: np.ndarray  # [R, MAX_MODEL_NPCS] bool
    ids: np.ndarray  # [R, MAX_MODEL_NPCS] int64, -1 for padding
    nearest: np.ndarray  # [R] distance to the nearest / ARENA_SCALE (1 with none)
    mean_dist: np.ndarray  # [R]
    targeting: np.ndarray  # [R] NPCs targeting the row's player
    alive: np.ndarray  # [R] live NPCs in the row's frame
    attacking: np.ndarray  # [R] attacking NPCs in the row's frame
    id_list: list[int]  # every NPC id of the round, frame after frame
    starts: list[int]  # [F + 1] each frame's first in id_list

    @classmethod
    def of(cls, frames: list[FrameInput], rows: _Rows) -> _NpcView:
        n_frames, fi, n_rows = len(frames), rows.frame, rows.n
        # NPCs padded to the most any frame has: [F, N, RAW_NPC], each NPC's target as a row index.
        n_npcs = [len(f.raw.npcs) for f in frames]
        width = max(n_npcs, default=0)
        present = np.arange(width)[None, :] < np.array(n_npcs)[:, None]  # [F, N]
        flat = np.concatenate([f.raw.npcs for f in frames]) if n_frames > 1 else frames[0].raw.npcs
        nraw = np.zeros((n_frames, width, len(RAW_NPC_FIELDS)))
        nraw[present] = flat  # row-major: frame after frame, as concatenated
        flat_target = flat[:, _NPC_TARGET].astype(np.int64)
        target = np.full((n_frames, width), -1, np.int64)
        target[present] = np.where(flat_target >= 0, flat_target + np.repeat(rows.offsets[:-1], n_npcs), -1)
        alive = present & (nraw[..., _NPC_STATE] != NpcState.DEAD)  # [F, N]
        n_alive = alive.sum(axis=1)  # [F]
        attacking = ((nraw[..., _NPC_STATE] == NpcState.ATTACK) & alive).sum(axis=1)  # [F]
        view = cls(
            features=np.zeros((n_rows, MAX_MODEL_NPCS, NPC_DIM), np.float32),
            mask=np.zeros((n_rows, MAX_MODEL_NPCS), bool),
            ids=np.full((n_rows, MAX_MODEL_NPCS), -1, np.int64),
            nearest=np.ones(n_rows),
            mean_dist=np.ones(n_rows),
            targeting=np.zeros(n_rows),
            alive=n_alive[fi].astype(np.float64),
            attacking=attacking[fi].astype(np.float64),
            id_list=flat[:, _NPC_ID].astype(np.int64).tolist(),
            starts=np.cumsum([0, *n_npcs]).tolist(),
        )
        k_r = np.minimum(n_alive, MAX_MODEL_NPCS)[fi]  # [R] how many each player sees
        if k_r.max(initial=0):
            view._nearest_npcs(rows, nraw, alive, target, k_r)
        return view

    def _nearest_npcs(
        self, rows: _Rows, nraw: np.ndarray, alive: np.ndarray, target: np.ndarray, k_r: np.ndarray
    ) -> None:
        fi, k = rows.frame, int(k_r.max())
        pos = rows.raw[:, _POS_XZ]  # [R, 2]
        # Squared distances order the NPCs (np.hypot is 10x slower over [R, N] here); per axis from
        # contiguous [F, N] copies (gathering [R, N, 2] out of nraw was 3x slower).
        nx, nz = np.ascontiguousarray(nraw[..., _NPC_X]), np.ascontiguousarray(nraw[..., _NPC_Z])
        dx, dz = nx[fi] - pos[:, 0:1], nz[fi] - pos[:, 1:2]
        order = _nearest(np.where(alive[fi], dx * dx + dz * dz, np.inf), k)  # [R, k]
        rows_ix = np.arange(rows.n)[:, None]
        shown = np.arange(k)[None, :] < k_r[:, None]  # [R, k] slots holding a live NPC
        sel = nraw[fi[:, None], order]  # [R, k, RAW_NPC]: one gather, then slices
        dd = sel[..., _NPC_XZ] - pos[:, None, :]
        near = np.where(shown, np.hypot(dd[..., 0], dd[..., 1]), 0.0)  # [R, k]
        nf = self.features[:, :k]
        nf[..., 0:2] = dd / ARENA_SCALE
        nf[..., 2] = near / ARENA_SCALE
        nf[..., 3] = sel[..., _NPC_HEALTH]
        # One-hot state and tactic by row lookup in small identity tables (cheaper than scattering ones).
        nf[..., 4 : 4 + NPC_STATES] = _EYE_STATES[np.clip(sel[..., _NPC_STATE], 0, NPC_STATES - 1).astype(np.int64)]
        nf[..., 4 + NPC_STATES : 4 + NPC_STATES + NPC_TACTICS] = _EYE_TACTICS[
            np.clip(sel[..., _NPC_TACTIC], 0, NPC_TACTICS - 1).astype(np.int64)
        ]
        nf[..., -1] = target[fi][rows_ix, order] == rows_ix
        nf *= shown[..., None]
        self.mask[:, :k] = shown
        self.ids[:, :k] = np.where(shown, sel[..., _NPC_ID], -1)
        cap = 2 * ARENA_SCALE
        some = k_r > 0
        self.nearest = np.where(some, np.minimum(near[:, 0], cap) / ARENA_SCALE, 1.0)
        self.mean_dist = np.where(some, np.minimum(near.sum(axis=1) / np.maximum(k_r, 1), cap) / ARENA_SCALE, 1.0)
        targeted = target[alive]
        self.targeting = np.bincount(targeted[targeted >= 0], minlength=rows.n)[: rows.n].astype(np.float64)


def _update_tracks(frames: list[FrameInput], rows: _Rows, events: np.ndarray) -> dict[str, np.ndarray]:
    """The players' running aggregates after this round's frames (TRACK_FIELDS, each [R]): gathered
    from each player's track, updated as arrays, written back."""
    track_objs = [_track(f, pid) for f in frames for pid in f.raw.player_ids]
    prev = dict(
        zip(TRACK_FIELDS, np.array([t.values for t in track_objs]).reshape(rows.n, len(TRACK_FIELDS)).T, strict=True)
    )
    a_recent = np.exp(-rows.dt / TAU_RECENT)
    a_damage = np.exp(-rows.dt / TAU_DAMAGE)
    a_act = np.exp(-rows.dt / TAU_ACTIVITY)
    col = rows.raw.T
    mx, my = col[RP["input.move_x"]], col[RP["input.move_y"]]
    shots = np.minimum(col[RP["input.shots_fired"]], 10.0)
    activity = np.minimum(np.abs(mx) + np.abs(my) + np.minimum(shots, 1.0), 2.0) / 2.0
    died = events[:, _DEATHS] > 0
    new = {
        "recent_deaths": prev["recent_deaths"] * a_recent + events[:, _DEATHS],
        "recent_kills": prev["recent_kills"] * a_recent + events[:, _KILLS],
        "recent_damage": prev["recent_damage"] * a_damage + _damage_taken(rows, events),
        "recent_shots": prev["recent_shots"] * a_recent + shots,
        "recent_hits": prev["recent_hits"] * a_recent + np.minimum(col[RP["input.shots_hit"]], 10.0),
        "recent_activity": prev["recent_activity"] * a_act + activity * (1.0 - a_act),
        "last_death_time": np.where(died, rows.game_time, prev["last_death_time"]),
        "alive_since": np.where(died, rows.game_time, prev["alive_since"]),
    }
    for t, values in zip(track_objs, np.stack([new[name] for name in TRACK_FIELDS], axis=1).tolist(), strict=True):
        t.values = values
    return new


def _max_health(rows: _Rows) -> np.ndarray:
    return np.asarray(np.maximum(rows.raw[:, RP["max_health"]], 1e-6), np.float64)


def _damage_taken(rows: _Rows, events: np.ndarray) -> np.ndarray:
    return np.asarray(np.minimum(events[:, _DAMAGE_TAKEN] / _max_health(rows), 5.0), np.float64)


def _player_columns(
    rows: _Rows, per_frame: _PerFrame, events: np.ndarray, npcs: _NpcView, recent: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Every player feature by name, each [R] (layout.py says what each one is)."""
    col = rows.raw.T  # raw player columns, each [R]
    vx, vz = col[RP["velocity.x"]], col[RP["velocity.z"]]
    hr = col[RP["biometrics.heart_rate_bpm"]]
    last_death = recent["last_death_time"]
    since = np.where(last_death < 0, 60.0, rows.game_time - last_death)
    shots = np.minimum(col[RP["input.shots_fired"]], 10.0)
    hits = np.minimum(col[RP["input.shots_hit"]], 10.0)
    return {
        "dt": rows.dt,
        "health": col[RP["health"]] / _max_health(rows),
        "dead": col[RP["dead"]],
        "vel_x": np.clip(vx / 10.0, -5.0, 5.0),
        "vel_z": np.clip(vz / 10.0, -5.0, 5.0),
        "speed": np.minimum(np.hypot(vx, vz) / 10.0, 5.0),
        "move_x": col[RP["input.move_x"]],
        "move_y": col[RP["input.move_y"]],
        "shots_fired": shots,
        "shots_hit": hits,
        "dodges": np.minimum(col[RP["input.dodges"]], 10.0),
        "apm": np.minimum(col[RP["input.actions_per_minute"]] / 300.0, 5.0),
        "damage_taken": _damage_taken(rows, events),
        "damage_dealt": np.minimum(events[:, _DAMAGE_DEALT] / 100.0, 5.0),
        "kills": np.minimum(events[:, _KILLS], 10.0),
        "deaths": np.minimum(events[:, _DEATHS], 10.0),
        "objectives": np.minimum(events[:, _OBJECTIVES], 10.0),
        "paused": events[:, _PAUSED],
        "difficulty": np.array(per_frame.difficulty, np.float64)[rows.frame],
        "npcs_alive": npcs.alive / MAX_MODEL_NPCS,
        "nearest_npc": npcs.nearest,
        "mean_npc_dist": npcs.mean_dist,
        "npcs_targeting": npcs.targeting / MAX_MODEL_NPCS,
        "npcs_attacking": npcs.attacking / MAX_MODEL_NPCS,
        "heart_rate": np.minimum(hr / 200.0, 2.0),
        "heart_rate_known": (hr > 0).astype(np.float64),
        "vr": col[RP["vr"]],
        "recent_deaths": recent["recent_deaths"] / 5.0,
        "recent_kills": recent["recent_kills"] / 20.0,
        "recent_damage": recent["recent_damage"],
        # Accuracy; shots are counts >= 0 (validated).
        "recent_accuracy": recent["recent_hits"] / np.maximum(recent["recent_shots"] + 1.0, 1.0),
        "recent_activity": recent["recent_activity"],
        "time_since_death": np.minimum(since, 120.0) / 60.0,
        "time_alive": np.minimum(rows.game_time - recent["alive_since"], 120.0) / 60.0,
        "session_minutes": np.array(per_frame.minutes, np.float64)[rows.frame],
    }


def _assemble(columns: dict[str, np.ndarray]) -> np.ndarray:
    """[R, PLAYER_DIM] float32 in the layout's order, by name: a column missing, extra or misspelt fails."""
    if columns.keys() != set(PLAYER_COLUMNS):
        missing, extra = set(PLAYER_COLUMNS) - columns.keys(), columns.keys() - set(PLAYER_COLUMNS)
        raise AssertionError(f"featurizer and layout disagree: missing {sorted(missing)}, extra {sorted(extra)}")
    return np.stack([columns[name] for name in PLAYER_COLUMNS], axis=1).astype(np.float32)
