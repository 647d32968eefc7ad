"""The numbers of an extracted frame: finite, within range, whole where the column says so, NPC ids
unique; every refusal names the field and the limit.

Numbers are checked in bulk on the arrays the featurizer extracts (one comparison for the frame);
only when something is wrong do we locate the first offending element to name it. The message itself
(counts, sizes, strings, shapes) was checked at the wire seam (sidecar/wire/checks.py).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from sidecar.columns import (
    COORDINATE,
    EVENT_FIELDS,
    NPC_ID,
    NPC_TABLE,
    PLAYER_TABLE,
    Column,
    Kind,
)
from sidecar.errors import InvalidArgument
from sidecar.features import RAW_NPC_FIELDS, RAW_PLAYER_FIELDS, RP, RawFrame
from sidecar.limits import Limits

__all__ = ["HEALTH_SLACK", "column_bounds", "validate_raw"]


# Per raw column (sidecar/columns.py): its description, and the indices of those that must be whole
# numbers. A table carries every number as float32, so its counts, flags, enums and row references
# are checked for wholeness; the row form's are integer fields already.
_PLAYER_COLS = PLAYER_TABLE
_NPC_COLS = (*NPC_TABLE, NPC_ID)
_EVENT_COLS = EVENT_FIELDS  # the raw event array's columns 0, 2 and 3 (1 is the player's row)
_EVENT_RAW = [0, 2, 3]
_P_WHOLE = [i for i, c in enumerate(_PLAYER_COLS) if c.kind.whole]
_N_WHOLE = [i for i, c in enumerate(NPC_TABLE) if c.kind.whole]  # the id column is uint32 bytes
_NPC_TARGET = RAW_NPC_FIELDS.index("target")
_NPC_ID = RAW_NPC_FIELDS.index("npc_id")
_ROW_NAMES = {"target": "target_player_id"}
# What an error calls each raw column, per form: the row form's field paths or the table's column names.
_NAMES = {
    False: (RAW_PLAYER_FIELDS, tuple(_ROW_NAMES.get(n, n) for n in RAW_NPC_FIELDS), "frame.players", "frame.npcs"),
    True: (RAW_PLAYER_FIELDS, RAW_NPC_FIELDS, "frame.player_table", "frame.npc_table"),
}


# How far a player's health may exceed its max_health before it is refused: float32 slack, relative and
# absolute (the compiled reader, sidecar/wire/_frame_reader.c, is given the same).
HEALTH_SLACK = (1.0001, 1e-6)
_REL, _ABS = HEALTH_SLACK


@functools.lru_cache(maxsize=256)
def column_bounds(kind: str, big: float, players: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-column [lo, hi] of the raw player, NPC or event arrays (NPCs: of a frame of `players` players):
    the ranges every frame's numbers are checked against, by this module and the compiled reader (cached:
    read them, never write)."""
    cols = {"player": _PLAYER_COLS, "npc": _NPC_COLS, "event": _EVENT_COLS}[kind]
    lo, hi = np.array([c.bounds(big) for c in cols]).T
    if kind == "npc":
        hi[_NPC_TARGET] = players - 1.0
    return lo, hi


@functools.lru_cache(maxsize=128)  # at most ~7 MB at the largest frames the limits allow
def _frame_bounds(players: int, npcs: int, events: int, big: float) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] of every number validate_raw checks, in its order (player rows, NPC rows, then each
    event's type, amount and game time), for a frame of this shape; cached per shape."""
    parts = (column_bounds("player", big), column_bounds("npc", big, players), column_bounds("event", big))
    lo = np.concatenate([np.tile(b[0], n) for b, n in zip(parts, (players, npcs, events), strict=True)])
    hi = np.concatenate([np.tile(b[1], n) for b, n in zip(parts, (players, npcs, events), strict=True)])
    return lo, hi


@functools.lru_cache(maxsize=128)
def _frame_whole(players: int, npcs: int) -> np.ndarray:
    """Where validate_raw's array holds a table's whole-number columns (counts, flags, enums, rows)."""
    width_p, width_n = len(_PLAYER_COLS), len(_NPC_COLS)
    at = [r * width_p + c for r in range(players) for c in _P_WHOLE]
    at += [players * width_p + r * width_n + c for r in range(npcs) for c in _N_WHOLE]
    return np.array(at, np.int64)


def validate_raw(raw: RawFrame, limits: Limits, sequence: int) -> None:
    """Numbers: finite and within range, checked as one array (one comparison for the whole frame),
    whole where the column's kind says so, NPC ids once per frame; only a frame that fails is looked
    at again, to name the first offending field."""
    big = limits.max_abs_coordinate
    p, n, ev = raw.players, raw.npcs, raw.events
    lo, hi = _frame_bounds(len(p), len(n), len(ev), big)
    x = (
        np.concatenate((p.ravel(), n.ravel(), ev[:, _EVENT_RAW].ravel()))
        if len(ev)
        else np.concatenate((p.ravel(), n.ravel()))
    )
    # NaN and +-inf fail the comparisons (the bounds are finite). The row form's whole-number fields
    # are integers on the wire already; a table's are float32, checked here.
    if ((x >= lo) & (x <= hi)).all() and _health_within_max(p) and _unique(n[:, _NPC_ID]):
        if not raw.tables:
            return
        w = x[_frame_whole(len(p), len(n))]
        if (w == np.floor(w)).all():
            return
    _name_the_error(raw, big, sequence)


_HEALTH, _MAX_HEALTH = RP["health"], RP["max_health"]


def _health_within_max(p: np.ndarray) -> bool:
    if len(p) == 1:  # most frames: plain floats are 15x cheaper than array operations on one row
        return bool(p.item(0, _HEALTH) <= p.item(0, _MAX_HEALTH) * _REL + _ABS)
    return bool((p[:, _HEALTH] <= p[:, _MAX_HEALTH] * _REL + _ABS).all())


def _unique(ids: np.ndarray) -> bool:
    return len(ids) < 2 or len(set(ids.tolist())) == len(ids)


def _why(c: Column, big: float) -> str:
    """What an error adds to "is outside [lo, hi]": the limit's name, or the column's kind."""
    if c.hi == COORDINATE:
        return f"; the limit is max_abs_coordinate={big:g}"
    return "" if c.kind is Kind.REAL else f" ({c.describe()})"


def _name_the_error(raw: RawFrame, big: float, sequence: int) -> None:
    """The frame failed validate_raw's check: raise for its first offending number, named."""
    _name_bad_cell(raw, big, sequence)
    _name_health_over_max(raw, sequence)
    _name_duplicate_npc(raw, sequence)
    _name_bad_event(raw, big, sequence)
    raise InvalidArgument("frame holds a number out of range", field="frame", sequence=sequence)  # not reached


def _name_bad_cell(raw: RawFrame, big: float, sequence: int) -> None:
    """A player or NPC number outside its column's range, or not whole where the column counts."""
    player_names, npc_names, players_field, npcs_field = _NAMES[raw.tables]
    n_players = len(raw.players)
    for arr, cols, names, prefix, whole in (
        (raw.players, _PLAYER_COLS, player_names, players_field, _P_WHOLE),
        (raw.npcs, _NPC_COLS, npc_names, npcs_field, _N_WHOLE),
    ):
        lo, hi = column_bounds("player" if prefix == players_field else "npc", big, n_players)
        ok = (arr >= lo) & (arr <= hi)  # NaN and +-inf fail these comparisons (the bounds are finite)
        if raw.tables:
            with np.errstate(invalid="ignore"):  # inf % 1 is NaN: already refused by the range test above
                ok[:, whole] &= arr[:, whole] % 1.0 == 0
        if not ok.all():
            row, col = map(int, np.argwhere(~ok)[0])
            value, c = float(arr[row, col]), cols[col]
            field = f"{prefix}[{row}].{names[col]}"
            if not math.isfinite(value):
                raise InvalidArgument(f"{field} must be a finite number, got {value}", field=field, sequence=sequence)
            if c.kind is Kind.ROW:
                rule = f"-1 for none, else a row of frame.player_table, which has {n_players}"
                if not lo[col] <= value <= hi[col]:
                    rule = f"outside [{lo[col]:g}, {hi[col]:g}] ({rule})"
                else:
                    rule = f"not a whole number ({rule})"
                raise InvalidArgument(f"{field}={value:g} is {rule}", field=field, sequence=sequence)
            why = _why(c, big)
            what = f"outside [{lo[col]:g}, {hi[col]:g}]" if not lo[col] <= value <= hi[col] else "not a whole number"
            raise InvalidArgument(f"{field}={value:g} is {what}{why}", field=field, sequence=sequence)


def _name_health_over_max(raw: RawFrame, sequence: int) -> None:
    players_field = _NAMES[raw.tables][2]
    health = raw.players[:, RP["health"]]
    over = health > raw.players[:, RP["max_health"]] * _REL + _ABS
    if over.any():
        i = int(np.argmax(over))
        field = f"{players_field}[{i}].health"
        raise InvalidArgument(
            f"{field}={health[i]:g} exceeds {players_field}[{i}].max_health={raw.players[i, RP['max_health']]:g}",
            field=field,
            sequence=sequence,
        )


def _name_duplicate_npc(raw: RawFrame, sequence: int) -> None:
    ids = raw.npcs[:, _NPC_ID].astype(np.int64).tolist()
    seen: set[int] = set()
    for i, npc_id in enumerate(ids):
        if npc_id in seen:
            field = f"frame.npc_table.npc_ids[{i}]" if raw.tables else f"frame.npcs[{i}].npc_id"
            raise InvalidArgument(
                f"{field}={npc_id} appears twice in this frame (an NPC id names one NPC)",
                field=field,
                sequence=sequence,
            )
        seen.add(npc_id)


def _name_bad_event(raw: RawFrame, big: float, sequence: int) -> None:
    if raw.events.size:
        ev = raw.events[:, _EVENT_RAW]
        lo, hi = column_bounds("event", big)
        bad_ev = ~((ev >= lo) & (ev <= hi))
        if bad_ev.any():
            row, col = map(int, np.argwhere(bad_ev)[0])
            c, value = _EVENT_COLS[col], float(ev[row, col])
            field = f"frame.events[{row}].{c.name}"
            if not math.isfinite(value):
                raise InvalidArgument(f"{field} must be a finite number, got {value}", field=field, sequence=sequence)
            why = _why(c, big)
            raise InvalidArgument(
                f"{field}={value:g} is outside [{lo[col]:g}, {hi[col]:g}]{why}", field=field, sequence=sequence
            )
