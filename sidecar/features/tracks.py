"""Per-player running aggregates (decaying counts of deaths, kills, damage, shots, activity), kept by
the session and updated frame by frame: they make the events of frames that were superseded before
the model ran still count, and they are the signals explanations name."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TAU_ACTIVITY", "TAU_DAMAGE", "TAU_RECENT", "TRACK_FIELDS", "PlayerTrack"]

# Time constants (seconds) of the running aggregates.
TAU_RECENT = 60.0
TAU_DAMAGE = 20.0
TAU_ACTIVITY = 10.0

TRACK_FIELDS = (
    "recent_deaths",
    "recent_kills",
    "recent_damage",
    "recent_shots",
    "recent_hits",
    "recent_activity",
    "last_death_time",  # -1 before the first death
    "alive_since",
)


@dataclass
class PlayerTrack:
    """One player's aggregates: `values` in TRACK_FIELDS order.

    One list rather than eight attributes: a tick gathers every player's list into one array and
    writes each row back with one assignment."""

    values: list[float]

    @classmethod
    def new(cls, now: float) -> PlayerTrack:
        return cls([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, now])
