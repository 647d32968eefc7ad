"""Frames off the wire: a Frame message's numbers as a RawFrame (`extract`, either form), and the
table form (Frame.player_table / Frame.npc_table) made from the row form (`to_tables`).

The columns are described once, in sidecar/columns.py. A table row holds the same numbers as a
PlayerState or Npc message, as float32, so a frame converted here featurizes to exactly what its row
form does (tests/test_frame_tables.py checks it on simulator frames).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sidecar.columns import NPC_TABLE, PLAYER_TABLE
from sidecar.features.knobs import values_in_order
from sidecar.features.raw import RawFrame
from sidecar.wire.schema import pb

__all__ = [
    "NPC_TABLE_COLUMNS",
    "PLAYER_TABLE_COLUMNS",
    "WIRE_FLOAT",
    "WIRE_ID",
    "extract",
    "npc_rows",
    "player_rows",
    "to_tables",
]

PLAYER_TABLE_COLUMNS: tuple[str, ...] = tuple(c.name for c in PLAYER_TABLE)
NPC_TABLE_COLUMNS: tuple[str, ...] = tuple(c.name for c in NPC_TABLE)
WIRE_FLOAT = np.dtype("<f4")  # little-endian float32, whatever this machine's byte order
WIRE_ID = np.dtype("<u4")


def player_rows(players: Sequence[pb.PlayerState]) -> np.ndarray:
    """[P, len(PLAYER_TABLE_COLUMNS)] float32 from PlayerState messages."""
    rows = []
    for p in players:
        pos, vel, inp, bio = p.position, p.velocity, p.input, p.biometrics
        rows.append(
            (
                *(pos.x, pos.y, pos.z, vel.x, vel.y, vel.z),
                *(p.health, p.max_health, float(p.dead)),
                *(inp.move_x, inp.move_y, inp.aim_x, inp.aim_y),
                *(inp.shots_fired, inp.shots_hit, inp.dodges, inp.actions_per_minute),
                *(bio.heart_rate_bpm, bio.skin_conductance_us, float(p.HasField("vr"))),
            )
        )
    return np.array(rows, np.float32).reshape(len(players), len(PLAYER_TABLE_COLUMNS))


def npc_rows(npcs: Sequence[pb.Npc], row_of: dict[str, int]) -> np.ndarray:
    """[N, len(NPC_TABLE_COLUMNS) + 1] float64 from Npc messages: the table's columns (the target as
    its row in `row_of`, -1 for none), then the NPC id (uint32: float64 holds it exactly)."""
    rows = []
    for n in npcs:
        pos = n.position
        rows.append((pos.x, pos.y, pos.z, n.health, n.state, n.tactic, row_of.get(n.target_player_id, -1), n.npc_id))
    return np.array(rows, np.float64).reshape(len(npcs), len(NPC_TABLE_COLUMNS) + 1)


def to_tables(frame: pb.Frame, knob_names: Sequence[str] = ()) -> pb.Frame:
    """The same frame in the table form (what the engine plugins send). VR poses are not part of the
    table: the model uses only whether a player is in VR (the `vr` column). With the hello's knob
    names, knobs go as `knob_values` in that order (when the frame reports every one of them)."""
    out = pb.Frame(sequence=frame.sequence, game_time=frame.game_time)
    out.events.extend(frame.events)
    value_of = {k.name: k.value for k in frame.knobs}
    if knob_names and set(knob_names) == set(value_of):
        out.knob_values.extend(value_of[n] for n in knob_names)
    else:
        out.knobs.extend(frame.knobs)
    ids = [p.player_id for p in frame.players]
    out.player_table.player_ids.extend(ids)
    out.player_table.values = player_rows(frame.players).astype(WIRE_FLOAT).tobytes()
    out.player_table.columns = len(PLAYER_TABLE_COLUMNS)
    if frame.npcs:
        npcs = frame.npcs
        rows = npc_rows(npcs, {pid: i for i, pid in enumerate(ids)})
        t = out.npc_table
        t.npc_ids = rows[:, -1].astype(WIRE_ID).tobytes()
        t.values = rows[:, :-1].astype(WIRE_FLOAT).tobytes()
        t.columns = len(NPC_TABLE_COLUMNS)
        if any(n.kind for n in npcs):
            t.kinds.extend(n.kind for n in npcs)
    return out


def extract(frame: pb.Frame, knob_names: Sequence[str]) -> RawFrame:
    """A frame's numbers as arrays, from either form (rows or tables); validation comes after."""
    tables = frame.HasField("player_table")
    player_ids = list(frame.player_table.player_ids) if tables else [p.player_id for p in frame.players]
    index_of = {pid: i for i, pid in enumerate(player_ids)}
    players, npcs = _from_tables(frame, len(player_ids)) if tables else _from_rows(frame, index_of)
    single = len(player_ids) == 1
    events = np.array(
        [
            (e.type, index_of.get(e.player_id, 0 if single and not e.player_id else -1), e.amount, e.game_time)
            for e in frame.events
        ],
        np.float64,
    ).reshape(len(frame.events), 4)
    if frame.knob_values:  # the compact form, in the hello's order (its length was checked)
        knob_values = np.fromiter(frame.knob_values, np.float32, len(frame.knob_values))
    else:
        knob_values = values_in_order(frame.knobs, knob_names)
    return RawFrame(players, npcs, events, knob_values, player_ids, tables)


def _from_rows(frame: pb.Frame, index_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    # Protobuf floats are float32: the table form's float32 rows hold them exactly.
    return player_rows(frame.players).astype(np.float64), npc_rows(frame.npcs, index_of)


def _from_tables(frame: pb.Frame, n_players: int) -> tuple[np.ndarray, np.ndarray]:
    """Sizes were checked by validate_frame_counts (a frame that skipped it and does not match raises
    ValueError). Columns after the known ones are skipped."""
    pt = frame.player_table
    n_player_cols, n_npc_cols = len(PLAYER_TABLE_COLUMNS), len(NPC_TABLE_COLUMNS)
    players = np.frombuffer(pt.values, WIRE_FLOAT).reshape(n_players, pt.columns)[:, :n_player_cols]
    nt = frame.npc_table
    ids = np.frombuffer(nt.npc_ids, WIRE_ID)
    npcs = np.empty((len(ids), n_npc_cols + 1))
    if len(ids):
        npcs[:, :n_npc_cols] = np.frombuffer(nt.values, WIRE_FLOAT).reshape(len(ids), nt.columns)[:, :n_npc_cols]
        npcs[:, n_npc_cols] = ids
    return players.astype(np.float64), npcs
