"""Validation of hellos and frames: every refusal names the field and the limit.

Counts and sizes are checked before any per-element work, so an oversized frame costs almost
nothing. Numbers are checked in bulk on the arrays the featurizer extracts; only when something is
wrong do we locate the first offending element to name it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from sidecar.columns import (
    COORDINATE,
    EVENT_FIELDS,
    MAX_GAME_TIME_S,
    NPC_ID,
    NPC_TABLE,
    PLAYER_TABLE,
    Column,
    Kind,
)
from sidecar.errors import InvalidArgument, InvalidHello, LimitExceeded
from sidecar.features import RAW_NPC_FIELDS, RAW_PLAYER_FIELDS, RP, RawFrame
from sidecar.limits import Limits
from sidecar.policies.params import POLICY_NAMES, PolicyParamError, parse_params
from sidecar.wire.frames import NPC_TABLE_COLUMNS, PLAYER_TABLE_COLUMNS
from sidecar.wire.schema import pb

_MAX_POLICY_PARAMS = 32


def _check_string(
    value: str, field: str, limits: Limits, *, invalid: type[InvalidArgument] = InvalidArgument, sequence: int = 0
) -> None:
    n = len(value.encode("utf-8", "surrogatepass"))
    if n > limits.max_string_bytes:
        raise invalid(
            f"{field} is {n} bytes; the limit is max_string_bytes={limits.max_string_bytes}",
            field=field,
            sequence=sequence,
        )


def _check_float(value: float, field: str, lo: float, hi: float, invalid: type[InvalidArgument]) -> None:
    if not math.isfinite(value):
        raise invalid(f"{field} must be a finite number, got {value}", field=field)
    if not lo <= value <= hi:
        raise invalid(f"{field}={value} is outside [{lo}, {hi}]", field=field)


def validate_hello(hello: pb.Hello, limits: Limits, default_policy: str) -> None:
    """Every field of a hello; `default_policy`: the policy a hello that names none gets."""
    big = limits.max_abs_coordinate
    for name, value in (("game_id", hello.game_id), ("game_build", hello.game_build), ("policy", hello.policy)):
        _check_string(value, f"hello.{name}", limits, invalid=InvalidHello)
    if not hello.game_id:
        raise InvalidHello("hello.game_id must not be empty", field="hello.game_id")
    if len(hello.knobs) > limits.max_knobs:
        raise InvalidHello(
            f"hello.knobs has {len(hello.knobs)} knobs; the limit is max_knobs={limits.max_knobs}", field="hello.knobs"
        )
    names: set[str] = set()
    for i, k in enumerate(hello.knobs):
        f = f"hello.knobs[{i}]"
        _check_string(k.name, f"{f}.name", limits, invalid=InvalidHello)
        if not k.name or k.name in names:
            raise InvalidHello(f"{f}.name must be a non-empty unique name, got {k.name!r}", field=f"{f}.name")
        names.add(k.name)
        for attr in ("min_value", "max_value", "default_value", "max_change_per_second"):
            _check_float(getattr(k, attr), f"{f}.{attr}", -big, big, InvalidHello)
        if k.min_value > k.max_value:
            raise InvalidHello(f"{f}.min_value={k.min_value} exceeds max_value={k.max_value}", field=f"{f}.min_value")
        if not k.min_value <= k.default_value <= k.max_value:
            raise InvalidHello(
                f"{f}.default_value={k.default_value} is outside [{k.min_value}, {k.max_value}]",
                field=f"{f}.default_value",
            )
        if k.max_change_per_second < 0:
            raise InvalidHello(f"{f}.max_change_per_second must be >= 0", field=f"{f}.max_change_per_second")
    _check_float(hello.tick_rate_hz, "hello.tick_rate_hz", 0.0, 1000.0, InvalidHello)
    if hello.policy and hello.policy not in POLICY_NAMES:
        raise InvalidHello(
            f"hello.policy={hello.policy!r} is not one of {', '.join(POLICY_NAMES)}", field="hello.policy"
        )
    if hello.HasField("target"):
        t = hello.target
        _check_float(t.p_fail_low, "hello.target.p_fail_low", 0.0, 1.0, InvalidHello)
        _check_float(t.p_fail_high, "hello.target.p_fail_high", t.p_fail_low, 1.0, InvalidHello)
    if len(hello.policy_params) > _MAX_POLICY_PARAMS:
        raise InvalidHello(
            f"hello.policy_params has more than {_MAX_POLICY_PARAMS} entries", field="hello.policy_params"
        )
    for key, value in hello.policy_params.items():
        _check_string(key, "hello.policy_params key", limits, invalid=InvalidHello)
        _check_string(value, f"hello.policy_params[{key}]", limits, invalid=InvalidHello)
    policy = hello.policy or default_policy
    try:
        parse_params(policy, hello.policy_params)
    except PolicyParamError as exc:
        field = f"hello.policy_params[{exc.name}]"
        raise InvalidHello(f"{field}{exc.message}", field=field) from None
    _check_string(hello.resume_token, "hello.resume_token", limits, invalid=InvalidHello)


def validate_frame_counts(frame: pb.Frame, limits: Limits, knobs: int) -> None:
    """Cheap checks that bound the work of everything after them; `knobs`: how many the hello declared."""
    seq = frame.sequence
    tables = frame.HasField("player_table")
    pt, nt = frame.player_table, frame.npc_table
    n_players = len(pt.player_ids) if tables else len(frame.players)
    n_npcs = len(nt.npc_ids) // 4 if tables else len(frame.npcs)
    counts = (n_players, n_npcs, len(frame.events), len(frame.knobs))
    if (
        counts[0] > limits.max_players_per_frame
        or counts[1] > limits.max_npcs_per_frame
        or counts[2] > limits.max_events_per_frame
        or counts[3] > limits.max_knobs
    ):
        _name_the_count(counts, tables, limits, seq)
    if tables:
        _validate_table_shapes(frame, pt, nt, n_players, n_npcs, seq)
    elif frame.HasField("npc_table"):
        raise InvalidArgument(
            "frame.npc_table needs frame.player_table (its target column names players by table row)",
            field="frame.npc_table",
            sequence=seq,
        )
    elif not n_players:
        raise InvalidArgument("frame.players must hold at least one player", field="frame.players", sequence=seq)
    game_time = frame.game_time
    if not (math.isfinite(game_time) and 0.0 <= game_time <= MAX_GAME_TIME_S):
        raise InvalidArgument(
            f"frame.game_time must be a finite number in [0, {MAX_GAME_TIME_S:g}] seconds, got {game_time}",
            field="frame.game_time",
            sequence=seq,
        )
    _validate_reported_knobs(frame, knobs, seq)
    _validate_frame_strings(frame, tables, limits, seq)


def _validate_reported_knobs(frame: pb.Frame, knobs: int, seq: int) -> None:
    """Knob values the frame reports: finite, and in one form (knob_values: one per declared knob)."""
    values = frame.knob_values
    if values:
        if frame.knobs or len(values) != knobs:
            why = "send knobs or knob_values, not both" if frame.knobs else f"the hello declared {knobs} knobs"
            raise InvalidArgument(
                f"frame.knob_values has {len(values)} values; {why}", field="frame.knob_values", sequence=seq
            )
        if not all(map(math.isfinite, values)):
            i = next(i for i, v in enumerate(values) if not math.isfinite(v))
            raise InvalidArgument(
                f"frame.knob_values[{i}] must be a finite number, got {values[i]}",
                field=f"frame.knob_values[{i}]",
                sequence=seq,
            )
    for i, k in enumerate(frame.knobs):
        if not math.isfinite(k.value):
            raise InvalidArgument(
                f"frame.knobs[{i}].value must be a finite number, got {k.value}",
                field=f"frame.knobs[{i}].value",
                sequence=seq,
            )


def _validate_frame_strings(frame: pb.Frame, tables: bool, limits: Limits, seq: int) -> None:
    """Ids unique and within their length limit, strings within theirs (UTF-8 bytes), VR poses finite."""
    if tables:
        _check_ids(frame.player_table.player_ids, "frame.player_table.player_ids[{}]", limits, seq)
        _check_strings(frame.npc_table.kinds, "frame.npc_table.kinds[{}]", limits, seq)
    else:
        _check_ids([p.player_id for p in frame.players], "frame.players[{}].player_id", limits, seq)
        for i, p in enumerate(frame.players):
            if p.HasField("vr"):
                _validate_vr(p.vr, f"frame.players[{i}].vr", limits, seq)
        _check_strings([n.kind for n in frame.npcs], "frame.npcs[{}].kind", limits, seq)
        _check_strings([n.target_player_id for n in frame.npcs], "frame.npcs[{}].target_player_id", limits, seq)
    _check_strings([e.player_id for e in frame.events], "frame.events[{}].player_id", limits, seq)


def _name_the_count(counts: tuple[int, int, int, int], tables: bool, limits: Limits, seq: int) -> None:
    """A count is over its limit: raise for the first one, named."""
    players_and_npcs = (
        ("frame.player_table.player_ids", "frame.npc_table.npc_ids") if tables else ("frame.players", "frame.npcs")
    )
    for field, count, limit_name in zip(
        (*players_and_npcs, "frame.events", "frame.knobs"),
        counts,
        ("max_players_per_frame", "max_npcs_per_frame", "max_events_per_frame", "max_knobs"),
        strict=True,
    ):
        limit = getattr(limits, limit_name)
        if count > limit:
            raise LimitExceeded(
                f"{field} has {count} entries; the limit is {limit_name}={limit}", field=field, sequence=seq
            )


def _validate_table_shapes(
    frame: pb.Frame, pt: pb.PlayerTable, nt: pb.NpcTable, n_players: int, n_npcs: int, seq: int
) -> None:
    """The table form: one form per frame, and each bytes field exactly rows x columns x 4 bytes
    (the row counts were checked against their limits already)."""
    if frame.players or frame.npcs:
        raise InvalidArgument(
            "frame.player_table and frame.players / frame.npcs are two forms of the same data; send one",
            field="frame.player_table",
            sequence=seq,
        )
    if n_players == 0:
        raise InvalidArgument(
            "frame.player_table.player_ids must hold at least one player",
            field="frame.player_table.player_ids",
            sequence=seq,
        )
    _check_table_values(pt.values, pt.columns, n_players, len(PLAYER_TABLE_COLUMNS), "frame.player_table", seq)
    if not frame.HasField("npc_table"):
        return
    if len(nt.npc_ids) % 4:
        raise InvalidArgument(
            f"frame.npc_table.npc_ids holds {len(nt.npc_ids)} bytes; it must be 4 bytes (uint32) per NPC",
            field="frame.npc_table.npc_ids",
            sequence=seq,
        )
    if not n_npcs and (nt.values or nt.kinds):
        raise InvalidArgument(
            "frame.npc_table has values or kinds but no npc_ids; send one uint32 id per NPC row",
            field="frame.npc_table.npc_ids",
            sequence=seq,
        )
    if n_npcs:
        _check_table_values(nt.values, nt.columns, n_npcs, len(NPC_TABLE_COLUMNS), "frame.npc_table", seq)
    if len(nt.kinds) not in (0, n_npcs):
        raise InvalidArgument(
            f"frame.npc_table.kinds has {len(nt.kinds)} entries; send one per NPC ({n_npcs}) or none",
            field="frame.npc_table.kinds",
            sequence=seq,
        )


def _check_table_values(values: bytes, columns: int, rows: int, known: int, table: str, seq: int) -> None:
    if columns < known:
        raise InvalidArgument(
            f"{table}.columns={columns}; version 1 of this table has {known} columns, send at least that many",
            field=f"{table}.columns",
            sequence=seq,
        )
    if len(values) != rows * columns * 4:
        raise InvalidArgument(
            f"{table}.values holds {len(values)} bytes; {rows} rows x {columns} columns x 4 bytes "
            f"is {rows * columns * 4}",
            field=f"{table}.values",
            sequence=seq,
        )


def _check_strings(values: Sequence[str], field: str, limits: Limits, seq: int) -> None:
    """Each at most max_string_bytes of UTF-8; `field` has a {} for the index. Only strings long
    enough to be over (a character is at most 4 bytes) are encoded."""
    short = limits.max_string_bytes // 4
    if values and max(map(len, values)) > short:
        for i, value in enumerate(values):
            if len(value) > short:
                _check_string(value, field.format(i), limits, sequence=seq)


def _check_ids(ids: Sequence[str], field: str, limits: Limits, seq: int) -> None:
    """Player ids: strings within the limit, none twice; `field` has a {} for the index."""
    _check_strings(ids, field, limits, seq)
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for i, pid in enumerate(ids):
            if pid in seen:
                raise InvalidArgument(f"{field.format(i)} {pid!r} appears twice", field=field.format(i), sequence=seq)
            seen.add(pid)


def _validate_vr(vr: pb.VrPose, field: str, limits: Limits, seq: int) -> None:
    big = limits.max_abs_coordinate
    for part in ("head", "left_hand", "right_hand"):
        pose = getattr(vr, part)
        for axis in ("x", "y", "z"):
            v = getattr(pose.position, axis)
            if not (math.isfinite(v) and abs(v) <= big):
                raise InvalidArgument(
                    f"{field}.{part}.position.{axis}={v} must be finite with magnitude <= max_abs_coordinate={big}",
                    field=f"{field}.{part}.position.{axis}",
                    sequence=seq,
                )
        for axis in ("x", "y", "z", "w"):
            v = getattr(pose.rotation, axis)
            if not (math.isfinite(v) and abs(v) <= 1.001):
                raise InvalidArgument(
                    f"{field}.{part}.rotation.{axis}={v} must be a finite quaternion component in [-1, 1]",
                    field=f"{field}.{part}.rotation.{axis}",
                    sequence=seq,
                )


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


@functools.lru_cache(maxsize=256)
def _bounds(kind: str, big: float, players: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-column [lo, hi] of the raw player, NPC or event arrays (NPCs: of a frame of `players` players)."""
    cols = {"player": _PLAYER_COLS, "npc": _NPC_COLS, "event": _EVENT_COLS}[kind]
    lo, hi = np.array([c.bounds(big) for c in cols]).T
    if kind == "npc":
        hi[_NPC_TARGET] = players - 1.0
    return lo, hi


@functools.lru_cache(maxsize=128)  # at most ~7 MB at the largest frames the limits allow
def _frame_bounds(players: int, npcs: int, events: int, big: float) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] of every number validate_raw checks, in its order (player rows, NPC rows, then each
    event's type, amount and game time), for a frame of this shape; cached per shape."""
    parts = (_bounds("player", big), _bounds("npc", big, players), _bounds("event", big))
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
        return bool(p.item(0, _HEALTH) <= p.item(0, _MAX_HEALTH) * 1.0001 + 1e-6)
    return bool((p[:, _HEALTH] <= p[:, _MAX_HEALTH] * 1.0001 + 1e-6).all())


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
        lo, hi = _bounds("player" if prefix == players_field else "npc", big, n_players)
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
    over = health > raw.players[:, RP["max_health"]] * 1.0001 + 1e-6
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
        lo, hi = _bounds("event", big)
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
