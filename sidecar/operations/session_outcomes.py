"""How a recorded session went, read one way for every report that learns from recordings (the
experiment report, off-policy evaluation, the portfolio's import), so that they agree on what a
session's length, its player and a quit are.

- Length: the game time of its last frame (Frame.game_time counts from the session's start); the
  seconds it was watched, from its first frame to its last (what the live portfolio adds up as it plays,
  a gap between two frames counting at most MAX_PLAY_GAP_S).
- Quit: the game said goodbye without `cut_short` (the player chose to stop), or the sidecar ended
  the session because its player went away (the stream lost until the resume window closed, or idle):
  as the live portfolio counts them. A goodbye with `cut_short` (a time limit, the match over) is
  censored, and so is a recording that does not say how it ended (still running when read, the
  sidecar stopped or killed).
- Player, whose sessions belong together: the header's pseudonymised player, else the hello's player
  id (simulated recordings), else the session.
- The designer's level: the difficulty of the hello's knob defaults (where a director's offsets start).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.columns import MAX_PLAY_GAP_S, EventType
from sidecar.features.knobs import KnobSet, values_in_order
from sidecar.operations.recording import Recording, read_recording
from sidecar.session import IDLE_TIMEOUT, RESUME_WINDOW_CLOSED

__all__ = ["RecordedSession", "read_session", "read_sessions"]


@dataclass(frozen=True)
class RecordedSession:
    name: str  # the recording's file name
    header: dict[str, Any]
    player: str
    start: float | None  # game time of its first frame (None: no frame was recorded)
    end: float  # game time of its last frame: the session's length
    quit: bool  # the player ended it (the module's docstring says when)
    deaths: int
    band: tuple[float, float] | None  # the hello's p_fail target band, when it set one
    frame_times: dict[int, float]  # frame sequence -> game time
    recording: Recording  # for readers of the answers (insights)
    designer_level: float = 0.5  # the difficulty of the hello's knob defaults (0.5 without a hello)
    knobs: KnobSet | None = None  # the hello's knobs (None without a hello that declared some)

    @property
    def arm(self) -> str:
        """The director the session had: its experiment arm (or portfolio candidate), else its policy."""
        return str(self.header.get("arm") or self.header.get("policy") or "")

    def end_level(self) -> float | None:
        """Where the director had taken the player at the end: the difficulty of the knob values the sidecar
        sent last, plus what a retreat held back of its candidate's move (None: no guidance, or no knobs);
        a knob the guidance did not name counts at its default."""
        if self.knobs is None:
            return None
        last = None
        for _, resp in self.recording.responses():
            if resp.WhichOneof("kind") == "guidance" and resp.guidance.knobs:
                last = resp.guidance
        if last is None:
            return None
        values = values_in_order(last.knobs, self.knobs.names, self.knobs.defaults.tolist())
        if not np.isfinite(values).all():
            return None
        # And what a retreat held back of its candidate's move (0 in recordings made before it existed).
        back = float(last.director.level_taken_back) if last.HasField("director") else 0.0
        level = self.knobs.to_difficulty(values) + (back if math.isfinite(back) else 0.0)
        return min(max(level, 0.0), 1.0)

    def start_level(self) -> float | None:
        """The level its director said it set out for (the first guidance's director note: a portfolio
        candidate's start); None when no guidance carried a note (a game without CAPABILITY_INSIGHT)."""
        for _, resp in self.recording.responses():
            if resp.WhichOneof("kind") == "guidance" and resp.guidance.HasField("director"):
                return float(resp.guidance.director.target_level)
        return None

    @property
    def played_s(self) -> float:
        """Seconds of play the recording covers, from its first frame to its last."""
        return self.played_since(None)

    def played_since(self, game_time: float | None) -> float:
        """Seconds of play from the frame at `game_time` (None: the first) to the last, each gap between
        two frames counted up to MAX_PLAY_GAP_S, as the live director counts them."""
        times = [t for _, t in sorted(self.frame_times.items()) if game_time is None or t >= game_time]
        return float(np.minimum(np.diff(times), MAX_PLAY_GAP_S).clip(0.0).sum()) if len(times) > 1 else 0.0


def read_session(path: str | Path) -> RecordedSession:
    rec = read_recording(path)
    start: float | None = None
    end, deaths = 0.0, 0
    quit_ = rec.close_reason in (RESUME_WINDOW_CLOSED, IDLE_TIMEOUT)  # unless a goodbye says otherwise
    band: tuple[float, float] | None = None
    hello_player = ""
    designer = 0.5
    knobs: KnobSet | None = None
    times: dict[int, float] = {}
    for _, req in rec.requests():
        kind = req.WhichOneof("kind")
        if kind == "frame":
            f = req.frame
            times[f.sequence] = f.game_time
            start = f.game_time if start is None else start
            end = max(end, f.game_time)
            deaths += sum(e.type == EventType.DEATH for e in f.events)
        elif kind == "hello":
            hello_player = req.hello.player_id  # pseudonymised already in a served recording
            if req.hello.knobs:
                knobs = KnobSet.from_specs(req.hello.knobs)
                designer = knobs.to_difficulty(knobs.defaults)
            if req.hello.HasField("target"):
                band = (req.hello.target.p_fail_low, req.hello.target.p_fail_high)
        elif kind == "goodbye":
            quit_ = not req.goodbye.cut_short
    h = rec.header
    player = str(h.get("player") or hello_player or h.get("session_id") or Path(path).name)
    return RecordedSession(Path(path).name, h, player, start, end, quit_, deaths, band, times, rec, designer, knobs)


def read_sessions(paths: Iterable[str | Path]) -> Iterator[RecordedSession]:
    for path in paths:
        yield read_session(path)
