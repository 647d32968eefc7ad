"""The checks of a hello and a frame as they arrived, on the protobuf messages: counts, sizes, strings,
table shapes, knob specs and policy parameters. Every refusal names the field and the limit.

Counts and sizes are checked before any per-element work, so an oversized frame costs almost nothing;
the numbers themselves are checked after extraction, on plain arrays (sidecar/validation.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sidecar.columns import (
    MAX_GAME_TIME_S,
)
from sidecar.errors import InvalidArgument, InvalidHello, LimitExceeded
from sidecar.limits import Limits
from sidecar.policies.params import POLICY_NAMES, PolicyParamError, parse_params
from sidecar.policies.portfolio import CONTEXT_MARK
from sidecar.wire.frames import NPC_TABLE_COLUMNS, PLAYER_TABLE_COLUMNS
from sidecar.wire.schema import pb

__all__ = ["validate_frame_counts", "validate_hello"]

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
    if CONTEXT_MARK in hello.game_id:
        raise InvalidHello(
            f"hello.game_id must not contain {CONTEXT_MARK!r} (it marks the contextual director's skill shares)",
            field="hello.game_id",
        )
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
