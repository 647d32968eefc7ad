# The compiled frame reader (sidecar/wire/_frame_reader.c); sidecar/wire/table_reader.py wraps it.
from collections.abc import Sequence
from typing import Any

class Reader:
    def __init__(
        self,
        limits: tuple[int, int, int, int, int, float],
        player_lo: Sequence[float],
        player_hi: Sequence[float],
        player_whole: Sequence[float],
        npc_lo: Sequence[float],
        npc_hi: Sequence[float],
        npc_whole: Sequence[float],
        event_lo: Sequence[float],
        event_hi: Sequence[float],
        columns: tuple[int, int, int],
        health_slack: tuple[float, float],
        fold_spans: tuple[float, ...] = ...,
        pause_types: tuple[float, ...] = ...,
    ) -> None: ...
    def read(self, data: bytes, n_knobs: int, /) -> tuple[list[str], bytearray, int, int, int, bytearray] | None: ...
    def between(
        self,
        data: bytes,
        n_knobs: int,
        last_sequence: int,
        last_game_time: float,
        period: float,
        next_step: float,
        last_frame: float,
        rows: Any,
        fold_ids: list[str] | None,
        events: list[Any],
        values: Any,
        wanted: Any,
        limits: Any,
        eased: Any,
        last_time: float,
        npcs: bytes | None,
        head: bytes,
        names: tuple[bytes, ...],
        tail: bytes,
        fallback: bool,
        received_at: float,
        /,
    ) -> tuple[bytes, int, float, list[str] | None, int] | None: ...
