"""The per-session director: policy target -> knob values within range and rate, plus NPC hints."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from sidecar.features import FrameFeatures, P
from sidecar.model.player_model import TACTICS
from sidecar.policies.difficulty import (
    DifficultyPolicy,
    IntensityPolicy,
    Observation,
    PredictivePolicy,
    RubberBandPolicy,
    StaticPolicy,
)
from sidecar.schema import pb
from sidecar.session import Session

POLICIES = ("static", "rubber_band", "intensity", "predictive")
DEFAULT_BAND = (0.05, 0.30)
# NpcTactic enum values of the model's tactics, in TACTICS order.
TACTIC_ENUMS = np.array(
    [
        pb.NPC_TACTIC_HOLD,
        pb.NPC_TACTIC_ADVANCE,
        pb.NPC_TACTIC_FLANK,
        pb.NPC_TACTIC_RETREAT,
        pb.NPC_TACTIC_REGROUP,
        pb.NPC_TACTIC_PRESSURE,
    ]
)
assert len(TACTIC_ENUMS) == len(TACTICS)


def make_policy(name: str, params: dict[str, str], default_level: float, band: tuple[float, float]) -> DifficultyPolicy:
    if name == "static":
        return StaticPolicy(params, default_level)
    if name == "rubber_band":
        return RubberBandPolicy(params, default_level)
    if name == "intensity":
        return IntensityPolicy(params, default_level)
    if name == "predictive":
        return PredictivePolicy(params, default_level, band)
    raise ValueError(f"unknown policy {name!r}; choose one of {', '.join(POLICIES)}")


class Director:
    def __init__(self, session: Session, default_policy: str) -> None:
        hello = session.hello
        self.session = session
        specs = list(hello.knobs)
        self.names = [k.name for k in specs]
        self.lo = np.array([k.min_value for k in specs], np.float32)
        self.hi = np.array([k.max_value for k in specs], np.float32)
        self.rate = np.array([k.max_change_per_second for k in specs], np.float32)
        self.defaults = np.array([k.default_value for k in specs], np.float32)
        self.default_level = session.knobs.to_difficulty(self.defaults)
        self.band = (hello.target.p_fail_low, hello.target.p_fail_high) if hello.HasField("target") else DEFAULT_BAND
        self.policy_name = hello.policy or default_policy
        params = dict(hello.policy_params)
        self.policy = make_policy(self.policy_name, params, self.default_level, self.band)
        self.hints_on = session.has(pb.CAPABILITY_NPC_HINTS) and params.get("npc_hints", "on") != "off"
        allowed = set(hello.npc_tactics) or set(TACTIC_ENUMS.tolist())
        # The model's tactic indices that the game implements.
        self.allowed = np.array([i for i, t in enumerate(TACTIC_ENUMS.tolist()) if t in allowed], np.int64)
        self.allowed_enums = TACTIC_ENUMS[self.allowed]
        self.values = self.defaults.copy()  # the knob values we last sent
        self.last_time: float | None = None

    def knob_values(self, obs: Observation) -> np.ndarray:
        target = self.policy.target(obs)
        wanted = self.session.knobs.to_values(min(max(target, 0.0), 1.0))
        dt = 0.0 if self.last_time is None else max(obs.game_time - self.last_time, 0.0)
        self.last_time = obs.game_time
        step = np.where(self.rate > 0, self.rate * dt, np.inf)
        self.values = np.clip(np.clip(wanted, self.values - step, self.values + step), self.lo, self.hi).astype(
            np.float32
        )
        return self.values

    def npc_hints(self, features: FrameFeatures, tactic_p: np.ndarray, p_fail_now: np.ndarray) -> list[pb.NpcHint]:
        """tactic_p: [P, N, A] per player's nearby NPCs; p_fail_now: [P] at the current level.

        Below the band an NPC gets its most effective tactic, above it the least, inside it the
        median. An NPC near several players is hinted once, for the first player that sees it.
        """
        if not self.hints_on or not self.allowed.size:
            return []
        present = features.npc_mask & (features.npc_ids >= 0)  # [P, N]
        if not present.any():
            return []
        lo, hi = self.band
        p = tactic_p[:, :, self.allowed]  # [P, N, A'], the game's tactics only
        if len(features.player_ids) == 1:  # the common case: one branch, no per-player select
            pf0 = float(p_fail_now[0])
            ks = p.argmax(axis=-1) if pf0 < lo else p.argmin(axis=-1) if pf0 > hi else _median_index(p)
        else:
            pf = np.asarray(p_fail_now, np.float64)[:, None]  # [P, 1]
            ks = np.where(pf < lo, p.argmax(axis=-1), np.where(pf > hi, p.argmin(axis=-1), _median_index(p)))
        rows, slots = np.nonzero(present)  # player-major: the first player to see an NPC comes first
        aggression = np.clip(0.5 + 2.0 * (0.5 * (lo + hi) - np.asarray(p_fail_now, np.float64)), 0.0, 1.0).tolist()
        pids = features.player_ids
        hints: list[pb.NpcHint] = []
        seen: set[int] = set()  # an NPC near several players (or sent twice) is hinted once
        for r, npc_id, tactic in zip(
            rows.tolist(),
            features.npc_ids[rows, slots].tolist(),
            self.allowed_enums[ks[rows, slots]].tolist(),
            strict=True,
        ):
            if npc_id not in seen:
                seen.add(npc_id)
                hints.append(
                    pb.NpcHint(
                        npc_id=npc_id, tactic=cast(Any, tactic), target_player_id=pids[r], aggression=aggression[r]
                    )
                )
        return hints


def _median_index(p: np.ndarray) -> np.ndarray:
    """Index of the median along the last axis; of two middle ones (an even count), the lower index."""
    order = p.argsort(axis=-1, kind="stable")
    a = p.shape[-1]
    return order[..., a // 2] if a % 2 else np.minimum(order[..., a // 2 - 1], order[..., a // 2])


def observation(features: FrameFeatures, p_fail: np.ndarray, p_quit: np.ndarray, levels: np.ndarray) -> Observation:
    return Observation(
        game_time=features.game_time,
        dt=float(features.players[0, P["dt"]]),
        difficulty=features.difficulty,
        players=features.players,
        p_fail=p_fail,
        p_quit=p_quit,
        levels=levels,
    )
