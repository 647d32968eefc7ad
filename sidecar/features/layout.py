"""The model's input layout: one row per player (PLAYER_FEATURES) and, per player, its nearest NPCs
(NPC_FEATURES), described column by column with the range the featurizer keeps each one in.

The featurizer assembles its rows by these names (and checks it made every one of them); checkpoints
store `layout_hash()` (version, names, order, ranges) and refuse to load against another layout.
The raw columns a frame carries are described in sidecar/columns.py; these are what the model sees.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from sidecar.columns import NPC_STATE_MAX, NPC_TABLE, NPC_TACTIC_MAX, PLAYER_TABLE

__all__ = [
    "ARENA_SCALE",
    "EVENT_COLUMNS",
    "FEATURE_LAYOUT_VERSION",
    "MAX_MODEL_NPCS",
    "NPC_COLUMNS",
    "NPC_DIM",
    "NPC_FEATURES",
    "NPC_STATES",
    "NPC_TACTICS",
    "PLAYER_COLUMNS",
    "PLAYER_DIM",
    "PLAYER_FEATURES",
    "RAW_NPC_FIELDS",
    "RAW_PLAYER_FIELDS",
    "RP",
    "Feature",
    "P",
    "layout_hash",
]

FEATURE_LAYOUT_VERSION = 1
MAX_MODEL_NPCS = 16  # the model sees the nearest NPCs of each player, padded to this many
ARENA_SCALE = 50.0  # game units that count as "far"; positions are divided by it
NPC_STATES = NPC_STATE_MAX + 1
NPC_TACTICS = NPC_TACTIC_MAX + 1
_INF = math.inf


@dataclass(frozen=True)
class Feature:
    name: str
    lo: float  # the featurizer's output stays in [lo, hi] for any frame validation accepts
    hi: float
    doc: str = ""


def _f(name: str, lo: float, hi: float, doc: str = "") -> Feature:
    return Feature(name, lo, hi, doc)


PLAYER_FEATURES: tuple[Feature, ...] = (
    _f("dt", 0, 1, "seconds since the session's previous frame, capped at 1"),
    _f("health", 0, _INF, "health / max_health"),
    _f("dead", 0, 1),
    _f("vel_x", -5, 5, "velocity / 10 units/s"),
    _f("vel_z", -5, 5),
    _f("speed", 0, 5),
    _f("move_x", -1.001, 1.001, "movement stick"),
    _f("move_y", -1.001, 1.001),
    _f("shots_fired", 0, 10, "this frame, capped"),
    _f("shots_hit", 0, 10),
    _f("dodges", 0, 10),
    _f("apm", 0, 5, "actions per minute / 300"),
    _f("damage_taken", 0, 5, "this frame, of max health"),
    _f("damage_dealt", 0, 5, "this frame, / 100"),
    _f("kills", 0, 10),
    _f("deaths", 0, 10),
    _f("objectives", 0, 10),
    _f("paused", 0, 1),
    _f("difficulty", 0, 1, "the game's knobs as one level"),
    _f("npcs_alive", 0, _INF, "live NPCs / 16"),
    _f("nearest_npc", 0, 2, "distance / ARENA_SCALE, 1 with none"),
    _f("mean_npc_dist", 0, 2, "over the NPCs the model sees"),
    _f("npcs_targeting", 0, _INF, "NPCs targeting the player / 16"),
    _f("npcs_attacking", 0, _INF, "attacking NPCs / 16"),
    _f("heart_rate", 0, 2, "bpm / 200"),
    _f("heart_rate_known", 0, 1),
    _f("vr", 0, 1),
    _f("recent_deaths", 0, _INF, "deaths, decaying over 60 s, / 5"),
    _f("recent_kills", 0, _INF, "kills, decaying over 60 s, / 20"),
    _f("recent_damage", 0, _INF, "damage taken, decaying over 20 s"),
    _f("recent_accuracy", 0, _INF, "hits / (shots + 1), decaying over 60 s"),
    _f("recent_activity", 0, 1, "stick and trigger activity, over ~10 s"),
    _f("time_since_death", -_INF, 2, "minutes, capped at 2; 1 before the first death"),
    _f("time_alive", -_INF, 2, "minutes since the last respawn, capped at 2"),
    _f("session_minutes", 0, 3, "/ 10, capped"),
)
NPC_FEATURES: tuple[Feature, ...] = (
    _f("dx", -_INF, _INF, "offset from the player / ARENA_SCALE"),
    _f("dz", -_INF, _INF),
    _f("dist", 0, _INF),
    _f("health", 0, 1),
    *(_f(f"state_{i}", 0, 1, "one-hot NpcState") for i in range(NPC_STATES)),
    *(_f(f"tactic_{i}", 0, 1, "one-hot NpcTactic") for i in range(NPC_TACTICS)),
    _f("targets_player", 0, 1),
)
PLAYER_COLUMNS: tuple[str, ...] = tuple(f.name for f in PLAYER_FEATURES)
NPC_COLUMNS: tuple[str, ...] = tuple(f.name for f in NPC_FEATURES)
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

# Raw fields of a frame, as arrays: the table form's columns (so a table is read with one slice), plus
# the NPC id. "target" is the row of the player the NPC targets (-1 for none).
RAW_PLAYER_FIELDS: tuple[str, ...] = tuple(c.name for c in PLAYER_TABLE)
RAW_NPC_FIELDS: tuple[str, ...] = (*(c.name for c in NPC_TABLE), "npc_id")
RP = {name: i for i, name in enumerate(RAW_PLAYER_FIELDS)}


def layout_hash() -> str:
    """Version, NPC count, and each feature's name, position and range: any change gives another hash."""
    cols = [f"{f.name}:{f.lo!r}:{f.hi!r}" for f in (*PLAYER_FEATURES, *NPC_FEATURES)]
    text = f"v{FEATURE_LAYOUT_VERSION}|{MAX_MODEL_NPCS}|{len(PLAYER_FEATURES)}|" + ",".join(cols)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
