"""The compiled frame reader (sidecar/wire/_frame_reader.c) against the Python path it stands in for.

Its contract: it accepts only frames the Python path accepts, with the same numbers, and it accepts the
table-form frames the engine plugins send (else it buys nothing). Checked on simulator frames, on a
32-player frame, and on thousands of mutations of them: hostile numbers, duplicated ids, counts and
shapes that do not match, random byte edits.
"""

from __future__ import annotations

import math
import random
import struct
from pathlib import Path

import numpy as np
import pytest

from sidecar.errors import MetabrainError
from sidecar.features import KnobSet, RawFrame
from sidecar.limits import Limits
from sidecar.validation import validate_raw
from sidecar.wire.checks import validate_frame_counts
from sidecar.wire.frames import extract, to_tables
from sidecar.wire.requests import decode
from sidecar.wire.schema import pb
from sidecar.wire.table_reader import compiled_reader_available, read_compiled
from sim.game import hello
from sim.loadgen import FrameStream
from tests.ci import IN_CI
from tests.helpers import game_frames
from tests.processes import SidecarProcess

KNOBS = KnobSet.from_specs(list(hello().knobs))
K = len(KNOBS.names)
LIMITS = Limits()

if not compiled_reader_available():
    if IN_CI:
        pytest.fail(
            "the compiled frame reader is not built (pip install -e . builds it with gcc and the Python headers)",
            pytrace=False,
        )
    pytest.skip("the compiled frame reader is not built here (no C compiler when installed)", allow_module_level=True)


def _table_frames() -> list[pb.Frame]:
    frames = [to_tables(f, KNOBS.names) for f in game_frames(120)]
    big = pb.SessionRequest.FromString(FrameStream(7, 32, tables=False).next(1.0)).frame
    frames.append(to_tables(big, KNOBS.names))
    return frames


FRAMES = _table_frames()


def _python(data: bytes, limits: Limits = LIMITS) -> RawFrame | MetabrainError:
    """What the Python path makes of these bytes: the frame's numbers, or its named refusal."""
    try:
        _, msg = decode(data, limits)
        frame = msg.frame
        validate_frame_counts(frame, limits, K)
        raw = extract(frame, KNOBS.names)
        validate_raw(raw, limits, frame.sequence)
    except MetabrainError as err:
        return err
    return raw


def _same(a: RawFrame, b: RawFrame) -> None:
    assert a.player_ids == b.player_ids and a.tables and b.tables
    for x, y in ((a.players, b.players), (a.npcs, b.npcs), (a.events, b.events), (a.knob_values, b.knob_values)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _check(data: bytes, limits: Limits = LIMITS) -> bool:
    """The contract on one message; returns whether the compiled reader took it."""
    expected = _python(data, limits)
    if isinstance(expected, MetabrainError) and expected.field in ("", "kind"):
        return False  # not a SessionRequest the parser accepts: never given to the reader
    got = read_compiled(data, limits, K)
    if got is None:
        return False
    assert not isinstance(expected, MetabrainError), f"compiled reader accepted what Python refuses: {expected}"
    _same(got, expected)
    return True


def _bytes(frame: pb.Frame) -> bytes:
    return pb.SessionRequest(frame=frame).SerializeToString()


def test_reads_every_plugin_frame_as_python_does() -> None:
    """Every simulator frame in the table form (events, NPCs coming and going, a 32-player frame with 96+
    NPCs): taken by the compiled reader, with the Python path's numbers."""
    taken = [_check(_bytes(f)) for f in FRAMES]
    assert all(taken)
    assert sum(len(f.events) for f in FRAMES) > 20 and max(len(f.npc_table.npc_ids) // 4 for f in FRAMES) >= 96


def test_frame_shapes_it_leaves_to_python() -> None:
    """The row form, knobs by name, a table twice: the Python path's (still read correctly there)."""
    rows = game_frames(3)[2]
    for frame in (rows, to_tables(rows)):  # to_tables without knob names keeps knobs as messages
        data = _bytes(frame)
        assert read_compiled(data, LIMITS, K) is None and not isinstance(_python(data), MetabrainError)
    table_again = pb.SessionRequest(frame=pb.Frame(player_table=FRAMES[5].player_table)).SerializeToString()
    twice = _bytes(FRAMES[5]) + table_again  # parsed, the two frames merge: the Python path's to read
    assert read_compiled(twice, LIMITS, K) is None


def test_an_event_naming_no_player() -> None:
    """One player: an event with no player id is that player's; with two, it is nobody's (-1)."""
    one = pb.Frame()
    one.CopyFrom(FRAMES[10])
    one.events.add(type=pb.EVENT_TYPE_DAMAGE_TAKEN, amount=3.0, game_time=one.game_time)
    assert _check(_bytes(one))
    assert read_compiled(_bytes(one), LIMITS, K).events[-1, 1] == 0.0  # type: ignore[union-attr]
    big = FRAMES[-1]
    two = pb.Frame()
    two.CopyFrom(big)
    two.events.add(type=pb.EVENT_TYPE_DAMAGE_TAKEN, amount=3.0, game_time=two.game_time)
    two.events.add(type=pb.EVENT_TYPE_KILL, player_id=big.player_table.player_ids[3], game_time=two.game_time)
    assert _check(_bytes(two))
    assert read_compiled(_bytes(two), LIMITS, K).events[-2:, 1].tolist() == [-1.0, 3.0]  # type: ignore[union-attr]


_BAD_FLOATS = (math.nan, math.inf, -math.inf, -1.0, 0.5, 1.5, 2.0, 7.0, 11.0, -1e7, 1e7, 1e10, 4e9, -0.0)


def _mutations(frame: pb.Frame, rng: random.Random) -> list[bytes]:
    """Hostile versions of a valid frame, each one edit."""
    out = []
    pt, nt = frame.player_table, frame.npc_table

    def edited(edit: object) -> bytes:
        f = pb.Frame()
        f.CopyFrom(frame)
        edit(f)  # type: ignore[operator]
        return _bytes(f)

    def set_float(table: str, values: bytes, at: int, v: float) -> object:
        b = bytearray(values)
        b[4 * at : 4 * at + 4] = struct.pack("<f", v)
        return lambda f: setattr(getattr(f, table), "values", bytes(b))

    for _ in range(12):
        at = rng.randrange(len(pt.values) // 4)
        out.append(edited(set_float("player_table", pt.values, at, rng.choice(_BAD_FLOATS))))
        if nt.values:
            at = rng.randrange(len(nt.values) // 4)
            out.append(edited(set_float("npc_table", nt.values, at, rng.choice(_BAD_FLOATS))))
    if len(nt.npc_ids) >= 8:
        out.append(edited(lambda f: setattr(f.npc_table, "npc_ids", nt.npc_ids[:4] + nt.npc_ids[:4] + nt.npc_ids[8:])))
    out.append(edited(lambda f: setattr(f.npc_table, "npc_ids", nt.npc_ids[:-1])))
    out.append(edited(lambda f: setattr(f.npc_table, "columns", max(nt.columns - 1, 0))))
    out.append(edited(lambda f: setattr(f.player_table, "columns", 19)))
    out.append(edited(lambda f: setattr(f.player_table, "values", pt.values[:-4])))
    out.append(edited(lambda f: f.player_table.player_ids.append("late")))
    out.append(edited(lambda f: f.player_table.player_ids.append(pt.player_ids[0])))
    out.append(edited(lambda f: f.npc_table.kinds.append("grunt")))
    out.append(edited(lambda f: f.player_table.player_ids.__setitem__(0, "x" * 129)))
    out.append(edited(lambda f: f.player_table.player_ids.__setitem__(0, "é" * 64)))  # 128 bytes: allowed
    out.append(edited(lambda f: f.player_table.player_ids.__setitem__(0, "é" * 65)))  # 130 bytes: over
    out.append(edited(lambda f: setattr(f, "game_time", rng.choice(_BAD_FLOATS))))
    out.append(edited(lambda f: f.knob_values.append(1.0)))
    out.append(edited(lambda f: f.knob_values.__setitem__(0, math.nan)))
    out.append(edited(lambda f: f.knob_values.__delitem__(slice(None))))  # none reported: NaN for each
    out.append(edited(lambda f: f.knobs.add(name="spawn_rate", value=1.0)))
    out.append(edited(lambda f: f.events.add(type=rng.choice((-1, 0, 4, 10, 11, 99)), amount=rng.choice(_BAD_FLOATS))))
    out.append(edited(lambda f: f.events.add(type=4, player_id="y" * 129)))
    out.append(edited(lambda f: f.events.add(type=4, game_time=rng.choice(_BAD_FLOATS))))
    out.append(edited(lambda f: f.events.extend([pb.GameEvent(type=1)] * 257)))
    out.append(edited(lambda f: f.ClearField("npc_table") if not nt.npc_ids else f.npc_table.kinds.append("a")))
    out.append(edited(lambda f: setattr(f.npc_table, "npc_ids", b"")))
    data = _bytes(frame)
    for _ in range(20):  # random byte edits, insertions and cuts
        b = bytearray(data)
        at = rng.randrange(len(b))
        r = rng.random()
        if r < 0.5:
            b[at] = rng.randrange(256)
        elif r < 0.75:
            b.insert(at, rng.randrange(256))
        else:
            del b[at:]
        out.append(bytes(b))
    return out


def test_never_accepts_what_python_refuses() -> None:
    """Thousands of hostile edits of plugin frames: whatever the compiled reader accepts, the Python
    path accepts with the same numbers; what it refuses, the Python path refuses naming the field (or
    reads: the reader may leave any frame to it)."""
    rng = random.Random(20261203)
    taken = refused = 0
    for frame in FRAMES[::4]:
        for data in _mutations(frame, rng):
            if _check(data):
                taken += 1
            elif isinstance(_python(data), MetabrainError):
                refused += 1
    assert taken > 100 and refused > 300  # both sides of the contract were exercised


def test_limits_are_the_servers() -> None:
    """Tighter limits (fewer players, NPCs, events, shorter strings, a smaller world) are the reader's too."""
    tight = Limits(
        max_players_per_frame=8,
        max_npcs_per_frame=16,
        max_events_per_frame=2,
        max_string_bytes=4,
        max_abs_coordinate=50.0,
    )
    outcomes = [_check(_bytes(f), tight) for f in FRAMES]
    assert not outcomes[-1]  # 32 players
    assert any(outcomes) or all(isinstance(_python(_bytes(f), tight), MetabrainError) for f in FRAMES)


def test_any_bytes_at_all_are_read_safely() -> None:
    """Bytes the protobuf parser never saw (random, cut short, spliced from frames): the reader returns
    None or numbers, and never reads past what it was given (a crash would end the test process)."""
    rng = random.Random(7)
    seeds = [_bytes(f) for f in FRAMES[::10]]
    for _ in range(20_000):
        r = rng.random()
        if r < 0.3:
            data = rng.randbytes(rng.randrange(64))
        elif r < 0.6:
            s = rng.choice(seeds)
            data = s[: rng.randrange(len(s))]
        else:
            a, b = rng.choice(seeds), rng.choice(seeds)
            i, j = rng.randrange(len(a)), rng.randrange(len(b))
            data = a[:i] + b[j:]
        got = read_compiled(data, LIMITS, K)
        assert got is None or (got.tables and len(got.player_ids) == len(got.players))


def test_the_sidecar_says_which_reader_reads_its_frames(tmp_path: Path) -> None:
    """`metabrain serve` names the reader on its first line (a studio profiling it wants to know), and
    `--pure-python` turns the compiled code off."""
    for args, reader in (((), "compiled"), (("--pure-python",), "python")):
        with SidecarProcess(tmp_path, *args, name=f"sidecar-{reader}") as sc:
            line = next(x for x in sc.log().splitlines() if x.startswith("metabrain serving"))
            assert line.endswith(f"frames={reader}"), line
