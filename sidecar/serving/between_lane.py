"""Frames between model steps answered in one compiled call: the lane.

At 60 Hz eleven frames in twelve fall between the model's steps, and each needs only to be read,
checked, folded into the next step and answered with the step's guidance, its knobs eased one frame
further. The Python path does that through the protocol core, the engine and the wire builders, some
thirty calls a frame; `Reader.between` (sidecar/wire/_frame_reader.c) does the same work in one call
and returns the answer's bytes, which go to the transport as they are.

The lane only ever takes that common case. It declines, changing nothing, whatever is not: a frame the
compiled reader does not take, one out of order or over the session's rate, one due for a model step,
one that pauses or resumes the game, other players than the ones folded since the step, other NPCs
than the step's hints name, knob values out of range, a step still on its way, answers still queued
before it, a stream whose observers need every message. The Python path then answers the frame, or
refuses it with its named error. The state stays where the Python path keeps it (the session, its
model clock, its director) and the lane changes it as that path would: tests/test_between_lane.py runs
the same frames both ways and compares every answer and the state after each.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sidecar.columns import EventType
from sidecar.engine.clock import FOLD_SPANS
from sidecar.engine.engine import Engine
from sidecar.limits import Limits
from sidecar.session import Session
from sidecar.wire.responses import Response, between_parts
from sidecar.wire.table_reader import lane_reader

__all__ = ["BetweenLane", "LaneObserver"]

_PAUSES = (float(EventType.PAUSE), float(EventType.RESUME))


class LaneObserver:
    """What an observer that does not need every message hears of a frame answered in the lane: the
    session, its transport, the answer's time in the sidecar and the answer's bytes (a SessionResponse;
    `wire.responses.parse_response` reads it, for an observer that samples some)."""

    def on_between(self, session: Session, transport: str, processing_us: int, answer: bytes) -> None: ...


@dataclass(frozen=True)
class _Template:
    """A step's answer as the lane splices it: fields 3-5 (hints, insights, model version) and 8-9
    (policy, director note) serialized, the knob names, and the NPC ids its hints name."""

    source: Response  # the step's answer (Director.template)
    head: bytes
    tail: bytes
    names: tuple[bytes, ...]
    npcs: bytes | None  # little-endian uint32 ids; None: an id that is not one (the lane declines)


def _template(response: Response, npc_ids: list[int]) -> _Template:
    head, tail, names = between_parts(response)
    try:
        npcs: bytes | None = struct.pack(f"<{len(npc_ids)}I", *(int(i) for i in npc_ids))
    except (struct.error, ValueError, OverflowError):
        npcs = None
    return _Template(response, head, tail, names, npcs)


class BetweenLane:
    """One stream's lane for its session (made at the welcome). `answer` takes a message's bytes and
    returns the answer's bytes and its time in the sidecar when it answered the frame (the stream sends
    them and tells its observers), None when the Python path must."""

    def __init__(self, session: Session, engine: Engine, limits: Limits) -> None:
        self.session = session
        self.engine = engine
        self.max_bytes = limits.max_message_bytes
        self.reader = lane_reader(limits, FOLD_SPANS, _PAUSES)
        self.n_knobs = len(session.knobs.names)
        self._template: _Template | None = None
        self.answered = 0  # frames this lane answered

    def answer(self, data: bytes, now: float) -> tuple[bytes, int] | None:
        session, reader = self.session, self.reader
        director, clock = session.director, session.clock
        if (
            reader is None
            or director is None
            or clock is None
            or session.steps
            or session.carried
            or session.paused
            or director.template is None
            or director.last_time is None
            or session.last_game_time is None
            or clock.next_step is None
            or clock.last_frame is None
            or len(data) > self.max_bytes
        ):
            return None
        t = self._template
        if t is None or t.source is not director.template:
            t = self._template = _template(director.template, director.template_npcs)
        npcs = None
        if director.last_hints:  # the step's hints, as long as the frame has the NPCs they name
            if t.npcs is None:
                return None
            npcs = t.npcs
        if not session.frames.take(now):
            return None  # over the session's frame rate: the Python path says so
        got = reader.between(
            data,
            self.n_knobs,
            session.last_sequence,
            session.last_game_time,
            clock.period_s,
            clock.next_step,
            clock.last_frame,
            clock.rows,
            clock.ids if clock.folded else None,
            clock.events,
            director.values,
            director.wanted,
            director._limits,
            director._eased,
            director.last_time,
            npcs,
            t.head,
            t.names,
            t.tail,
            director.fallback,
            now,
        )
        if got is None:
            session.frames.give_back()  # the Python path takes this frame's token
            return None
        answer, sequence, game_time, ids, processing_us = got
        # What the protocol core, the model clock and the director record of a frame they answer.
        session.last_seen = now
        session.last_sequence = sequence
        session.last_game_time = game_time
        session.frames_accepted += 1
        if ids is not None:
            clock.ids = ids
        clock.last_frame = game_time
        clock.folded += 1
        director.elapsed(game_time)
        director.values = director._eased
        engine = self.engine
        engine.submitted += 1
        engine.between_frames += 1
        self.answered += 1
        return answer, processing_us
