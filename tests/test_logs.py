"""JSON-lines logs: one object per line, sessions named by session id, never by a player id."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sidecar.wire.schema import pb
from tests.helpers import GrpcSession, frame_req, game_frames, hello_req
from tests.processes import SidecarProcess


def test_json_logs_name_sessions_and_never_players(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path, "--log-format", "json") as sc:
        c = GrpcSession(sc.channel)
        c.send(hello_req())
        sid = c.recv().welcome.session_id
        frames = game_frames(3)
        for f in frames:  # a player id that would be personal data
            for p in f.players:
                p.player_id = "alice.smith@example.com"
            for e in f.events:
                e.player_id = "alice.smith@example.com" if e.player_id else ""
        player_ids = {p.player_id for f in frames for p in f.players}
        for f in frames:
            c.send(frame_req(f))
            c.recv()
        c.send(pb.SessionRequest(goodbye=pb.Goodbye(reason="level complete")))
        assert c.recv().WhichOneof("kind") == "goodbye"
        c.close()
        sc.signal(15)
        sc.proc.wait(30)
        lines = [line for line in sc.log().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert records and all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    opened = [r for r in records if r["msg"] == "session opened"]
    assert opened and opened[0]["session_id"] == sid and opened[0]["transport"] == "grpc"
    assert any(r.get("session_id") == sid and r["msg"].startswith("session ended") for r in records)
    text = "\n".join(lines)
    assert player_ids and not any(pid in text for pid in player_ids)


def test_logs_follow_stderr_when_it_is_swapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that swaps stderr after set-up (a test runner capturing output) gets its records on the
    new stream, and none is written to the old one once it is closed ("I/O operation on closed file")."""
    import io
    import logging as _logging

    from sidecar.operations.logs import configure_logging

    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    root = _logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO")
        _logging.getLogger("metabrain.test").info("before")
        first.close()
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        _logging.getLogger("metabrain.test").info("after the swap")
        assert "after the swap" in second.getvalue()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
