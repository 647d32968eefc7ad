"""The compiled lane for frames between model steps (sidecar/serving/between_lane.py) answers exactly as
the Python path does, changes the session's state exactly as it does, and declines what it must.

The same frames -- a simulated game at 60 Hz with NPCs coming and going, and among them frames the lane
must leave to the Python path (out of order, invalid numbers, a pause, another player, another form,
wire oddities) -- go through two sidecars, one whose streams have the lane and one whose do not; every
answer (its time in the sidecar aside) and the session's state after every frame must be the same.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

import sidecar.serving.service as service_module
from sidecar.columns import EventType
from sidecar.errors import MetabrainError
from sidecar.limits import Limits
from sidecar.serving.server import ServeConfig, Sidecar
from sidecar.serving.service import StreamHandler
from sidecar.wire.frames import to_tables
from sidecar.wire.schema import pb
from sidecar.wire.table_reader import compiled_reader_available
from sim.game import Action, Game, hello

pytestmark = pytest.mark.skipif(not compiled_reader_available(), reason="the compiled reader is not built")

HZ = 60.0
KNOB_NAMES = [k.name for k in hello().knobs]


def _frames(seed: int, n: int) -> list[pb.Frame]:
    """A simulated game's frames in the table form, one per tick, stamped at 60 Hz."""
    g = Game(seed)
    out = []
    for i in range(n):
        t = g.nearest_npc()
        g.step(Action(move_x=0.5 if i % 200 < 120 else -0.5, aim_at=t.npc_id if t else -1, shoot=True, hit_chance=0.4))
        f = to_tables(g.frame(1.0 / HZ), KNOB_NAMES)
        f.game_time = (i + 1) / HZ
        out.append(f)
    return out


def _request(f: pb.Frame) -> bytes:
    return pb.SessionRequest(frame=f).SerializeToString()


def _with_player(f: pb.Frame) -> pb.Frame:
    g = pb.Frame()
    g.CopyFrom(f)
    t = g.player_table
    t.player_ids.append("second")
    t.values = t.values + t.values[: 4 * t.columns]
    return g


def _with_nan(f: pb.Frame) -> pb.Frame:
    g = pb.Frame()
    g.CopyFrom(f)
    v = bytearray(g.player_table.values)
    v[0:4] = struct.pack("<f", float("nan"))
    g.player_table.values = bytes(v)
    return g


def _with_event(f: pb.Frame, kind: int) -> pb.Frame:
    g = pb.Frame()
    g.CopyFrom(f)
    g.events.add(type=kind, game_time=f.game_time)  # type: ignore[arg-type]
    return g


def _hostile(frames: list[pb.Frame]) -> list[bytes]:
    """The frames as bytes, with what the lane must decline mixed in (each still in the stream's order)."""
    out: list[bytes] = []
    seq = 0
    for i, f in enumerate(frames):
        seq += 1
        f.sequence = seq
        kind = i % 97
        if kind == 20:
            out.append(_request(f))
            out.append(_request(f))  # the same sequence again: refused as stale
            continue
        if kind == 30:  # game time going back
            back = pb.Frame()
            back.CopyFrom(f)
            back.game_time = f.game_time - 0.5
            back.sequence = seq
            seq += 1
            f.sequence = seq
            out.append(_request(back))
        elif kind == 40:
            f = _with_nan(f)
        elif kind == 45:
            f = _with_event(f, EventType.PAUSE)
        elif kind == 47:
            f = _with_event(f, EventType.RESUME)
        elif kind in (55, 56, 57):
            f = _with_player(f)
        elif kind == 60:
            f.ClearField("knob_values")
        elif kind == 70 and len(f.npc_table.npc_ids) >= 4:  # an NPC gone for one frame
            n = len(f.npc_table.npc_ids) // 4
            f.npc_table.npc_ids = f.npc_table.npc_ids[: 4 * (n - 1)]
            f.npc_table.values = f.npc_table.values[: 4 * (n - 1) * f.npc_table.columns]
            del f.npc_table.kinds[n - 1 :]
        elif kind == 80:
            out.append(_request(f) + b"\x78\x01")  # an unknown field after the frame: the parser's
            continue
        out.append(_request(f))
    return out


class _Stream:
    """One sidecar (no transport) and one stream of it, driven a message at a time."""

    def __init__(self, lane: bool, observers: list[Any] | None = None) -> None:
        limits = Limits(max_frames_per_second=1e6, max_messages_per_second_per_connection=1e6)
        self.sidecar = Sidecar(ServeConfig(limits=limits, grpc_port=None, ws_port=None))
        for o in observers or []:
            self.sidecar.add_observer(o)
        self.sent: list[bytes] = []
        self.lane = lane

    async def open(self, policy: str = "predictive", consent: bool = False) -> None:
        await self.sidecar.engine.start()
        ctx = self.sidecar.ctx
        admission = object()
        ctx.admissions.admit(admission, "test", time.monotonic())
        send_bytes: Callable[[bytes], None] | None = self.sent.append if self.lane else None
        self.handler = StreamHandler(
            ctx,
            "websocket",
            lambda r: self.sent.append(r.SerializeToString()),
            lambda e: self.sent.append(b"closed"),
            lambda: None,
            admission,
            send_bytes,
        )
        request = pb.SessionRequest(hello=hello(policy=policy, tick_rate_hz=HZ, consent=consent))
        self.handler.on_bytes(request.SerializeToString())

    async def send(self, data: bytes) -> list[bytes]:
        """The answers to one message, once every one of them is out."""
        before = len(self.sent)
        try:
            self.handler.on_bytes(data)
        except MetabrainError as err:  # the stream ends: what the transport would close it with
            self.sent.append(f"fatal {err.code.name} {err.field}".encode())
        while self.handler.pending:
            await asyncio.sleep(0.0005)
        return self.sent[before:]

    def state(self) -> dict[str, Any]:
        s = self.handler.session
        assert s is not None and s.clock is not None and s.director is not None
        c, d = s.clock, s.director
        n = len(c.ids) if c.folded else 0
        return {
            "session": (s.last_sequence, s.last_game_time, s.frames_accepted, s.paused),
            "clock": (
                c.rows[:n].tobytes(),
                list(c.ids) if c.folded else [],
                list(c.events),
                c.folded,
                c.last_frame,
                c.next_step,
            ),
            "director": (np.asarray(d.values).tobytes(), d.last_time, d.played_s, d.fallback),
            "engine": (self.sidecar.engine.between_frames, self.sidecar.engine.submitted),
        }


def _comparable(answer: bytes) -> bytes:
    """An answer without its time in the sidecar (the one field the two paths may differ in)."""
    if answer.startswith((b"closed", b"fatal")):
        return answer
    r = pb.SessionResponse.FromString(answer)
    if r.HasField("guidance"):
        r.guidance.processing_us = 0
    return r.SerializeToString()


class _Clock:
    """The time both sidecars receive each message at (their streams' `time.monotonic`): whether a step
    frame is answered at once depends on the wall time between a session's step frames (the engine's
    real-time check), so two sidecars that read the real clock can decide it differently when the
    machine stalls between their sends of one frame (a 150 ms stall there did so, every time). Kept far
    behind the real clock, so times in the sidecar stay positive (and clip alike on both paths)."""

    def __init__(self) -> None:
        self.now = time.monotonic() - 10_000.0

    def monotonic(self) -> float:
        return self.now


# Messages the test's clock advances at real time (1/HZ each: a game in real time, whose step frames are
# answered at once, as a game's are); after them a tenth of that each (a game ten times faster than real
# time, a replay: step frames wait for their steps).
_REAL_TIME_MESSAGES = 600


@dataclass
class _Ran:
    answers: list[list[bytes]]  # each message's answers, the lane sidecar's
    states: list[dict[str, Any]]  # the session's state after each message
    in_lane: int  # frames the lane answered
    at_once: int  # step frames answered at once (the same on both)


def _run(messages: list[bytes], policy: str = "predictive") -> _Ran:
    clock = _Clock()

    async def both() -> _Ran:
        lane, plain = _Stream(True), _Stream(False)
        await lane.open(policy)
        await plain.open(policy)
        assert lane.handler.lane is not None and plain.handler.lane is None
        answers: list[list[bytes]] = []
        states: list[dict[str, Any]] = []
        for i, data in enumerate(messages):
            clock.now += 1.0 / HZ if i < _REAL_TIME_MESSAGES else 0.1 / HZ
            a, b = await lane.send(data), await plain.send(data)
            assert [_comparable(x) for x in a] == [_comparable(x) for x in b], f"message {len(answers)}"
            assert lane.state() == plain.state(), f"message {len(answers)}"
            answers.append(a)
            states.append(lane.state())
        at_once = lane.sidecar.engine.steps_answered_at_once
        assert at_once == plain.sidecar.engine.steps_answered_at_once
        return _Ran(answers, states, lane.handler.lane.answered, at_once)

    with mock.patch.object(service_module, "time", clock):
        return asyncio.run(both())


def test_the_lane_answers_and_changes_state_as_the_python_path_does() -> None:
    messages = _hostile(_frames(11, 1400))
    ran = _run(messages)
    answers, in_lane = ran.answers, ran.in_lane
    # Both ways of taking a step frame were compared: answered at once (a game in real time) and waiting.
    assert ran.at_once > 10 and ran.at_once < len(messages) / 12 - 10
    # Most frames between steps went through the lane (the model steps at 5 Hz: 11 in 12 are between).
    assert in_lane > 0.7 * len(messages)
    for one in answers:
        for a in one:
            if not a.startswith(
                b"fatal"
            ):  # every answer the protobuf serializer's own bytes (the lane's spliced ones too)
                assert pb.SessionResponse.FromString(a).SerializeToString() == a
    errors = [pb.SessionResponse.FromString(a).error for one in answers for a in one]
    fields = {e.field for e in errors if e.message}
    # The declined frames were refused by the Python path, naming what was wrong.
    assert "frame.sequence" in fields and "frame.game_time" in fields


def test_hints_follow_the_npcs_and_a_pause_goes_through_the_protocol() -> None:
    frames = _frames(5, 700)
    for i, f in enumerate(frames):
        f.sequence = i + 1
    frames[300] = _with_event(frames[300], EventType.PAUSE)
    frames[320] = _with_event(frames[320], EventType.RESUME)
    ran = _run([_request(f) for f in frames])
    answers, states = ran.answers, ran.states
    assert states[300]["session"][3] is True and states[319]["session"][3] is True
    assert states[320]["session"][3] is False
    hinted = [pb.SessionResponse.FromString(a).guidance.npc_hints for one in answers for a in one]
    assert any(len(h) for h in hinted)  # hints went out, and matched the Python path's (compared in _run)


def test_a_player_id_that_is_not_utf8_ends_the_stream_on_both_paths() -> None:
    frames = _frames(7, 60)
    good = [_request(f) for f in frames[:-1]]
    pid = frames[-1].player_table.player_ids[0].encode()
    bad = _request(frames[-1]).replace(pid, b"\xff" * len(pid))  # refused by the protobuf parser: the lane too
    answers = _run([*good, bad]).answers
    assert answers[-1] == [b"fatal MALFORMED "]


def test_a_recording_or_dashboard_observer_keeps_every_frame_on_the_python_path() -> None:
    from sidecar.serving.service import SessionObserver

    class Everything(SessionObserver):
        def __init__(self) -> None:
            self.frames = 0

        def on_request(self, session: Any, req: Any, raw: Any) -> None:
            self.frames += req.HasField("frame")

    async def go() -> tuple[int, int]:
        watcher = Everything()
        s = _Stream(True, [watcher])
        await s.open()
        for f in _frames(3, 100):
            await s.send(_request(f))
        return watcher.frames, 0 if s.handler.lane is None else s.handler.lane.answered

    seen, in_lane = asyncio.run(go())
    assert seen == 100 and in_lane == 0


def test_a_recorder_keeps_only_the_sessions_it_records_off_the_lane(tmp_path: Path) -> None:
    from sidecar.operations.recording import SessionRecorder, read_recording, recording_files

    async def go(consent: bool) -> int:
        s = _Stream(True, [SessionRecorder(tmp_path / str(consent), "test")])
        await s.open(consent=consent)
        for f in _frames(4, 120):
            await s.send(_request(f))
        return 0 if s.handler.lane is None else s.handler.lane.answered

    assert asyncio.run(go(False)) > 60  # not recorded: its frames between steps take the lane
    assert not recording_files([tmp_path / "False"])
    assert asyncio.run(go(True)) == 0  # recorded: every frame and answer in the recording
    (path,) = recording_files([tmp_path / "True"])
    rec = read_recording(path)
    assert sum(1 for _, r in rec.requests() if r.HasField("frame")) == 120
    assert sum(1 for _, r in rec.responses() if r.HasField("guidance")) == 120


def test_the_dashboard_sees_lane_answers_as_it_sees_the_others() -> None:
    from sidecar.operations.dashboard import DashboardFeed

    async def go(lane: bool) -> tuple[int, int, list[tuple[float, ...]]]:
        feed = DashboardFeed("test", "cpu", "predictive", sample_hz=1e9)  # every answer sampled
        s = _Stream(lane, [feed])
        await s.open()
        for f in _frames(6, 150):
            await s.send(_request(f))
        sid = s.handler.session.session_id if s.handler.session else ""
        track = feed.tracks[sid]
        answered = 0 if s.handler.lane is None else s.handler.lane.answered
        return answered, track.frames, [p[1:] for p in track.points]  # the time of each sample aside

    in_lane, frames, points = asyncio.run(go(True))
    _, frames_plain, points_plain = asyncio.run(go(False))
    assert in_lane > 100  # the dashboard no longer keeps a session off the lane
    assert frames == frames_plain == 150
    assert points == points_plain  # difficulty and insight of every answer, the lane's read from its bytes


def test_an_observers_warning_on_a_lane_frame_follows_its_answer() -> None:
    """An observer may warn a stream in-stream (a non-fatal error, after the answer), on a frame answered
    in the lane as on any other; a bug in one is logged and ends nothing."""
    from sidecar.errors import RecordingFailed
    from sidecar.serving.service import SessionObserver

    class Warns(SessionObserver):
        needs_messages = False

        def __init__(self) -> None:
            self.calls = 0

        def on_between(self, session: Any, transport: str, processing_us: int, answer: bytes) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RecordingFailed("the exporter is behind (injected)", field="recording")
            raise RuntimeError("observer bug (injected)")

    async def go() -> tuple[list[list[bytes]], int]:
        watcher = Warns()
        s = _Stream(True, [watcher])
        await s.open()
        got = [await s.send(_request(f)) for f in _frames(8, 60)]
        return got, watcher.calls

    answers, calls = asyncio.run(go())
    assert calls > 30
    warned = [one for one in answers if len(one) == 2]
    assert len(warned) == 1  # the first lane frame: its guidance, then the observer's warning
    first, second = (pb.SessionResponse.FromString(a) for a in warned[0])
    assert first.HasField("guidance") and second.error.field == "recording" and not second.error.fatal
    assert all(pb.SessionResponse.FromString(a).HasField("guidance") for one in answers for a in one[:1])


def test_the_spliced_answer_is_what_the_serializer_writes_zeros_and_fallback_included() -> None:
    from sidecar.engine.clock import FOLD_SPANS
    from sidecar.wire.table_reader import lane_reader

    reader = lane_reader(Limits(), FOLD_SPANS, (float(EventType.PAUSE), float(EventType.RESUME)))
    assert reader is not None
    frame = _frames(2, 1)[0]
    frame.sequence, frame.game_time = 1, 0.01
    frame.ClearField("knob_values")
    head = pb.Guidance(model_version="m1")
    head.npc_hints.add(npc_id=4, tactic=pb.NPC_TACTIC_FLANK, aggression=0.25)  # type: ignore[attr-defined]
    tail = pb.Guidance(policy="p")
    tail.director.managing = "boredom"
    values = np.array([0.0, -0.0, 0.5], np.float32)  # a +0.0 is left out on the wire, a -0.0 is not
    limits = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 1.0], [1.0, 0.0, 1.0]])
    eased = np.zeros(3, np.float32)
    rows = np.zeros((1, FOLD_SPANS[1] + FOLD_SPANS[3] + 1))
    got = reader.between(
        _request(frame),
        3,
        0,
        0.0,
        0.2,
        0.2,
        0.0,
        rows,
        None,
        [],
        values,
        values.astype(np.float64),
        limits,
        eased,
        0.0,
        None,
        head.SerializeToString(),
        (b"a", b"b", b"c"),
        tail.SerializeToString(),
        True,
        time.monotonic() - 0.5,
    )
    assert got is not None
    answer, sequence, game_time, ids, us = got
    assert (sequence, game_time, ids) == (1, 0.01, list(frame.player_table.player_ids)) and 500_000 <= us < 600_000
    want = pb.SessionResponse()
    g = want.guidance
    g.CopyFrom(head)
    g.MergeFrom(tail)
    g.sequence, g.processing_us, g.fallback = 1, us, True
    for name, v in zip("abc", values.tolist(), strict=True):
        g.knobs.add(name=name, value=v)
    assert answer == want.SerializeToString()
    assert eased.tobytes() == values.tobytes() and rows[0, -1] == 0.01


def test_damaged_frames_get_the_same_answers_on_both_paths() -> None:
    """Bytes flipped, cut or repeated in frames between steps: whatever the lane does not decline it must
    answer as the Python path does (each case a new stream: a malformed message ends one)."""
    rng = np.random.default_rng(19)
    frames = [_request(f) for f in _frames(9, 40)]
    for case in range(12):
        damaged = bytearray(frames[30])
        how = case % 3
        if how == 0:
            for at in rng.integers(0, len(damaged), 2):
                damaged[int(at)] ^= 1 << int(rng.integers(0, 8))
        elif how == 1:
            damaged = damaged[: int(rng.integers(len(damaged) // 2, len(damaged)))]
        else:
            at = int(rng.integers(20, len(damaged) - 8))
            damaged[at:at] = damaged[at : at + 8]
        _run([*frames[:30], bytes(damaged), *frames[31:]])
