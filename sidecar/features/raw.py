"""A frame's numbers as arrays (RawFrame), whichever form it came in: what validation checks and the
featurizer reads. sidecar/wire/frames.py makes them from the wire's messages; the simulator makes
them directly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RawFrame"]


@dataclass
class RawFrame:
    """The numbers of one frame as arrays, before validation and featurization."""

    players: np.ndarray  # [P, len(RAW_PLAYER_FIELDS)] float64
    npcs: np.ndarray  # [N, len(RAW_NPC_FIELDS)] float64
    events: np.ndarray  # [E, 4] float64: type, player index (-1 unknown), amount, game_time
    knob_values: np.ndarray  # [K] float32, in the session's knob order (NaN where not reported)
    player_ids: list[str]
    tables: bool = False  # the frame came in the table form (errors name frame.player_table[...])
