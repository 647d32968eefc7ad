"""Validation of hellos and frames: every refusal names the field and the limit.

Counts and sizes are checked before any per-element work, so an oversized frame costs almost
nothing. Numbers are checked in bulk on the arrays the featurizer extracts; only when something is
wrong do we locate the first offending element to name it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from sidecar.errors import InvalidArgument, InvalidHello, LimitExceeded
from sidecar.features import RAW_NPC_FIELDS, RAW_PLAYER_FIELDS, RP, RawFrame
from sidecar.limits import Limits
from sidecar.schema import pb

KNOWN_POLICIES = ("static", "rubber_band", "intensity", "predictive")
_MAX_POLICY_PARAMS = 32


def _check_string(value: str, field: str, limits: Limits, *, invalid: type[InvalidArgument] = InvalidArgument) -> None:
    n = len(value.encode("utf-8", "surrogatepass"))
    if n > limits.max_string_bytes:
        raise invalid(f"{field} is {n} bytes; the limit is max_string_bytes={limits.max_string_bytes}", field=field)


def _check_float(value: float, field: str, lo: float, hi: float, invalid: type[InvalidArgument]) -> None:
    if not math.isfinite(value):
        raise invalid(f"{field} must be a finite number, got {value}", field=field)
    if not lo <= value <= hi:
        raise invalid(f"{field}={value} is outside [{lo}, {hi}]", field=field)


def validate_hello(hello: pb.Hello, limits: Limits) -> None:
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
    if hello.policy and hello.policy not in KNOWN_POLICIES:
        raise InvalidHello(
            f"hello.policy={hello.policy!r} is not one of {', '.join(KNOWN_POLICIES)}", field="hello.policy"
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
    _check_string(hello.resume_token, "hello.resume_token", limits, invalid=InvalidHello)


def validate_frame_counts(frame: pb.Frame, limits: Limits) -> None:
    """Cheap checks that bound the work of everything after them."""
    seq = frame.sequence
    for field, count, limit_name in (
        ("frame.players", len(frame.players), "max_players_per_frame"),
        ("frame.npcs", len(frame.npcs), "max_npcs_per_frame"),
        ("frame.events", len(frame.events), "max_events_per_frame"),
        ("frame.knobs", len(frame.knobs), "max_knobs"),
    ):
        limit = getattr(limits, limit_name)
        if count > limit:
            raise LimitExceeded(
                f"{field} has {count} entries; the limit is {limit_name}={limit}", field=field, sequence=seq
            )
    if not frame.players:
        raise InvalidArgument("frame.players must hold at least one player", field="frame.players", sequence=seq)
    if not math.isfinite(frame.game_time) or frame.game_time < 0:
        raise InvalidArgument(
            f"frame.game_time must be a finite number >= 0, got {frame.game_time}",
            field="frame.game_time",
            sequence=seq,
        )
    for i, k in enumerate(frame.knobs):
        if not math.isfinite(k.value):
            raise InvalidArgument(
                f"frame.knobs[{i}].value must be a finite number, got {k.value}",
                field=f"frame.knobs[{i}].value",
                sequence=seq,
            )
    seen: set[str] = set()
    for i, p in enumerate(frame.players):
        _check_string(p.player_id, f"frame.players[{i}].player_id", limits)
        if p.player_id in seen:
            raise InvalidArgument(
                f"frame.players[{i}].player_id {p.player_id!r} appears twice",
                field=f"frame.players[{i}].player_id",
                sequence=seq,
            )
        seen.add(p.player_id)
        if p.HasField("vr"):
            _validate_vr(p.vr, f"frame.players[{i}].vr", limits, seq)
    for i, n in enumerate(frame.npcs):
        if len(n.kind) > limits.max_string_bytes or len(n.target_player_id) > limits.max_string_bytes:
            _check_string(n.kind, f"frame.npcs[{i}].kind", limits)
            _check_string(n.target_player_id, f"frame.npcs[{i}].target_player_id", limits)
    for i, e in enumerate(frame.events):
        if len(e.player_id) > limits.max_string_bytes:
            _check_string(e.player_id, f"frame.events[{i}].player_id", limits)


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


# Per raw player column: the allowed range (lo, hi); None means "limited only by max_abs_coordinate".
_PLAYER_RANGES: dict[str, tuple[float, float] | None] = {
    "health": (0.0, 1.0e9),
    "max_health": (0.0, 1.0e9),
    "input.move_x": (-1.001, 1.001),
    "input.move_y": (-1.001, 1.001),
    "input.aim_x": (-1.001, 1.001),
    "input.aim_y": (-1.001, 1.001),
    "input.actions_per_minute": (0.0, 1.0e5),
    "biometrics.heart_rate_bpm": (0.0, 400.0),
    "biometrics.skin_conductance_us": (0.0, 1.0e4),
}


@functools.lru_cache(maxsize=8)
def _bounds(kind: str, big: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-column [lo, hi] of the raw player or NPC arrays; computed once per limit value."""
    names, ranges = (RAW_PLAYER_FIELDS, _PLAYER_RANGES) if kind == "player" else (RAW_NPC_FIELDS, _NPC_RANGES)
    lo = np.array([(ranges.get(n) or (-big, big))[0] for n in names])
    hi = np.array([(ranges.get(n) or (-big, big))[1] for n in names])
    return lo, hi


_NPC_RANGES: dict[str, tuple[float, float] | None] = {"health": (0.0, 1.0)}


@functools.lru_cache(maxsize=128)  # at most ~7 MB at the largest frames the limits allow
def _frame_bounds(players: int, npcs: int, events: int, big: float) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] of every number validate_raw checks, in its order (player rows, NPC rows, then each
    event's amount and game time), for a frame of this shape; cached per shape."""
    plo, phi = _bounds("player", big)
    nlo, nhi = _bounds("npc", big)
    lo = np.concatenate([np.tile(plo, players), np.tile(nlo, npcs), np.full(2 * events, -big)])
    hi = np.concatenate([np.tile(phi, players), np.tile(nhi, npcs), np.full(2 * events, big)])
    return lo, hi


def validate_raw(raw: RawFrame, limits: Limits, sequence: int) -> None:
    """Numbers: finite and within range, checked as one array (one comparison for the whole frame);
    only a frame that fails is looked at again, to name the first offending field."""
    big = limits.max_abs_coordinate
    p, n, ev = raw.players, raw.npcs, raw.events
    lo, hi = _frame_bounds(len(p), len(n), len(ev), big)
    x = np.concatenate((p.ravel(), n.ravel(), ev[:, 2:4].ravel()))
    if ((x >= lo) & (x <= hi)).all():  # NaN and +-inf fail these comparisons (the bounds are finite)
        hp = p[:, _HEALTH_COLS].tolist()
        if all(h <= mh * 1.0001 + 1e-6 for h, mh in hp):
            return
    _name_the_error(raw, big, sequence)


_HEALTH_COLS = [RP["health"], RP["max_health"]]


def _name_the_error(raw: RawFrame, big: float, sequence: int) -> None:
    """The frame failed validate_raw's check: raise for its first offending number, named."""
    plo, phi = _bounds("player", big)
    nlo, nhi = _bounds("npc", big)
    for arr, lo, hi, names, prefix in (
        (raw.players, plo, phi, RAW_PLAYER_FIELDS, "frame.players"),
        (raw.npcs, nlo, nhi, RAW_NPC_FIELDS, "frame.npcs"),
    ):
        ok = (arr >= lo) & (arr <= hi)  # NaN and +-inf fail these comparisons (the bounds are finite)
        if not ok.all():
            bad = ~ok
            row, col = map(int, np.argwhere(bad)[0])
            value = arr[row, col]
            field = f"{prefix}[{row}].{names[col]}"
            if not math.isfinite(value):
                raise InvalidArgument(f"{field} must be a finite number, got {value}", field=field, sequence=sequence)
            why = f"; the limit is max_abs_coordinate={big:g}" if hi[col] == big else ""
            raise InvalidArgument(
                f"{field}={value:g} is outside [{lo[col]:g}, {hi[col]:g}]{why}", field=field, sequence=sequence
            )
    health = raw.players[:, RP["health"]]
    over = health > raw.players[:, RP["max_health"]] * 1.0001 + 1e-6
    if over.any():
        i = int(np.argmax(over))
        field = f"frame.players[{i}].health"
        raise InvalidArgument(
            f"{field}={health[i]:g} exceeds frame.players[{i}].max_health={raw.players[i, RP['max_health']]:g}",
            field=field,
            sequence=sequence,
        )
    if raw.events.size:
        ev = raw.events[:, 2:4]
        bad_ev = ~(np.isfinite(ev) & (np.abs(ev) <= big))
        if bad_ev.any():
            row, col = map(int, np.argwhere(bad_ev)[0])
            field = f"frame.events[{row}].{('amount', 'game_time')[col]}"
            raise InvalidArgument(
                f"{field}={ev[row, col]} must be finite with magnitude <= max_abs_coordinate={big:g}",
                field=field,
                sequence=sequence,
            )
    raise InvalidArgument("frame holds a number out of range", field="frame", sequence=sequence)  # not reached
