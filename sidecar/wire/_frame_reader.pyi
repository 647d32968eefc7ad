# The compiled frame reader (sidecar/wire/_frame_reader.c); sidecar/wire/table_reader.py wraps it.
from collections.abc import Sequence

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
    ) -> None: ...
    def read(self, data: bytes, n_knobs: int, /) -> tuple[list[str], bytearray, int, int, int, bytearray] | None: ...
