"""Recording round trip: a live session recorded over gRPC, replayed against the same and another policy."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import msgpack
import pytest

from sidecar.model.checkpoint import Checkpoint
from sidecar.operations.recording import read_recording
from sim.client import ClientConfig, play_many
from sim.populations import load_population
from sim.replay import replay_file
from tests.conftest import make_sidecar


def test_record_live_session_then_replay(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    rec_dir = tmp_path / "recs"
    sc = make_sidecar(tiny_checkpoint, record_dir=str(rec_dir))
    try:
        players = load_population("default", 4).players(2)
        # One player consents, the other does not: only one recording.
        cfg = ClientConfig(target=sc.grpc_address, realtime=True, max_seconds=6.0, consent=True, policy="rubber_band")
        rows = asyncio.run(play_many(players[:1], cfg))
        fast = asyncio.run(
            play_many(players[1:], ClientConfig(target=sc.grpc_address, realtime=False, max_seconds=3.0))
        )
        assert rows[0].guidance == rows[0].frames_sent and rows[0].superseded == 0
        # The difficulty played is sampled every game second, guidance or not (a fast client can outrun it).
        assert len(rows[0].curve) >= 6 and len(fast[0].curve) >= 3
        files = sorted(rec_dir.glob("*.mbrec"))
        assert len(files) == 1
        raw = files[0].read_bytes()
        assert b'"p1"' not in raw and b"\x02p1" not in raw  # player ids are pseudonymised
        # A plain msgpack reader can read it.
        with open(files[0], "rb") as fh:
            objs = list(msgpack.Unpacker(fh, raw=False))
        assert objs[0]["format"] == "metabrain-recording" and objs[0]["schema_version"] == "metabrain.v1"
        assert {o[1] for o in objs[1:-1]} == {"in", "out"}
        assert objs[-1][1] == "close" and objs[-1][2].decode() in ("quit", "time limit")  # why it ended

        same = replay_file(files[0], sc.grpc_address)
        assert same.compared == rows[0].frames_sent
        assert same.exact == same.compared and same.max_knob_diff <= 1e-6

        other = replay_file(files[0], sc.grpc_address, policy="static")
        assert other.compared == same.compared
        assert other.max_knob_diff > 0.01 and other.exact < other.compared
    finally:
        sc.stop()


def test_truncated_recording_reads_to_last_complete_record(tiny_checkpoint: Checkpoint, tmp_path: Path) -> None:
    from sidecar.operations.recording import RecordingWriter

    path = tmp_path / "x.mbrec"
    w = RecordingWriter(path, {"game_id": "g", "model_version": "m", "created_at": 0.0})
    for i in range(10):
        w.write(float(i), "in", bytes([i]) * 50)
    w.close()
    data = path.read_bytes()
    path.write_bytes(data[:-20])  # a killed writer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_recording(path)
    assert rec.truncated and len(rec.records) == 9
    assert any("truncated" in str(c.message) for c in caught)
    with pytest.raises(ValueError, match="not a metabrain recording"):
        (tmp_path / "bad.mbrec").write_bytes(msgpack.packb([1, 2, 3]))
        read_recording(tmp_path / "bad.mbrec")
