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
    hinted: slice = field(default_factory=lambda: slice(0, 0))  # this entry's NPCs in the plan's hint_* arrays

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
    # The NPCs the director may hint, one per NPC per session: its first player's row (player-major,
    # nearest first), its slot in that row and its id. The model scores tactics for these alone.
    hint_rows: np.ndarray  # [P] int64
    hint_slots: np.ndarray  # [P] int64
    hint_ids: np.ndarray  # [P] int64
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
    npc_tactic_p: np.ndarray  # [P, A] chance each hinted NPC (plan.hint_*) lands damage under each tactic
    explanations: dict[int, list[tuple[str, float]]]  # row -> [(feature, signed weight)]
    model_seconds: float
    # [B, K, M] share of the value horizon each row's player goes on playing at each level, per value
    # head (M = 0: the model has none)
    value: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    horizons: tuple[float, float] = (10.0, 300.0)  # the model's fail and value horizons, seconds


def hint_pairs(
    npc_mask: np.ndarray, npc_ids: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, slots, ids) of the NPCs to hint: each NPC id once per group (session), at the first row
    that sees it, in row-major order. npc_mask, npc_ids: [R, N]; group: [R] int, non-decreasing."""
    rows, slots = np.nonzero(npc_mask & (npc_ids >= 0))
    ids = npc_ids[rows, slots].astype(np.int64)
    key = (group[rows].astype(np.int64) << 32) | ids  # NPC ids are uint32 on the wire
    if len(key) <= 64:  # a set is cheaper than np.unique for a few NPCs (a tick of a frame or two)
        where: dict[int, int] = {}
        for i, k in enumerate(key.tolist()):
            where.setdefault(k, i)
        first = np.fromiter(where.values(), np.int64, len(where))  # insertion order: first sightings
    else:
        first = np.sort(np.unique(key, return_index=True)[1])
    if len(first) < len(key):  # an NPC near several players (or sent twice): keep its first sighting
        rows, slots, ids = rows[first], slots[first], ids[first]
    return rows.astype(np.int64), slots.astype(np.int64), ids


def hint_entries(entries: list[PlanEntry], npc_mask: np.ndarray, npc_ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """hint_pairs over a plan's rows, each entry one group; sets every entry's `hinted` range."""
    group = np.repeat(np.arange(len(entries)), [len(e.features.player_ids) for e in entries])
    rows, slots, ids = hint_pairs(npc_mask, npc_ids, group)
    cuts = np.searchsorted(rows, [e.row for e in entries] + [len(group)]).tolist()
    for e, a, b in zip(entries, cuts, cuts[1:], strict=False):
        e.hinted = slice(a, b)
    return rows, slots, ids


def npc_width(npc_mask: np.ndarray) -> int:
    """NPC slots up to the widest row in use, at least one: the featurizer puts present NPCs first,
    so the slots past it are padding in every row. npc_mask: [B, N]."""
    used = npc_mask.any(axis=0)
    return int(np.flatnonzero(used)[-1]) + 1 if used.any() else 1
