"""The columns of a frame, described once: name, kind, range and how frames fold into a model step.

Everything that reads, checks or lays out a frame's numbers is driven by these tables: the validator
(ranges, whole numbers, enums, unique ids, and the words of its errors), the table layouts of the
wire schema and of the engine plugins (generated from here), the featurizer's raw column order, the
model clock's folding of in-between frames, and the feature-layout hash stored in checkpoints.

A kind says what is nonsense, not only what is out of range: a count is a whole number >= 0, an
enum a whole number among its declared values, a flag 0 or 1, a row reference -1 or a row of the
player table, an id a uint32 that appears once per frame.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

__all__ = [
    "COORDINATE",
    "EVENT_FIELDS",
    "MAX_GAME_TIME_S",
    "MAX_PLAY_GAP_S",
    "NPC_ID",
    "NPC_TABLE",
    "PLAYER_TABLE",
    "Capability",
    "Column",
    "EventType",
    "Fold",
    "Kind",
    "NpcState",
    "NpcTactic",
    "columns_hash",
]

# Stands for +-max_abs_coordinate (a limit the server sets) wherever a column's range says so.
COORDINATE = float("inf")
# Game time a frame or an event may carry (about 31 years of play): beyond it, a clock is corrupt.
MAX_GAME_TIME_S = 1.0e9
# Game time between two frames of a session counted as play, at most: a longer gap is a pause, a
# loading screen or a clock that jumped (no telemetry says the player played it), and one such frame
# must not count hours of play into what a learning director knows of its candidates. Engines send at
# 5-60 Hz; the model reads gaps over a second as one second (features/layout.py).
MAX_PLAY_GAP_S = 5.0


# The schema's enums, as plain numbers for the code that never touches a message (features, policies,
# the engine); tests/test_wire.py checks them against the generated code.
class EventType(enum.IntEnum):
    UNSPECIFIED = 0
    DAMAGE_TAKEN = 1
    DAMAGE_DEALT = 2
    KILL = 3
    DEATH = 4
    OBJECTIVE = 5
    CHECKPOINT = 6
    PAUSE = 7
    RESUME = 8
    QUIT = 9
    SPAWN = 10


class NpcState(enum.IntEnum):
    UNSPECIFIED = 0
    IDLE = 1
    PATROL = 2
    CHASE = 3
    ATTACK = 4
    FLEE = 5
    DEAD = 6


class NpcTactic(enum.IntEnum):
    UNSPECIFIED = 0
    HOLD = 1
    ADVANCE = 2
    FLANK = 3
    RETREAT = 4
    REGROUP = 5
    PRESSURE = 6


class Capability(enum.IntEnum):
    UNSPECIFIED = 0
    NPC_HINTS = 1
    INSIGHT = 2
    EXPLANATIONS = 3
    RECORDING = 4


# Enum ranges, as the schema declares them (0 = UNSPECIFIED is allowed: "unknown").
NPC_STATE_MAX = int(max(NpcState))
NPC_TACTIC_MAX = int(max(NpcTactic))
EVENT_TYPE_MAX = int(max(EventType))


class Kind(enum.Enum):
    REAL = "real"  # a finite number in [lo, hi]
    COUNT = "count"  # a whole number in [0, hi]
    FLAG = "flag"  # 0 or 1
    ENUM = "enum"  # a whole number in [lo, hi]: the schema enum's declared values
    ROW = "row"  # -1 (none) or a row of the frame's player table
    ID = "id"  # a uint32, unique within the frame

    @property
    def whole(self) -> bool:
        return self is not Kind.REAL


class Fold(enum.Enum):
    """How frames between two model steps combine into the step's frame (the model clock)."""

    LATEST = "latest"  # a state: the newest frame's value
    SUM = "sum"  # a count since the previous frame: added up
    RATE = "rate"  # a per-minute rate over the frame's interval: averaged, weighted by each interval


@dataclass(frozen=True)
class Column:
    name: str  # the PlayerState / Npc field path it carries
    kind: Kind
    lo: float
    hi: float  # COORDINATE: +-max_abs_coordinate
    fold: Fold = Fold.LATEST
    doc: str = ""

    def bounds(self, big: float) -> tuple[float, float]:
        """[lo, hi] with COORDINATE resolved to the server's max_abs_coordinate."""
        lo = -big if self.lo == -COORDINATE else self.lo
        hi = big if self.hi == COORDINATE else self.hi
        return lo, hi

    def describe(self) -> str:
        """The rule in words, as errors and docs state it."""
        if self.kind is Kind.COUNT:
            return f"a whole number in [0, {self.hi:g}]"
        if self.kind is Kind.FLAG:
            return "0 or 1"
        if self.kind is Kind.ENUM:
            return f"a whole number in [{self.lo:g}, {self.hi:g}] (the schema's enum values)"
        if self.kind is Kind.ROW:
            return "-1 for none, else a row of frame.player_table"
        if self.kind is Kind.ID:
            return "a uint32, once per frame"
        lo = "-max_abs_coordinate" if self.lo == -COORDINATE else f"{self.lo:g}"
        hi = "max_abs_coordinate" if self.hi == COORDINATE else f"{self.hi:g}"
        return f"a finite number in [{lo}, {hi}]"


def _coord(name: str, doc: str) -> Column:
    return Column(name, Kind.REAL, -COORDINATE, COORDINATE, doc=doc)


_STICK = (-1.001, 1.001)  # stick axes in [-1, 1], with float slack
_MAX_COUNT = 1.0e6  # shots, hits or dodges in one frame

# The player table (Frame.player_table), version 1, in wire order.
PLAYER_TABLE: tuple[Column, ...] = (
    _coord("position.x", "position in game units (y up)"),
    _coord("position.y", ""),
    _coord("position.z", ""),
    _coord("velocity.x", "velocity in game units per second"),
    _coord("velocity.y", ""),
    _coord("velocity.z", ""),
    Column("health", Kind.REAL, 0.0, 1.0e9, doc="in [0, max_health]"),
    Column("max_health", Kind.REAL, 0.0, 1.0e9),
    Column("dead", Kind.FLAG, 0.0, 1.0, doc="1 while dead and waiting to respawn"),
    Column("input.move_x", Kind.REAL, *_STICK, doc="movement stick"),
    Column("input.move_y", Kind.REAL, *_STICK),
    Column("input.aim_x", Kind.REAL, *_STICK, doc="aim direction"),
    Column("input.aim_y", Kind.REAL, *_STICK),
    Column("input.shots_fired", Kind.COUNT, 0.0, _MAX_COUNT, Fold.SUM, "since the previous frame"),
    Column("input.shots_hit", Kind.COUNT, 0.0, _MAX_COUNT, Fold.SUM, "since the previous frame"),
    Column("input.dodges", Kind.COUNT, 0.0, _MAX_COUNT, Fold.SUM, "since the previous frame"),
    Column("input.actions_per_minute", Kind.REAL, 0.0, 1.0e5, Fold.RATE, "over the frame's interval"),
    Column("biometrics.heart_rate_bpm", Kind.REAL, 0.0, 400.0, doc="0 when unknown"),
    Column("biometrics.skin_conductance_us", Kind.REAL, 0.0, 1.0e4, doc="0 when unknown"),
    Column("vr", Kind.FLAG, 0.0, 1.0, doc="1 for a VR player"),
)

# The NPC table (Frame.npc_table), version 1, in wire order; the NPC id travels beside it.
NPC_TABLE: tuple[Column, ...] = (
    _coord("position.x", "position in game units"),
    _coord("position.y", ""),
    _coord("position.z", ""),
    Column("health", Kind.REAL, 0.0, 1.0, doc="of its maximum"),
    Column("state", Kind.ENUM, 0.0, NPC_STATE_MAX, doc="NpcState"),
    Column("tactic", Kind.ENUM, 0.0, NPC_TACTIC_MAX, doc="NpcTactic"),
    Column("target", Kind.ROW, -1.0, COORDINATE, doc="row of the targeted player in the player table, -1 for none"),
)
NPC_ID = Column("npc_id", Kind.ID, 0.0, 4294967295.0, doc="stable for the NPC's lifetime")

# A game event's numbers (GameEvent), as the raw event array holds them after type and player.
EVENT_FIELDS: tuple[Column, ...] = (
    Column("type", Kind.ENUM, 0.0, EVENT_TYPE_MAX, doc="EventType"),
    Column("amount", Kind.REAL, 0.0, COORDINATE, doc="damage, objective progress or 0"),
    Column("game_time", Kind.REAL, 0.0, MAX_GAME_TIME_S, doc="seconds"),
)


def columns_hash(*tables: tuple[Column, ...]) -> str:
    """Names, order, kinds, ranges and folds of the given tables: any change gives another hash."""
    text = "|".join(
        ";".join(f"{c.name}:{c.kind.value}:{c.lo!r}:{c.hi!r}:{c.fold.value}" for c in table) for table in tables
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]
