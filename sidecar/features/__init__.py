"""The model's inputs: the layout (layout.py), a session's knobs (knobs.py), the players' running
aggregates (tracks.py), a frame's numbers as arrays (raw.py) and the featurizer (featurizer.py).
Plain numpy throughout: frames arrive here as RawFrame, made by sidecar/wire/frames.py."""

from sidecar.features.featurizer import FrameFeatures, FrameInput, featurize, featurize_many
from sidecar.features.knobs import KnobSet, knob_values_at
from sidecar.features.layout import (
    ARENA_SCALE,
    EVENT_COLUMNS,
    FEATURE_LAYOUT_VERSION,
    MAX_MODEL_NPCS,
    NPC_COLUMNS,
    NPC_DIM,
    PLAYER_COLUMNS,
    PLAYER_DIM,
    RAW_NPC_FIELDS,
    RAW_PLAYER_FIELDS,
    RP,
    P,
    layout_hash,
)
from sidecar.features.raw import RawFrame
from sidecar.features.tracks import TRACK_FIELDS, PlayerTrack

__all__ = [
    "ARENA_SCALE",
    "EVENT_COLUMNS",
    "FEATURE_LAYOUT_VERSION",
    "MAX_MODEL_NPCS",
    "NPC_COLUMNS",
    "NPC_DIM",
    "PLAYER_COLUMNS",
    "PLAYER_DIM",
    "RAW_NPC_FIELDS",
    "RAW_PLAYER_FIELDS",
    "RP",
    "TRACK_FIELDS",
    "FrameFeatures",
    "FrameInput",
    "KnobSet",
    "P",
    "PlayerTrack",
    "RawFrame",
    "featurize",
    "featurize_many",
    "knob_values_at",
    "layout_hash",
]
