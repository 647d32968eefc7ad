# The arithmetic of a frame between model steps (sidecar/engine/_between.c); sidecar/engine/between.py wraps it.
from typing import Any

def fold(
    rows: Any,
    players: Any,
    n: int,
    width: int,
    interval: float,
    first: bool,
    sum_start: int,
    n_sum: int,
    rate_start: int,
    n_rate: int,
    /,
) -> bool: ...
def merge(
    players: Any,
    rows: Any,
    n: int,
    width: int,
    interval: float,
    sum_start: int,
    n_sum: int,
    rate_start: int,
    n_rate: int,
    /,
) -> bool: ...
def ease(out: Any, values: Any, wanted: Any, limits: Any, dt: float, /) -> tuple[list[float], bool] | None: ...
