"""The tick scheduler: which frames go into the next model step. Plain data only, no torch, no I/O.

Latest wins: a session has at most one frame waiting. A newer frame supersedes the waiting one
(which is answered as superseded) and inherits its event counts, so kills and deaths in frames the
model never saw still reach it. State slots are assigned per (session, player) on first sight and
returned to a free list when the session leaves; a reused slot is zeroed before its first step.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from sidecar.engine.plan import PlanEntry, StepPlan, hint_entries
from sidecar.features import EVENT_COLUMNS, MAX_MODEL_NPCS, NPC_DIM, PLAYER_DIM, FrameFeatures, P

_DIFF_COL = P["difficulty"]
_DT_COL = P["dt"]


@dataclass
class _Waiting:
    features: FrameFeatures
    ticket: object
    received_at: float
    superseded: list[tuple[int, object]] = field(default_factory=list)


class Scheduler:
    def __init__(self, max_slots: int, levels: np.ndarray) -> None:
        self.max_slots = max_slots
        self.levels = np.asarray(levels, np.float32)  # [K-1] candidate levels; the current level is appended
        self._free = list(range(max_slots - 1, -1, -1))  # pop() gives the lowest slot first
        self._slots: dict[str, dict[str, int]] = {}  # session -> player -> slot
        self._explain: set[str] = set()
        self._waiting: OrderedDict[str, _Waiting] = OrderedDict()
        self._to_reset: list[int] = []
        self.tick = 0

    # -- sessions ---------------------------------------------------------------------------
    def join(self, session_id: str, explain: bool = False) -> None:
        self._slots.setdefault(session_id, {})
        if explain:
            self._explain.add(session_id)

    def reset_state(self, session_id: str) -> None:
        """Forget a session's recurrent state (its slots are zeroed before their next step)."""
        for slot in self._slots.get(session_id, {}).values():
            self._to_reset.append(slot)

    def leave(self, session_id: str) -> list[tuple[int, object]]:
        """Free the session's slots; returns the tickets of any frame still waiting (to be cancelled)."""
        for slot in self._slots.pop(session_id, {}).values():
            self._free.append(slot)
        self._explain.discard(session_id)
        w = self._waiting.pop(session_id, None)
        if w is None:
            return []
        return [*w.superseded, (w.features.sequence, w.ticket)]

    @property
    def sessions(self) -> int:
        return len(self._slots)

    @property
    def slots_in_use(self) -> int:
        return self.max_slots - len(self._free)

    def slot_of(self, session_id: str, player_id: str) -> int | None:
        return self._slots.get(session_id, {}).get(player_id)

    # -- frames -----------------------------------------------------------------------------
    def submit(
        self, session_id: str, features: FrameFeatures, ticket: object, received_at: float
    ) -> list[tuple[int, object]]:
        """Queue a frame; returns [(sequence, ticket)] of frames it superseded (answer them now)."""
        if session_id not in self._slots:
            raise KeyError(f"session {session_id} has not joined the scheduler")
        old = self._waiting.pop(session_id, None)
        w = _Waiting(features, ticket, received_at)
        overtaken: list[tuple[int, object]] = []
        if old is not None:
            prev = old.features
            # Events of the overtaken frame still count: add them into the newest frame.
            ids_new = {pid: i for i, pid in enumerate(features.player_ids)}
            for j, pid in enumerate(prev.player_ids):
                i = ids_new.get(pid)
                if i is not None:
                    features.players[i, EVENT_COLUMNS] += prev.players[j, EVENT_COLUMNS]
            features.players[:, _DT_COL] += prev.players[0, _DT_COL]  # dt covers both frames
            overtaken = [*old.superseded, (prev.sequence, old.ticket)]
            w.received_at = old.received_at  # latency is measured from the oldest frame folded in
        self._waiting[session_id] = w
        return overtaken

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def plan(self, max_batch: int) -> StepPlan | None:
        """Take up to max_batch players' newest frames (oldest sessions first) into one step."""
        if not self._waiting:
            return None
        entries: list[PlanEntry] = []
        rows = 0
        slot_list: list[int] = []
        explain_rows: list[int] = []
        rejected: list[tuple[PlanEntry, str]] = []
        while self._waiting:
            session_id, w = next(iter(self._waiting.items()))
            n = len(w.features.player_ids)
            if entries and rows + n > max_batch:
                break
            self._waiting.popitem(last=False)
            slots = self._slots[session_id]
            missing = [pid for pid in w.features.player_ids if pid not in slots]
            if len(missing) > len(self._free):
                entry = PlanEntry(session_id, w.features, -1, w.ticket, w.received_at, w.superseded)
                rejected.append((entry, f"all {self.max_slots} model state slots are in use; the limit is max_slots"))
                continue
            for pid in missing:
                slots[pid] = self._free.pop()
                self._to_reset.append(slots[pid])
            slot_list.extend(slots[pid] for pid in w.features.player_ids)
            if session_id in self._explain:
                explain_rows.extend(range(rows, rows + n))
            entries.append(PlanEntry(session_id, w.features, rows, w.ticket, w.received_at, w.superseded))
            rows += n
        self.tick += 1
        # Every row of the step, entry after entry (empty arrays of the right shape when every waiting
        # session was rejected).
        f = [e.features for e in entries]
        players = _joined([x.players for x in f], np.zeros((0, PLAYER_DIM), np.float32))
        npcs = _joined([x.npcs for x in f], np.zeros((0, MAX_MODEL_NPCS, NPC_DIM), np.float32))
        mask = _joined([x.npc_mask for x in f], np.zeros((0, MAX_MODEL_NPCS), bool))
        ids = _joined([x.npc_ids for x in f], np.zeros((0, MAX_MODEL_NPCS), np.int64))
        hint_rows, hint_slots, hint_ids = hint_entries(entries, mask, ids)
        current = players[:, [_DIFF_COL]]
        levels = np.concatenate([np.broadcast_to(self.levels, (rows, len(self.levels))), current], axis=1)
        reset = np.array(sorted(set(self._to_reset)), np.int64)
        self._to_reset.clear()
        return StepPlan(
            tick=self.tick,
            entries=entries,
            slots=np.array(slot_list, np.int64),
            reset_slots=reset,
            players=players,
            npcs=npcs,
            npc_mask=mask,
            levels=levels.astype(np.float32),
            explain_rows=np.array(explain_rows, np.int64),
            hint_rows=hint_rows,
            hint_slots=hint_slots,
            hint_ids=hint_ids,
            rejected=rejected,
        )


def _joined(arrays: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    return np.concatenate(arrays) if arrays else empty
