"""A population from a file, as `--population path/to/custom.py:Factory` loads it (tests/test_cli.py)."""

from __future__ import annotations

from sim.players import PlayerTraits, SimPlayer


def Factory(index: int, seed: int) -> SimPlayer:
    return SimPlayer(PlayerTraits(0.3 + 0.05 * (index % 8), 0.3, 0.1, 0.02, 3.0, 2.0, "custom"), seed)
