"""The common frame read in one compiled call, when the extension is built (sidecar/wire/_frame_reader.c).

A table-form frame (what both engine plugins send) is counted, shape-checked, string-checked, range-
checked and read into arrays by one C function; any frame it does not accept -- an invalid one, the
row form, knobs by name, anything unusual on the wire -- goes through the Python path
(checks.validate_frame_counts, frames.extract, validation.validate_raw), which names what is wrong.
For the frames it accepts, the arrays are the ones the Python path makes (tests/test_frame_reader.py).

Without a C compiler the package installs without the extension and every frame takes the Python
path; `compiled_reader_available()` says which (the CI fails when it is missing).
"""

from __future__ import annotations

import functools
import logging
from typing import cast

import numpy as np

from sidecar.columns import MAX_GAME_TIME_S, NPC_TABLE, PLAYER_TABLE
from sidecar.features.layout import RAW_NPC_FIELDS, RP
from sidecar.features.raw import RawFrame
from sidecar.limits import Limits
from sidecar.validation import HEALTH_SLACK, column_bounds

__all__ = ["compiled_reader_available", "lane_reader", "read_compiled"]

log = logging.getLogger("metabrain.wire")

try:
    from sidecar.wire import _frame_reader
except ImportError:  # built without a compiler: the Python path reads every frame
    _frame_reader = None  # type: ignore[assignment]

_P_WIDTH, _N_WIDTH = len(PLAYER_TABLE), len(NPC_TABLE) + 1


def compiled_reader_available() -> bool:
    """Whether the compiled frame reader was built (`pip install -e .` builds it where gcc is)."""
    return _frame_reader is not None


_last: tuple[object, object] = (None, None)  # the latest Limits and its reader, replaced as one


@functools.lru_cache(maxsize=8)
def _reader(limits: Limits) -> _frame_reader.Reader | None:
    """The compiled reader for these limits and the ranges validation.py checks (one per Limits)."""
    return _make_reader(limits)


@functools.lru_cache(maxsize=8)
def lane_reader(
    limits: Limits, fold_spans: tuple[int, int, int, int], pause_types: tuple[float, float]
) -> _frame_reader.Reader | None:
    """A reader that also answers frames between model steps in one call (`Reader.between`, for
    sidecar/serving/between_lane.py): the fold's column spans (clock.py) and the event types that pause
    and resume a session given. None without the extension."""
    return _make_reader(limits, fold_spans=fold_spans, pause_types=pause_types)


def _make_reader(limits: Limits, **lane: tuple[float, ...]) -> _frame_reader.Reader | None:
    if _frame_reader is None:
        return None
    big = limits.max_abs_coordinate
    (p_lo, p_hi), (n_lo, n_hi), (e_lo, e_hi) = (column_bounds(k, big) for k in ("player", "npc", "event"))
    return _frame_reader.Reader(
        limits=(
            limits.max_players_per_frame,
            limits.max_npcs_per_frame,
            limits.max_events_per_frame,
            limits.max_knobs,
            limits.max_string_bytes,
            MAX_GAME_TIME_S,
        ),
        player_lo=p_lo.tolist(),
        player_hi=p_hi.tolist(),
        player_whole=[float(c.kind.whole) for c in PLAYER_TABLE],
        npc_lo=n_lo.tolist(),
        npc_hi=n_hi.tolist(),  # the target's is the frame's last player row: the reader sets it per frame
        npc_whole=[float(c.kind.whole) for c in NPC_TABLE],  # the id is uint32 bytes: whole by construction
        event_lo=e_lo.tolist(),
        event_hi=e_hi.tolist(),
        columns=(RP["health"], RP["max_health"], RAW_NPC_FIELDS.index("target")),
        health_slack=HEALTH_SLACK,
        **lane,
    )


def read_compiled(data: bytes, limits: Limits, n_knobs: int) -> RawFrame | None:
    """A SessionRequest's bytes (already accepted by the protobuf parser) holding a table-form frame
    -> its checked numbers, or None: not read here (no extension, or a frame for the Python path)."""
    global _last
    last = _last
    if last[0] is limits:  # the same Limits object frame after frame: no hashing its ~20 fields
        reader = cast("_frame_reader.Reader | None", last[1])
    else:
        reader = _reader(limits)
        _last = (limits, reader)
    if reader is None:
        return None
    got = reader.read(data, n_knobs)
    if got is None:
        return None
    ids, numbers, p, n, e, knobs = got
    x = np.frombuffer(numbers, np.float64)
    at_npcs, at_events = p * _P_WIDTH, p * _P_WIDTH + n * _N_WIDTH
    return RawFrame(
        x[:at_npcs].reshape(p, _P_WIDTH),
        x[at_npcs:at_events].reshape(n, _N_WIDTH),
        x[at_events:].reshape(e, 4),
        np.frombuffer(knobs, np.float32),
        ids,
        True,
    )
