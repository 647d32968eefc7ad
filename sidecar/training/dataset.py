"""Recordings -> training examples, with the sidecar's own featurizer.

Each recorded session is replayed through the featurizer exactly as the sidecar would see it, giving one
sequence per player. Labels come from the future of the session:

  fail         a DEATH of the player within fail_horizon_s after the frame
  quit         the session ends with a QUIT within quit_horizon_s after the frame
  level_fail   mean difficulty over the fail horizon (what the p_fail head is conditioned on)
  level_quit   mean difficulty over the quit horizon
  frustration  deaths in [t - 60 s, t + 30 s] / 3, clipped to [0, 1]
  engagement   mean future activity over 30 s, scaled down when the player quits within it
  skill        kills / (kills + 4 deaths + 5) over the whole session
  npc_hit      for each nearby NPC, whether it damages the player within npc_horizon_s, under the
               tactic it was following (npc_tactic), so the NPC head learns what each tactic does
  played       the share of the next value_s seconds the player went on playing (1 if they did not
               quit within it); `played_known` is False where the session's recording ended (a time
               cap) before that horizon did, so the answer is not known
  level_value  mean difficulty over the value horizon (the level the value surface is read at)
  value_mask   the frames that teach the value surface (training/value_fit.py): those of sessions whose
               difficulty was set at random, independently of the player (piecewise and static
               sessions), where the outcome is known. Elsewhere the level follows the player, and its
               effect could not be told from the player's own.

Splits are by session, never by frame, from a seeded hash of the file name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sidecar.columns import EventType
from sidecar.engine.clock import DEFAULT_MODEL_RATE_HZ, ModelClock
from sidecar.features import (
    MAX_MODEL_NPCS,
    NPC_COLUMNS,
    FrameFeatures,
    FrameInput,
    KnobSet,
    P,
    PlayerTrack,
    featurize_many,
)
from sidecar.features.layout import NPC_STATES
from sidecar.operations.recording import read_recording
from sidecar.wire.frames import extract

TACTIC0 = NPC_COLUMNS.index("tactic_0")


@dataclass
class Horizons:
    fail_s: float = 10.0
    quit_s: float = 60.0
    npc_s: float = 5.0
    value_s: float = 300.0


# Sessions whose difficulty is set at random, independently of the player: `perturbed` too (the designer's
# level plus a logged random offset), which is what a studio serves to refit the value surface from its
# own players (README); left out, its recordings taught the surface nothing and the refit kept the prior.
RANDOMISED_POLICIES = frozenset({"piecewise", "static", "perturbed"})


@dataclass
class SessionExamples:
    name: str
    players: np.ndarray  # [T, Fp] float32
    npcs: np.ndarray  # [T, N, Fn] float16
    npc_mask: np.ndarray  # [T, N] bool
    fail: np.ndarray  # [T] float32
    quit: np.ndarray  # [T]
    level_fail: np.ndarray  # [T]
    level_quit: np.ndarray  # [T]
    frustration: np.ndarray  # [T]
    engagement: np.ndarray  # [T]
    skill: np.ndarray  # [T]
    npc_hit: np.ndarray  # [T, N] float32
    npc_tactic: np.ndarray  # [T, N] int8: model tactic index 0..5, -1 where unknown or absent
    played: np.ndarray  # [T] float32 in [0, 1]
    played_known: np.ndarray  # [T] bool
    level_value: np.ndarray  # [T] float32
    value_mask: np.ndarray  # [T] bool

    def __len__(self) -> int:
        return int(self.players.shape[0])


def _window_mean(times: np.ndarray, values: np.ndarray, horizon: float) -> np.ndarray:
    """Mean of values over (t, t + horizon] for every t (the current value where the window is empty)."""
    csum = np.concatenate([[0.0], np.cumsum(values)])
    lo = np.searchsorted(times, times, side="right")
    hi = np.searchsorted(times, times + horizon, side="right")
    n = hi - lo
    mean = (csum[hi] - csum[lo]) / np.maximum(n, 1)
    return np.where(n > 0, mean, values).astype(np.float32)


def _any_within(times: np.ndarray, events: np.ndarray, horizon: float) -> np.ndarray:
    """For each t: is there an event time in (t, t + horizon]?"""
    if events.size == 0:
        return np.zeros(times.shape, np.float32)
    ev = np.sort(events)
    lo = np.searchsorted(ev, times, side="right")
    hi = np.searchsorted(ev, times + horizon, side="right")
    return (hi > lo).astype(np.float32)


def _count_between(times: np.ndarray, events: np.ndarray, before: float, after: float) -> np.ndarray:
    ev = np.sort(events)
    return (np.searchsorted(ev, times + after, side="right") - np.searchsorted(ev, times - before, side="left")).astype(
        np.float32
    )


@dataclass
class _Recorded:
    """One recording, read: its frames ready to featurize and the events its labels come from."""

    path: str
    inputs: list[FrameInput]
    deaths: dict[str, list[float]]
    kills: dict[str, int]
    hits: dict[str, list[tuple[float, int]]]
    quit_time: float | None
    end_time: float = 0.0  # game time of the last frame
    policy: str = ""  # the recording header's (simulated data), else ""
    randomised: bool = False  # the level was set at random, independently of the player


def _read(path: str | Path, model_hz: float = DEFAULT_MODEL_RATE_HZ) -> _Recorded:
    """A recording's frames as the sidecar's model clock steps them (at model_hz, whatever rate the game
    sent: the frames between steps folded in), and the events its labels come from."""
    rec = read_recording(path)
    knobs: KnobSet | None = None
    tracks: dict[str, PlayerTrack] = {}
    prev: float | None = None
    start: float | None = None
    clock = ModelClock(1.0 / model_hz if model_hz > 0 else 0.0)
    out = _Recorded(str(path), [], {}, {}, {}, None, policy=str(rec.header.get("policy", "")))
    for _, req in rec.requests():
        kind = req.WhichOneof("kind")
        if kind == "hello":
            knobs = KnobSet.from_specs(list(req.hello.knobs))
            continue
        if kind != "frame" or knobs is None:
            continue
        frame = req.frame
        if start is None:
            start = frame.game_time
        raw = extract(frame, knobs.names)
        step = clock.route(FrameInput(raw, frame.sequence, frame.game_time, prev, start, tracks, knobs))
        if step is not None:
            out.inputs.append(step)
        prev = frame.game_time
        out.end_time = frame.game_time
        for e in frame.events:
            pid = e.player_id
            if e.type == EventType.DEATH:
                out.deaths.setdefault(pid, []).append(e.game_time)
            elif e.type == EventType.KILL:
                out.kills[pid] = out.kills.get(pid, 0) + 1
            elif e.type == EventType.DAMAGE_TAKEN:
                out.hits.setdefault(pid, []).append((e.game_time, e.npc_id))
            elif e.type == EventType.QUIT:
                out.quit_time = e.game_time
    out.randomised = out.policy in RANDOMISED_POLICIES
    return out


def examples_of(
    paths: Sequence[str | Path], horizons: Horizons, model_hz: float = DEFAULT_MODEL_RATE_HZ
) -> list[SessionExamples]:
    """Examples of several recordings, featurized side by side: step r of every recording in one
    featurize_many call, as the sidecar featurizes a tick (a session's steps stay in order). One example
    per model step at model_hz, whatever the recording's telemetry rate (0: one per frame)."""
    recs = [_read(p, model_hz) for p in paths]
    features: list[list[FrameFeatures]] = [[] for _ in recs]
    for r in range(max((len(x.inputs) for x in recs), default=0)):
        live = [i for i, x in enumerate(recs) if r < len(x.inputs)]
        for i, f in zip(live, featurize_many([recs[i].inputs[r] for i in live]), strict=True):
            features[i].append(f)
    out = []
    for rec, feats in zip(recs, features, strict=True):
        out.extend(_examples(rec, feats, horizons))
    return out


def _examples(rec: _Recorded, feats: list[FrameFeatures], horizons: Horizons) -> list[SessionExamples]:
    path, deaths, kills, hits, quit_time = rec.path, rec.deaths, rec.kills, rec.hits, rec.quit_time
    rows: dict[str, list] = {}
    for f in feats:
        for i, pid in enumerate(f.player_ids):
            rows.setdefault(pid, []).append((f.game_time, f.players[i], f.npcs[i], f.npc_mask[i], f.npc_ids[i]))
    out = []
    for pid, seq in rows.items():
        times = np.array([r[0] for r in seq], np.float64)
        players = np.stack([r[1] for r in seq]).astype(np.float32)
        npcs = np.stack([r[2] for r in seq]).astype(np.float16)
        mask = np.stack([r[3] for r in seq])
        ids = np.stack([r[4] for r in seq])
        d = np.array(deaths.get(pid, []), np.float64)
        level = players[:, P["difficulty"]]
        fail = _any_within(times, d, horizons.fail_s)
        quit_ = (
            ((quit_time - times) <= horizons.quit_s).astype(np.float32)
            if quit_time is not None
            else np.zeros(len(times), np.float32)
        )
        frustration = np.clip(_count_between(times, d, 60.0, 30.0) / 3.0, 0.0, 1.0)
        activity = players[:, P["recent_activity"]]
        quits_soon = (quit_time - times <= 30.0) if quit_time is not None else np.zeros(len(times), bool)
        engagement = np.clip(_window_mean(times, activity, 30.0) * np.where(quits_soon, 0.3, 1.0), 0.0, 1.0)
        k = kills.get(pid, 0)
        skill = np.full(len(times), k / (k + 4.0 * len(d) + 5.0), np.float32)
        # NPC labels: did NPC j (by id) damage the player within the horizon after t?
        npc_hit = np.zeros(ids.shape, np.float32)
        by_npc: dict[int, list[float]] = {}
        for t, nid in hits.get(pid, []):
            by_npc.setdefault(nid, []).append(t)
        for nid, ts in by_npc.items():
            sel = ids == nid
            if sel.any():
                ti = np.nonzero(sel)[0]
                npc_hit[sel] = _any_within(times[ti], np.array(ts), horizons.npc_s)
        # How much of the next value_s seconds the player goes on playing: until the quit, or all of it
        # when no quit comes within it; unknown when the recording ends (a cap) before the horizon does.
        end = quit_time if quit_time is not None else rec.end_time
        played = np.clip((end - times) / horizons.value_s, 0.0, 1.0).astype(np.float32)
        known = (quit_time is not None) | (rec.end_time - times >= horizons.value_s)
        known = np.broadcast_to(known, times.shape).copy()
        tactic_1hot = npcs[:, :, TACTIC0 : TACTIC0 + 7].astype(np.float32)
        tactic = np.where(mask & (tactic_1hot[:, :, 1:].sum(-1) > 0), tactic_1hot[:, :, 1:].argmax(-1), -1).astype(
            np.int8
        )
        out.append(
            SessionExamples(
                name=f"{Path(path).name}:{pid}",
                players=players,
                npcs=npcs,
                npc_mask=mask,
                fail=fail,
                quit=quit_,
                level_fail=_window_mean(times, level, horizons.fail_s),
                level_quit=_window_mean(times, level, horizons.quit_s),
                frustration=frustration.astype(np.float32),
                engagement=engagement.astype(np.float32),
                skill=skill,
                npc_hit=npc_hit,
                npc_tactic=tactic,
                played=played,
                played_known=known,
                level_value=_window_mean(times, level, horizons.value_s),
                value_mask=known & rec.randomised,
            )
        )
    return out


def split_of(name: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """Deterministic split by session name: 'train', 'val' or 'test'."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") / 2**64
    if h < test_fraction:
        return "test"
    if h < test_fraction + val_fraction:
        return "val"
    return "train"


FIELDS = (
    "players",
    "npcs",
    "npc_mask",
    "fail",
    "quit",
    "level_fail",
    "level_quit",
    "frustration",
    "engagement",
    "skill",
    "npc_hit",
    "npc_tactic",
    "played",
    "played_known",
    "level_value",
    "value_mask",
)


def save_examples(
    path: str | Path, sessions: Iterable[SessionExamples], model_hz: float = DEFAULT_MODEL_RATE_HZ
) -> int:
    """Write examples; model_hz (the model clock they were stepped at) goes with them into the checkpoint."""
    sessions = list(sessions)
    lengths = np.array([len(s) for s in sessions], np.int64)
    arrays = {f: np.concatenate([getattr(s, f) for s in sessions]) for f in FIELDS}
    arrays["lengths"] = lengths
    arrays["names"] = np.array([s.name for s in sessions])
    arrays["model_hz"] = np.array(model_hz)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return int(lengths.sum())


def examples_model_hz(path: str | Path) -> float:
    """The model clock a dataset's examples were stepped at (datasets from before it was kept: 5 Hz)."""
    z = np.load(path)
    return float(z["model_hz"]) if "model_hz" in z.files else DEFAULT_MODEL_RATE_HZ


def load_examples(path: str | Path) -> list[SessionExamples]:
    z = np.load(path)
    lengths = z["lengths"]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    arrays = {f: z[f] for f in FIELDS}
    names = z["names"]
    return [
        SessionExamples(name=str(names[i]), **{f: arrays[f][bounds[i] : bounds[i + 1]] for f in FIELDS})
        for i in range(len(lengths))
    ]


assert NPC_STATES == 7 and MAX_MODEL_NPCS > 0
