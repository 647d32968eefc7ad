# One frame featurized in C (sidecar/features/_frame_kernel.c); sidecar/features/featurizer.py calls it.
from typing import Any

PLAYER_COLUMNS: tuple[str, ...]
NPC_COLUMNS: tuple[str, ...]
RAW_PLAYER_FIELDS: tuple[str, ...]
RAW_NPC_FIELDS: tuple[str, ...]
TRACK_FIELDS: tuple[str, ...]
MAX_MODEL_NPCS: int
ARENA_SCALE: float
MAX_PLAYERS: int
CODES: dict[str, int]

def featurize_frame(
    players: Any,
    npcs: Any,
    events: Any,
    tracks: list[list[float]],
    out_players: Any,
    out_npcs: Any,
    out_mask: Any,
    out_ids: Any,
    row: int,
    dt: float,
    difficulty: float,
    minutes: float,
    game_time: float,
    a_recent: float,
    a_damage: float,
    a_act: float,
    /,
) -> tuple[list[int], list[list[float]]] | None: ...
