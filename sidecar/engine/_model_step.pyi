# A model step of a few rows (sidecar/engine/_model_step.c); sidecar/engine/model_step.py wraps it.
from typing import Any

def step(
    weights: Any,
    dims: tuple[int, ...],
    pool: Any,
    slots: Any,
    players: Any,
    npcs: Any,
    mask: Any,
    levels: Any,
    pair_rows: Any,
    pair_slots: Any,
    fail: Any,
    quit: Any,
    states: Any,
    npc: Any,
    /,
) -> bool | None: ...
def kernels() -> tuple[str, ...]: ...
def use_kernel(name: str, /) -> str: ...
