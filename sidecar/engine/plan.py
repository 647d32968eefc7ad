"""Plain-data contracts between the scheduler, the runner and the director. No torch here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sidecar.features import FrameFeatures


@dataclass
class PlanEntry:
    """One session's newest frame in this step; its players occupy rows [row, row + n) of the batch."""

    session_id: str
    features: FrameFeatures
    row: int
    ticket: object  # opaque to the scheduler: whatever the engine resolves when the step is done
    received_at: float
    superseded: list[tuple[int, object]] = field(default_factory=list)  # (sequence, ticket) overtaken

    @property
    def rows(self) -> slice:
        """This entry's rows of the batch."""
        return slice(self.row, self.row + len(self.features.player_ids))


@dataclass
class StepPlan:
    tick: int
    entries: list[PlanEntry]
    slots: np.ndarray  # [B] int64 state slot of each batch row
    reset_slots: np.ndarray  # [R] int64 slots to zero before the step (newly assigned)
    players: np.ndarray  # [B, PLAYER_DIM] float32
    npcs: np.ndarray  # [B, N, NPC_DIM] float32
    npc_mask: np.ndarray  # [B, N] bool
    levels: np.ndarray  # [B, K] float32 difficulty levels to score; the last column is the current level
    explain_rows: np.ndarray  # [X] int64 rows whose sessions asked for explanations
    rejected: list[tuple[PlanEntry, str]] = field(default_factory=list)  # frames that got no slot, and why

    @property
    def batch(self) -> int:
        return int(self.slots.shape[0])


@dataclass
class StepResult:
    p_fail: np.ndarray  # [B, K]
    p_quit: np.ndarray  # [B, K]
    frustration: np.ndarray  # [B]
    engagement: np.ndarray  # [B]
    skill: np.ndarray  # [B]
    npc_tactic_p: np.ndarray  # [B, N, A] chance each nearby NPC lands damage under each tactic
    explanations: dict[int, list[tuple[str, float]]]  # row -> [(feature, signed weight)]
    model_seconds: float
