"""The learned director, and the logged exploration a game can afford.

`learned`: the model's value surface (fitted from sessions whose level was set at random; see
sidecar/training/value_fit.py) says, for a player of this skill estimate and each candidate level held,
how much of the next few minutes the player goes on playing. The director starts from the designer's
level and moves away from it only as far as the surface's bootstrap replicates agree that it helps: a
move must gain at least `min_gain_s` seconds on the lower confidence bound (mean minus `confidence`
standard deviations across replicates), and never more than `max_offset` from the designer's level.
Per session, the surface is read at this player's skill estimate, which the model updates from the
player's own kills and deaths every step (the per-player correction). With `calibrate=1` it also
shifts the level axis when the player dies more (or less) than the model predicted, by the difference
in difficulty that the model's own p_fail curve says would explain it.

`perturbed`: the designer's level with small random offsets (every `period_s`, one of five offsets
with fixed probabilities), each logged with its probability, so that recordings of a game's own players
can refit the value surface and evaluate other directors off-policy.
"""

from __future__ import annotations

import math
import random

import numpy as np

from sidecar.features import P
from sidecar.policies.difficulty import DifficultyPolicy, DirectorNote, Observation, Params, _param, approach

__all__ = ["OFFSETS", "OFFSET_PROBS", "LearnedPolicy", "PerturbedPolicy"]

# The perturbed policy's offsets, in units of its `scale`, and their probabilities.
OFFSETS = (-2.0, -1.0, 0.0, 1.0, 2.0)
OFFSET_PROBS = (0.15, 0.2, 0.3, 0.2, 0.15)
_DEATH_TAU_S = 120.0  # memory of the per-player death calibration
_PRIOR_DEATHS = 1.0  # pseudo-deaths on each side: no correction until deaths are seen
_MAX_SHIFT = 0.25
_DEATHS = P["deaths"]


class LearnedPolicy(DifficultyPolicy):
    name = "learned"

    def __init__(self, params: Params, default_level: float) -> None:
        self.designer = default_level
        self.level = _param(params, "start", default_level)
        self.kappa = _param(params, "confidence", 1.0)
        self.max_offset = _param(params, "max_offset", 0.4)
        self.min_gain_s = _param(params, "min_gain_s", 3.0)
        self.smoothing_s = _param(params, "smoothing_s", 3.0)
        self.calibrate = _param(params, "calibrate", 0.0) > 0
        self.expected_deaths = 0.0  # exponentially weighted, _DEATH_TAU_S
        self.seen_deaths = 0.0
        self.note = DirectorNote(target_level=self.designer, designer_level=self.designer)

    def target(self, obs: Observation) -> float:
        shift = self._calibrate(obs) if self.calibrate else 0.0
        want = self.designer
        note = DirectorNote(target_level=want, designer_level=self.designer, calibration_shift=shift)
        if obs.value.size:
            want, note = self._choose(obs, shift, note)
        self.note = note
        self.level = approach(self.level, want, obs.dt, self.smoothing_s)
        return self.level

    def _calibrate(self, obs: Observation) -> float:
        """The level shift that explains this player's deaths so far against what the model predicted."""
        decay = math.exp(-obs.dt / _DEATH_TAU_S)
        p_now = float(np.clip(obs.p_fail[:, -1].mean(), 1e-6, 1 - 1e-6))
        hazard = -math.log(1.0 - p_now) / obs.fail_horizon_s  # deaths a second the model expects now
        self.expected_deaths = self.expected_deaths * decay + hazard * obs.dt * len(obs.p_fail)
        self.seen_deaths = self.seen_deaths * decay + float(obs.players[:, _DEATHS].sum())
        ratio = (self.seen_deaths + _PRIOR_DEATHS) / (self.expected_deaths + _PRIOR_DEATHS)
        # The level at which the model would expect this player's death rate, against the current one.
        p_seen = 1.0 - math.exp(-hazard * ratio * obs.fail_horizon_s)
        curve = obs.p_fail[:, :-1].mean(axis=0)  # [K-1] p_fail at the candidate levels, rising with level
        levels = obs.levels[:-1]
        if not np.all(np.diff(curve) > 1e-6):  # level does not order the risk: no correction from it
            return 0.0
        at = float(np.interp(p_seen, curve, levels))
        now = float(np.interp(p_now, curve, levels))
        return float(np.clip(at - now, -_MAX_SHIFT, _MAX_SHIFT))

    def _choose(self, obs: Observation, shift: float, note: DirectorNote) -> tuple[float, DirectorNote]:
        levels = obs.levels[:-1]  # [K-1] candidates (the last column is the current level)
        value = obs.value[:, :-1, :].mean(axis=0)  # [K-1, M] the session's players, averaged
        # Read the curves where this player is: level d plays like the model's d + shift.
        read = np.clip(levels + shift, levels[0], levels[-1])
        at = np.stack([np.interp(read, levels, value[:, m]) for m in range(value.shape[1])], axis=1)  # [K-1, M]
        ref = np.array([np.interp(self.designer + shift, levels, value[:, m]) for m in range(value.shape[1])])
        gain = (at - ref[None, :]) * obs.value_horizon_s  # [K-1, M] seconds
        mean = gain.mean(axis=1)
        spread = gain.std(axis=1, ddof=1) if gain.shape[1] > 1 else np.zeros_like(mean)
        lower = mean - self.kappa * spread
        allowed = np.abs(levels - self.designer) <= self.max_offset + 1e-9
        lower = np.where(allowed, lower, -np.inf)
        best = int(np.argmax(lower))
        if lower[best] < self.min_gain_s:
            return self.designer, note
        want = float(levels[best])
        note.target_level = want
        note.managing = "frustration" if want < self.designer else "boredom"
        note.expected_gain_s = float(mean[best])
        note.confidence = float((gain[best] > 0).mean())
        return want, note


class PerturbedPolicy(DifficultyPolicy):
    """The designer's level plus a logged random offset, redrawn every period_s of game time."""

    name = "perturbed"

    def __init__(self, params: Params, default_level: float, seed: int) -> None:
        self.designer = default_level
        self.scale = _param(params, "scale", 0.075)
        self.period_s = _param(params, "period_s", 30.0)
        self.rng = random.Random(seed)
        self.next_draw = 0.0
        self.offset = 0.0
        self.note = DirectorNote(target_level=self.designer, designer_level=self.designer)

    def target(self, obs: Observation) -> float:
        if obs.game_time >= self.next_draw or self.note is None:
            i = self.rng.choices(range(len(OFFSETS)), OFFSET_PROBS)[0]
            self.offset = OFFSETS[i] * self.scale
            self.next_draw = obs.game_time + self.period_s
            self.note = DirectorNote(
                target_level=min(max(self.designer + self.offset, 0.0), 1.0),
                designer_level=self.designer,
                exploration_offset=self.offset,
                propensity=OFFSET_PROBS[i],
            )
        return self.note.target_level
