"""The frame the engine plugins' table-form tests build by hand (engine_plugins/godot/tests/test_tables.gd
and the Unity core's SessionTests.TablesAsWritten), checked with the sidecar's own reader."""

from __future__ import annotations

from sidecar.errors import MetabrainError
from sidecar.features import RAW_NPC_FIELDS, RP, RawFrame
from sidecar.limits import Limits
from sidecar.validation import validate_raw
from sidecar.wire.checks import validate_frame_counts
from sidecar.wire.frames import extract
from sidecar.wire.schema import pb

_ID, _TARGET = RAW_NPC_FIELDS.index("npc_id"), RAW_NPC_FIELDS.index("target")


def read_frame(data: bytes) -> RawFrame | str:
    """A serialized SessionRequest's frame through validation and extraction; a string says why not."""
    frame = pb.SessionRequest.FromString(data).frame
    try:
        validate_frame_counts(frame, Limits(), 0)
        raw = extract(frame, [])
        validate_raw(raw, Limits(), frame.sequence)
    except MetabrainError as e:
        return f"the sidecar refuses it: {e.message}"
    return raw


def check_by_hand(data: bytes) -> str:
    """What is wrong with the by-hand frame ("" when every number is where the game put it)."""
    raw = read_frame(data)
    if isinstance(raw, str):
        return raw
    want = {
        "position.x": 1.5, "position.z": -2.25, "velocity.x": 3.0, "velocity.z": 4.0, "health": 90.0, "vr": 1.0,
        "input.move_x": 0.25, "input.move_y": -1.0, "input.aim_x": 0.5, "input.shots_fired": 4.0,
        "input.shots_hit": 2.0, "input.dodges": 1.0, "input.actions_per_minute": 180.0,
        "biometrics.heart_rate_bpm": 72.0, "biometrics.skin_conductance_us": 3.5, "dead": 0.0,
    }  # fmt: skip
    got = {k: float(raw.players[0, RP[k]]) for k in want}
    checks = [
        (raw.player_ids == ["p1", "p2"], f"player ids {raw.player_ids}"),
        (got == want, f"player 0 {got}"),
        (raw.players[1, [RP["position.y"], RP["max_health"]]].tolist() == [5.0, 10.0], f"player 1 {raw.players[1]}"),
        (raw.npcs[:, _ID].tolist() == [3e9, 5.0], f"NPC ids (uint32) {raw.npcs[:, _ID].tolist()}"),
        (raw.npcs[:, _TARGET].tolist() == [1.0, -1.0], f"NPC targets (rows) {raw.npcs[:, _TARGET].tolist()}"),
        (
            raw.npcs[:, [RAW_NPC_FIELDS.index(c) for c in ("state", "tactic", "health")]].tolist()
            == [[pb.NPC_STATE_CHASE, pb.NPC_TACTIC_ADVANCE, 1.0], [pb.NPC_STATE_FLEE, pb.NPC_TACTIC_RETREAT, 0.25]],
            f"NPC state, tactic, health {raw.npcs.tolist()}",
        ),
    ]
    kinds = list(pb.SessionRequest.FromString(data).frame.npc_table.kinds)
    checks.append((kinds == ["grunt", ""], f"kinds {kinds}"))
    return "; ".join(why for ok, why in checks if not ok)
