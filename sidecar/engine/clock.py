"""The model clock: a session's model steps at the rate its checkpoint learned, whatever rate the game sends.

A game may send 60 frames a second; the model was trained on telemetry at 5 Hz. Each session keeps a
clock in game time: a frame that reaches the next step time goes to the model, the frames in between
are folded into it, column by column as sidecar/columns.py says (counts summed, per-minute rates
averaged over the time they cover, states taken from the newest frame, events collected), so the
model sees exactly what a 5 Hz stream would have sent. Frames in between are answered at once from
the session's latest prediction (engine.py). Step times follow a grid of one model period from the
session's start, and a frame within half its own interval of the next grid point takes it, so the model
steps at the learned rate on average for any frame rate; a game that sends at the learned rate or slower
(a frame at least 0.9 of a period after the one before) steps every frame.
Each session's grid is shifted by a phase, a share of a period (the engine spreads them over the whole
period): sessions that start together, as a match's do, would otherwise all step in the same tick every
period, and their frames would wait behind it. The shift changes nothing at the learned rate or slower.
Frames before a session's first step (its first period) are answered with the knob values the game
reports, eased toward the defaults: there is no prediction yet.

Plain data and numpy; no torch, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from sidecar.columns import PLAYER_TABLE, Fold
from sidecar.engine.between import fold_compiled, merge_compiled
from sidecar.features import FrameInput, RawFrame

__all__ = ["DEFAULT_MODEL_RATE_HZ", "FOLD_SPANS", "ModelClock", "StepInFlight"]

# The simulator's telemetry rate, which every checkpoint before the rate was recorded was trained at.
DEFAULT_MODEL_RATE_HZ = 5.0


def _span(fold: Fold) -> slice:
    """The player table's columns that fold this way, as a slice (they sit together: views, not copies)."""
    at = [i for i, c in enumerate(PLAYER_TABLE) if c.fold is fold]
    assert at == list(range(at[0], at[-1] + 1)), f"{fold} columns must be adjacent in the player table"
    return slice(at[0], at[-1] + 1)


_SUM = _span(Fold.SUM)
_RATE = _span(Fold.RATE)
_N_SUM, _N_RATE = _SUM.stop - _SUM.start, _RATE.stop - _RATE.start
# A folded player's row: its SUM columns added up, its RATE columns times each frame's interval added up,
# and the intervals added up.
_ROW = _N_SUM + _N_RATE + 1
_SUMS, _RATE_TIMES, _SECONDS = slice(0, _N_SUM), slice(_N_SUM, _N_SUM + _N_RATE), _ROW - 1
# (sum_start, n_sum, rate_start, n_rate): what the compiled fold needs of the layout (between.py, the lane).
FOLD_SPANS = (_SUM.start, _N_SUM, _RATE.start, _N_RATE)
_WIDTH = len(PLAYER_TABLE)
# A frame this share of a period or more after the one before steps (a stream at the learned rate, with a
# tenth of a period of jitter, or slower).
_EVERY_FRAME = 0.9


@dataclass
class StepInFlight:
    """A session's model step on its way through the engine, and the frames after it that wait for its
    prediction (frame, ticket, received at): answered from it once it exists, so a session's answers
    go out in the order of its frames."""

    sequence: int
    after: list[tuple[FrameInput, object, float]] = field(default_factory=list)


@dataclass
class ModelClock:
    """One session's model clock. period_s: game seconds between model steps (0: every frame steps)."""

    period_s: float
    # The grid's shift, as a share of a period in [0, 1): see the module's comment.
    phase: float = 0.0
    # Game time of the next grid point. The grid starts at game time 0 (the session's start), shifted by
    # the phase: a stream at any rate steps at the same game times, the first step one period in.
    next_step: float | None = None
    last_step: float | None = None  # game time of the last frame that went to the model
    last_frame: float | None = None  # game time of the last frame, stepped or folded (0: none yet)
    # The folded frames' players, in the order of the first of them: a row each (_ROW: sums, rate
    # times, seconds), the first len(ids) rows of `rows` (kept between steps: no allocation per frame).
    ids: list[str] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros((1, _ROW)))
    events: list[tuple[float, str | None, float, float]] = field(default_factory=list)  # type, player, amount, t
    folded: int = 0  # frames folded since the last step
    start: float | None = None  # game time of the first step: the session's time origin for the model

    def __post_init__(self) -> None:
        if not 0.0 <= self.phase < 1.0:
            raise ValueError(f"phase={self.phase}: a share of a period in [0, 1)")
        if self.next_step is None and self.period_s > 0:
            self.next_step = self.period_s * (1.0 + self.phase)
        if self.last_frame is None:
            self.last_frame = 0.0  # the session's first frame covers the time since its start

    def due(self, game_time: float) -> bool:
        """Does this frame go to the model? (Its interval is since the previous frame.)"""
        if self.period_s <= 0 or self.next_step is None:
            return True
        interval = game_time - self.last_frame if self.last_frame is not None else 0.0
        if interval >= _EVERY_FRAME * self.period_s:  # at the learned rate or slower, whatever the phase
            return True
        return game_time >= self.next_step - 0.5 * interval - 1e-9

    def route(self, frame: FrameInput, compiled: bool = True) -> FrameInput | None:
        """The frame to step now (this one, with everything folded since the last step merged in), or
        None when it was folded into the next step (by the compiled kernel where it is built and
        `compiled`, between.py)."""
        t = frame.game_time
        if not self.due(t):
            self._fold(frame.raw, t, compiled)
            self.last_frame = t
            return None
        if self.start is None:
            self.start = t
        merged = self._merge(frame, compiled) if self.folded else replace(frame, prev_game_time=self.last_step)
        merged.session_start = self.start  # the same origin at any frame rate
        if self.period_s > 0:
            # Keep to the grid (the average rate is the learned one), unless the game paused or sends
            # slower than the model rate: then the grid restarts from this frame.
            behind = self.next_step is None or t >= self.next_step + self.period_s
            self.next_step = t + self.period_s if behind else self.next_step + self.period_s  # type: ignore[operator]
        self.last_step = t
        self.last_frame = t
        return merged

    def _fold(self, raw: RawFrame, t: float, compiled: bool) -> None:
        interval = max(t - self.last_frame, 0.0) if self.last_frame is not None else 0.0
        n = len(raw.player_ids)
        first = not self.folded
        if first:
            self.ids = raw.player_ids
            if len(self.rows) < n:
                self.rows = np.zeros((n, _ROW))
        elif raw.player_ids != self.ids[:n]:
            self._realign(raw.player_ids)
        if not (compiled and fold_compiled(self.rows, raw.players, n, _WIDTH, interval, first, FOLD_SPANS)):
            p, rows = raw.players, self.rows[:n]
            if first:
                rows[:, _SUMS] = p[:, _SUM]
                rows[:, _RATE_TIMES] = p[:, _RATE] * interval
                rows[:, _SECONDS] = interval
            else:
                rows[:, _SUMS] += p[:, _SUM]
                rows[:, _RATE_TIMES] += p[:, _RATE] * interval
                rows[:, _SECONDS] += interval
        if len(raw.events):
            ids = raw.player_ids
            for etype, idx, amount, et in raw.events.tolist():
                self.events.append((etype, ids[int(idx)] if idx >= 0 else None, amount, et))
        self.folded += 1

    def _realign(self, ids: list[str]) -> None:
        """Players joined or left between frames (rare): rows for `ids` first, in their order, those seen
        before but not now after them; a player new to the fold starts at zero."""
        row = {pid: i for i, pid in enumerate(self.ids)}
        now = set(ids)
        order = [*ids, *(pid for pid in self.ids if pid not in now)]
        rows = np.zeros((len(order), _ROW))
        for j, pid in enumerate(order):
            i = row.get(pid)
            if i is not None:
                rows[j] = self.rows[i]
        self.rows, self.ids = rows, order

    def _merge(self, frame: FrameInput, compiled: bool = True) -> FrameInput:
        """This frame with the folded ones merged in; resets the fold."""
        raw = frame.raw
        t = frame.game_time
        interval = max(t - self.last_frame, 0.0) if self.last_frame is not None else 0.0
        players = raw.players.copy()
        n = len(raw.player_ids)
        if raw.player_ids != self.ids[:n]:
            self._realign(raw.player_ids)
        if not (compiled and merge_compiled(players, self.rows, n, _WIDTH, interval, FOLD_SPANS)):
            rows = self.rows[:n]
            players[:, _SUM] += rows[:, _SUMS]
            total = (rows[:, _SECONDS] + interval)[:, None]
            rates = players[:, _RATE]
            averaged = (rows[:, _RATE_TIMES] + rates * interval) / np.maximum(total, 1e-12)
            players[:, _RATE] = np.where(total > 0, averaged, rates)
        events = raw.events
        if self.events:  # most folds carry none: the frame's own events stand as they are
            index = {pid: i for i, pid in enumerate(raw.player_ids)}
            folded = np.array(
                [(e, index.get(pid, -1) if pid is not None else -1, a, et) for e, pid, a, et in self.events],
                np.float64,
            ).reshape(len(self.events), 4)
            events = np.concatenate([folded, raw.events]) if len(raw.events) else folded
        self.ids = []
        self.events = []
        self.folded = 0
        merged = replace(raw, players=players, events=events)
        return replace(frame, raw=merged, prev_game_time=self.last_step)
