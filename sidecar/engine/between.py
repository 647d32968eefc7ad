"""The arithmetic of a frame between model steps, compiled when the extension is built (_between.c).

At 60 Hz eleven frames in twelve only need their player table folded into the next step (clock.py, which
merges the fold into the step's frame the same way) and the knobs eased toward the latest step's target
(policies/director.py). Each has a Python version, which runs where the extension is missing, where
`metabrain serve --pure-python` asks for it, or where the compiled one declines (arrays of another type
or shape); for the rest the two give the same bits (tests/test_between_kernels.py).
"""

from __future__ import annotations

from typing import Any

__all__ = ["compiled_between_available", "ease_compiled", "fold_compiled", "merge_compiled"]

try:
    from sidecar.engine import _between
except ImportError:  # built without a compiler: the Python versions run
    _between = None  # type: ignore[assignment]


def compiled_between_available() -> bool:
    """Whether the compiled kernels were built (`pip install -e .` builds them where gcc is)."""
    return _between is not None


def fold_compiled(
    rows: Any, players: Any, n: int, width: int, interval: float, first: bool, spans: tuple[int, ...]
) -> bool:
    """The fold of n players' rows into `rows` (see _between.c); False: not done, run the Python fold.
    spans: (sum_start, n_sum, rate_start, n_rate)."""
    if _between is None:
        return False
    return _between.fold(rows, players, n, width, interval, first, *spans)


def merge_compiled(players: Any, rows: Any, n: int, width: int, interval: float, spans: tuple[int, ...]) -> bool:
    """The fold's rows merged into a step frame's player table `players` (a copy, written in place; see
    _between.c); False: not done, run the Python merge."""
    if _between is None:
        return False
    return _between.merge(players, rows, n, width, interval, *spans)


def ease_compiled(out: Any, values: Any, wanted: Any, limits: Any, dt: float) -> tuple[list[float], bool] | None:
    """Knob values eased toward `wanted` into `out` (see _between.c): (values as floats, all in range),
    or None: not done, run the Python easing."""
    if _between is None:
        return None
    return _between.ease(out, values, wanted, limits, dt)
