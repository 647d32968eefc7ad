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
        self.tactic_allowed = np.array([t in allowed for t in TACTIC_ENUMS])
        self.allowed = np.flatnonzero(self.tactic_allowed)  # model tactic indices the game implements
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
        """tactic_p: [P, N, A] per player's nearby NPCs; p_fail_now: [P] at the current level."""
        if not self.hints_on or not self.allowed.size:
            return []
        lo, hi = self.band
        mid = 0.5 * (lo + hi)
        hints: list[pb.NpcHint] = []
        seen: set[int] = set()
        present = features.npc_mask & (features.npc_ids >= 0)  # [P, N]
        for i, pid in enumerate(features.player_ids):
            # Below the band: the most effective tactic; above it: the least; inside: the median.
            valid = np.flatnonzero(present[i])
            if valid.size == 0:
                continue
            pf = float(p_fail_now[i])
            aggression = min(max(0.5 + 2.0 * (mid - pf), 0.0), 1.0)
            p = tactic_p[i, valid][:, self.allowed]  # [V, A'], the game's tactics only
            if pf < lo:
                ks = p.argmax(axis=1)
            elif pf > hi:
                ks = p.argmin(axis=1)
            else:
                order = p.argsort(axis=1, kind="stable")
                a = p.shape[1]
                # The median; with an even count the two middle ones tie, and the lower index wins.
                ks = order[:, a // 2] if a % 2 else np.minimum(order[:, a // 2 - 1], order[:, a // 2])
            tactics = self.allowed_enums[ks].tolist()
            for npc_id, tactic in zip(features.npc_ids[i, valid].tolist(), tactics, strict=True):
                if npc_id in seen:
                    continue
                seen.add(npc_id)
                hints.append(
                    pb.NpcHint(npc_id=npc_id, tactic=cast(Any, tactic), target_player_id=pid, aggression=aggression)
                )
        return hints


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
