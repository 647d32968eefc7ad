"""The table form of a frame (Frame.player_table / npc_table): same features as rows, errors named."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from sidecar import errors
from sidecar.features import RAW_NPC_FIELDS, KnobSet, PlayerTrack, featurize
from sidecar.limits import Limits
from sidecar.operations.recording import Pseudonymizer
from sidecar.protocol import Connection, FrameAccepted, ServerInfo
from sidecar.session import SessionRegistry
from sidecar.wire.frames import NPC_TABLE_COLUMNS, PLAYER_TABLE_COLUMNS, extract, to_tables
from sidecar.wire.requests import from_message
from sidecar.wire.schema import pb
from sim.game import hello
from sim.loadgen import FrameStream
from tests.helpers import game_frames, hello_req

FRAMES = game_frames(200)
KNOBS = KnobSet.from_specs(list(hello().knobs))
FIGHT = next(f for f in FRAMES if len(f.npcs) >= 2)  # a frame with two NPCs or more


def _multiplayer_frame(players: int = 32) -> pb.Frame:
    return pb.SessionRequest.FromString(FrameStream(7, players, tables=False).next(1.0)).frame


def _features(frames: list[pb.Frame]) -> list[tuple[np.ndarray, ...]]:
    tracks: dict[str, PlayerTrack] = {}
    out, prev = [], None
    for f in frames:
        ff = featurize(extract(f, KNOBS.names), f.sequence, f.game_time, tracks, KNOBS, prev)
        prev = f.game_time
        out.append((ff.players, ff.npcs, ff.npc_mask, ff.npc_ids))
    return out


def test_tables_featurize_exactly_as_rows() -> None:
    """A session of simulator frames, and a 32-player frame with 32 squads and targets: same numbers."""
    rows_then_tables = (FRAMES, [to_tables(f, KNOBS.names) for f in FRAMES])
    assert rows_then_tables[1][0].knob_values and not rows_then_tables[1][0].knobs
    for a, b in zip(*(_features(fs) for fs in rows_then_tables), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    big = _multiplayer_frame()
    ra, rb = extract(big, KNOBS.names), extract(to_tables(big), KNOBS.names)
    assert not ra.tables and rb.tables and ra.player_ids == rb.player_ids and len(rb.npcs) == len(big.npcs) >= 96
    for x, y in ((ra.players, rb.players), (ra.npcs, rb.npcs), (ra.events, rb.events)):
        np.testing.assert_array_equal(x, y)
    targets = rb.npcs[:, RAW_NPC_FIELDS.index("target")].astype(int)  # each squad targets its own player
    assert len(set(targets.tolist())) == 32 and targets.min() == 0


def test_extra_columns_are_skipped() -> None:
    """A newer game may append columns; this sidecar reads the ones it knows."""
    f = to_tables(FIGHT)
    p = np.frombuffer(f.player_table.values, "<f4").reshape(1, -1)
    f.player_table.values = np.hstack([p, np.full((1, 3), 7.0, "<f4")]).tobytes()
    f.player_table.columns = len(PLAYER_TABLE_COLUMNS) + 3
    n = np.frombuffer(f.npc_table.values, "<f4").reshape(-1, len(NPC_TABLE_COLUMNS))
    f.npc_table.values = np.hstack([n, np.full((len(n), 1), 9.0, "<f4")]).tobytes()
    f.npc_table.columns = len(NPC_TABLE_COLUMNS) + 1
    c = _conn()
    accepted = c.receive(from_message(pb.SessionRequest(frame=f)), 0.1)
    assert isinstance(accepted, FrameAccepted)
    want = extract(FIGHT, KNOBS.names)
    np.testing.assert_array_equal(accepted.frame.raw.players, want.players)
    np.testing.assert_array_equal(accepted.frame.raw.npcs, want.npcs)


def _conn(limits: Limits | None = None) -> Connection:
    c = Connection(SessionRegistry(limits or Limits(max_frames_per_second=1e6)), ServerInfo("m", "predictive"))
    c.receive(from_message(hello_req()), 0.0)
    return c


def _set(table: str, column: str, value: float, row: int = 0) -> Callable[[pb.Frame], None]:
    def mutate(f: pb.Frame) -> None:
        t = getattr(f, table)
        cols = PLAYER_TABLE_COLUMNS if table == "player_table" else NPC_TABLE_COLUMNS
        v = np.frombuffer(t.values, "<f4").reshape(-1, t.columns).copy()
        v[row, cols.index(column)] = value
        t.values = v.tobytes()

    return mutate


def _more_players(n: int) -> Callable[[pb.Frame], None]:
    def mutate(f: pb.Frame) -> None:
        t = f.player_table
        t.player_ids.extend(f"extra-{i}" for i in range(n))
        t.values += t.values[: 4 * t.columns] * n

    return mutate


def _add_player(player_id: str, values: bool = True) -> Callable[[pb.Frame], None]:
    def mutate(f: pb.Frame) -> None:
        t = f.player_table
        t.player_ids.append(player_id)
        if values:
            t.values += t.values[: 4 * t.columns]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "error", "field", "words"),
    [
        (
            _set("player_table", "position.x", math.nan),
            errors.InvalidArgument,
            "frame.player_table[0].position.x",
            "finite",
        ),
        (
            _set("player_table", "input.move_y", 4.0),
            errors.InvalidArgument,
            "frame.player_table[0].input.move_y",
            "outside",
        ),
        (_set("player_table", "vr", 2.0), errors.InvalidArgument, "frame.player_table[0].vr", "outside [0, 1]"),
        (_set("player_table", "health", 500.0), errors.InvalidArgument, "frame.player_table[0].health", "exceeds"),
        (_set("npc_table", "target", 3.0, row=1), errors.InvalidArgument, "frame.npc_table[1].target", "-1 for none"),
        (_set("npc_table", "target", -0.5), errors.InvalidArgument, "frame.npc_table[0].target", "whole number"),
        (_set("npc_table", "health", -1.0), errors.InvalidArgument, "frame.npc_table[0].health", "outside"),
        (
            lambda f: setattr(f.player_table, "values", f.player_table.values[:-4]),
            errors.InvalidArgument,
            "frame.player_table.values",
            "76 bytes; 1 rows x 20 columns x 4 bytes is 80",
        ),
        (
            lambda f: setattr(f.player_table, "columns", 19),
            errors.InvalidArgument,
            "frame.player_table.columns",
            "at least",
        ),
        (
            lambda f: setattr(f.npc_table, "npc_ids", f.npc_table.npc_ids + b"\x01\x02"),
            errors.InvalidArgument,
            "frame.npc_table.npc_ids",
            "4 bytes (uint32) per NPC",
        ),
        (lambda f: f.npc_table.kinds.append("x"), errors.InvalidArgument, "frame.npc_table.kinds", "one per NPC"),
        (lambda f: f.knob_values.append(0.5), errors.InvalidArgument, "frame.knob_values", "declared 4 knobs"),
        (lambda f: f.knobs.add(name="spawn_rate"), errors.InvalidArgument, "frame.knob_values", "not both"),
        (
            lambda f: f.knob_values.__setitem__(2, math.inf),
            errors.InvalidArgument,
            "frame.knob_values[2]",
            "finite",
        ),
        (lambda f: f.players.add(player_id="p2"), errors.InvalidArgument, "frame.player_table", "send one"),
        (lambda f: f.ClearField("player_table"), errors.InvalidArgument, "frame.npc_table", "needs frame.player_table"),
        (
            _add_player("p2", values=False),
            errors.InvalidArgument,
            "frame.player_table.values",
            "2 rows",
        ),
        (_more_players(64), errors.LimitExceeded, "frame.player_table.player_ids", "max_players_per_frame=64"),
        (
            lambda f: setattr(f.npc_table, "npc_ids", bytes(4 * 257)),
            errors.LimitExceeded,
            "frame.npc_table.npc_ids",
            "257 entries; the limit is max_npcs_per_frame=256",
        ),
        (
            _add_player("p1"),
            errors.InvalidArgument,
            "frame.player_table.player_ids[1]",
            "twice",
        ),
    ],
)
def test_bad_tables_are_named_and_not_fatal(
    mutate: Callable[[pb.Frame], object], error: type[errors.MetabrainError], field: str, words: str
) -> None:
    c = _conn()
    good = to_tables(FIGHT, KNOBS.names)
    bad = pb.Frame()
    bad.CopyFrom(good)
    mutate(bad)
    with pytest.raises(error) as e:
        c.receive(from_message(pb.SessionRequest(frame=bad)), 0.0)
    assert not e.value.fatal and e.value.field == field, e.value.field
    assert words in e.value.message, e.value.message
    assert e.value.sequence == good.sequence
    assert isinstance(c.receive(from_message(pb.SessionRequest(frame=good)), 0.1), FrameAccepted)  # the session goes on


def test_large_npc_ids_are_accepted() -> None:
    """NPC ids are uint32: Godot's default id (an instance id) is far above max_abs_coordinate."""
    for f in (FIGHT, to_tables(FIGHT)):
        big = pb.Frame()
        big.CopyFrom(f)
        if big.HasField("npc_table"):
            n = len(big.npc_table.npc_ids) // 4
            big.npc_table.npc_ids = (4_000_000_000 + np.arange(n)).astype("<u4").tobytes()
        else:
            big.npcs[0].npc_id = 4_000_000_000
        accepted = _conn().receive(from_message(pb.SessionRequest(frame=big)), 0.1)
        assert (
            isinstance(accepted, FrameAccepted)
            and accepted.frame.raw.npcs[0, RAW_NPC_FIELDS.index("npc_id")] == 4_000_000_000
        )


def test_recordings_pseudonymise_table_player_ids() -> None:
    f = to_tables(_multiplayer_frame(3))
    out = Pseudonymizer(b"k" * 32).request(pb.SessionRequest(frame=f)).frame
    ids = list(out.player_table.player_ids)
    assert len(ids) == 3 and all(i.startswith("ph_") for i in ids) and not set(ids) & set(f.player_table.player_ids)
    assert out.player_table.values == f.player_table.values
    rows = Pseudonymizer(b"k" * 32).request(pb.SessionRequest(frame=FRAMES[0])).frame
    assert not rows.HasField("player_table")


def test_string_limits_count_bytes_not_characters() -> None:
    """An NPC kind of 40 four-byte characters is 160 bytes, over max_string_bytes=128 (as a row or a table)."""
    rows = pb.Frame()
    rows.CopyFrom(FIGHT)
    rows.npcs[0].kind = "\U0001f47e" * 40
    tables = to_tables(rows)
    for frame, field in ((rows, "frame.npcs[0].kind"), (tables, "frame.npc_table.kinds[0]")):
        with pytest.raises(errors.InvalidArgument) as e:
            _conn().receive(from_message(pb.SessionRequest(frame=frame)), 0.1)
        assert e.value.field == field and "160 bytes" in e.value.message and e.value.sequence == FIGHT.sequence
