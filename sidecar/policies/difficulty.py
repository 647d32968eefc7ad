"""Difficulty policies: each turns one session's predictions and recent play into a target difficulty.

Difficulty is one number in [0, 1] (0 easiest) that the session's knobs map to (KnobSet).
Policies propose a target; the Director (director.py) then enforces every knob's range and its
maximum change per second, whatever the policy asked for.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sidecar.features import P

# The p_fail band `predictive` keeps each player in (a death within the fail horizon), where the hello names none.
# Measured per population: the harder (0.10, 0.40) plays default players 6% longer and fragile ones 25% shorter
# (docs/director-eval-2026-12-01.md, thirty-second session): no one band suits every game's players.
DEFAULT_BAND = (0.05, 0.30)


@dataclass
class Observation:
    """What a policy sees of one session at one tick (all players of the session)."""

    game_time: float
    dt: float
    difficulty: float  # the level the game reports applying now
    players: np.ndarray  # [P, PLAYER_DIM] features
    p_fail: np.ndarray  # [P, K] at the candidate levels (last column: current level)
    p_quit: np.ndarray  # [P, K]
    levels: np.ndarray  # [K] the candidate levels (last: current)
    # [P, K, M] share of the next value_horizon_s each player goes on playing at each level, per value
    # head (M = 0: the model has no value heads)
    value: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))
    value_horizon_s: float = 300.0
    fail_horizon_s: float = 10.0
    skill: float = -1.0  # the model's skill estimate, the mean over the session's players (-1: none)


@dataclass
class DirectorNote:
    """What a director is doing for a session and why, for the game's UI and the dashboard
    (Guidance.director), and what it logged for off-policy evaluation."""

    managing: str = "none"  # "frustration" (easier than the designer's level), "boredom" (harder), "none"
    target_level: float = 0.0
    designer_level: float = 0.0
    expected_gain_s: float = 0.0  # extra seconds of play over the value horizon, against the designer's level
    confidence: float = 0.0  # share of the value heads that expect the move to help
    calibration_shift: float = 0.0  # this player's correction of the level axis, from deaths seen vs predicted
    exploration_offset: float = 0.0  # a logged perturbation added to the level
    propensity: float = 1.0  # the probability the logging policy gave the choice it made
    candidate: str = ""  # what a portfolio drew ("harder"); a contextual director: "<share>/<candidate>"
    level_taken_back: float = 0.0  # of the candidate's move, by a retreat (retreat.py): it asks for target + this


class DifficultyPolicy:
    name = "base"
    note: DirectorNote | None = None  # set by policies that explain themselves
    # Whether it moves the knobs to keep the player's predicted risk in the band: NPC hints then act only
    # where the knobs have run out (director.choose_tactics); for the others they keep the player near it.
    steers_to_band = False

    def target(self, obs: Observation) -> float:
        raise NotImplementedError

    def ended(self, by_player: bool) -> None:
        """The session ended: by the player leaving, or (False) cut short otherwise."""


Params = Mapping[str, float | str]  # parsed by sidecar.policies.params.parse_params


def _param(params: Params, key: str, default: float) -> float:
    value = params.get(key, default)
    assert isinstance(value, float | int), f"policy parameter {key} was not parsed as a number"
    return float(value)


class StaticPolicy(DifficultyPolicy):
    """A fixed level; without `level`, the designer's defaults (moved by `offset`)."""

    name = "static"

    def __init__(self, params: Params, default_level: float) -> None:
        level = _param(params, "level", default_level) + _param(params, "offset", 0.0)
        self.level = min(max(level, 0.0), 1.0)

    def target(self, obs: Observation) -> float:
        return self.level


class RubberBandPolicy(DifficultyPolicy):
    """Rule-based: each death drops the difficulty, each kill and each calm second raises it a little."""

    name = "rubber_band"

    def __init__(self, params: Params, default_level: float) -> None:
        start = _param(params, "start", default_level) + _param(params, "offset", 0.0)
        self.level = min(max(start, 0.0), 1.0)
        # Defaults: the best of three settings tried on 150 simulated players (the model card lists them).
        self.death_step = _param(params, "death_step", 0.15)
        self.kill_step = _param(params, "kill_step", 0.002)
        self.calm_rate = _param(params, "calm_rate", 0.001)  # per second without taking damage
        reach = _param(params, "reach", 1.0)  # around the start, within [min, max]
        self.lo = max(_param(params, "min", 0.0), self.level - reach)
        self.hi = max(min(_param(params, "max", 1.0), self.level + reach), self.lo)

    def target(self, obs: Observation) -> float:
        x = obs.players
        deaths = float(x[:, P["deaths"]].sum())
        kills = float(x[:, P["kills"]].sum())
        calm = np.count_nonzero(x[:, P["damage_taken"]] <= 0) / len(x)
        self.level += -self.death_step * deaths + self.kill_step * kills + self.calm_rate * calm * obs.dt
        self.level = min(max(self.level, self.lo), self.hi)
        return self.level


class Phase(enum.Enum):
    BUILD_UP = "build_up"
    SUSTAIN = "sustain"
    FADE = "fade"
    RELAX = "relax"


class IntensityPolicy(DifficultyPolicy):
    """Left 4 Dead's director: build up until intensity peaks, sustain, fade, then relax.

    Intensity rises with damage taken and kills and decays in calm; every number is a parameter.
    """

    name = "intensity"

    def __init__(self, params: Params, default_level: float) -> None:
        self.peak = _param(params, "peak", 1.0)
        self.sustain_s = _param(params, "sustain_s", 4.0)  # 3-5 s in L4D
        self.relax_s = _param(params, "relax_s", 35.0)  # 30-45 s in L4D
        self.fade_to = _param(params, "fade_to", 0.3)
        self.decay_per_s = _param(params, "decay_per_s", 0.05)
        self.damage_gain = _param(params, "damage_gain", 2.0)
        self.kill_gain = _param(params, "kill_gain", 0.08)
        self.high = _param(params, "high", min(default_level + 0.25, 1.0))
        self.low = _param(params, "low", max(default_level - 0.25, 0.0))
        self.phase = Phase.BUILD_UP
        self.intensity = 0.0
        self.phase_started = 0.0

    def target(self, obs: Observation) -> float:
        x = obs.players
        self.intensity += float(
            self.damage_gain * x[:, P["damage_taken"]].sum() + self.kill_gain * x[:, P["kills"]].sum()
        )
        self.intensity = max(self.intensity - self.decay_per_s * obs.dt, 0.0)
        t = obs.game_time
        if self.phase is Phase.BUILD_UP and self.intensity >= self.peak:
            self.phase, self.phase_started = Phase.SUSTAIN, t
        elif self.phase is Phase.SUSTAIN and t - self.phase_started >= self.sustain_s:
            self.phase, self.phase_started = Phase.FADE, t
        elif self.phase is Phase.FADE and self.intensity <= self.fade_to:
            self.phase, self.phase_started = Phase.RELAX, t
        elif self.phase is Phase.RELAX and t - self.phase_started >= self.relax_s:
            self.phase, self.phase_started = Phase.BUILD_UP, t
        return self.high if self.phase in (Phase.BUILD_UP, Phase.SUSTAIN) else self.low


class PredictivePolicy(DifficultyPolicy):
    """Model-driven: score candidate levels, pick the one whose predicted p_fail sits in the target band.

    Cost of a level = distance of p_fail from the band (+ a tie-break toward its middle)
    + quit_weight * p_quit; the chosen level is
    then approached smoothly (and the Director's rate limits still apply).
    """

    name = "predictive"
    steers_to_band = True

    def __init__(self, params: Params, default_level: float, band: tuple[float, float]) -> None:
        self.band = (_param(params, "band_low", band[0]), _param(params, "band_high", band[1]))
        self.quit_weight = _param(params, "quit_weight", 3.0)
        self.smoothing_s = _param(params, "smoothing_s", 2.0)
        self.level = _param(params, "start", default_level)
        lo, hi = self.band
        # (band low, band high, band middle, quit weight) as predictive_best takes them.
        self.coefficients = (lo, hi, 0.5 * (lo + hi), self.quit_weight)
        self._coef = np.array(self.coefficients, np.float32)[:, None, None]  # [4, 1, 1], for target()

    def target(self, obs: Observation) -> float:
        return self.approach(self.best(obs), obs.dt)

    def best(self, obs: Observation) -> float:
        """The candidate level the band and the quit weight choose for the session's players now."""
        if len(obs.p_fail) == 1:  # one player: skip the (slow, small-array) mean
            fail, quit_ = obs.p_fail[:1, :-1], obs.p_quit[:1, :-1]  # [1, K-1]
        else:
            fail, quit_ = obs.p_fail[:, :-1].mean(axis=0, keepdims=True), obs.p_quit[:, :-1].mean(axis=0, keepdims=True)
        return float(predictive_best(fail, quit_, obs.levels[None, :-1], *self._coef)[0])

    def approach(self, best: float, dt: float) -> float:
        """Move toward the best level, smoothly."""
        self.level = approach(self.level, best, dt, self.smoothing_s)
        return self.level


def approach(level: float, want: float, dt: float, smoothing_s: float) -> float:
    """`level` moved toward `want` for `dt` seconds, closing the gap over `smoothing_s` (at once when 0)."""
    a = 1.0 if smoothing_s <= 0 else min(dt / smoothing_s, 1.0)
    return level + a * (want - level)


def predictive_best(
    fail: np.ndarray,
    quit_: np.ndarray,
    levels: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    mid: np.ndarray,
    quit_weight: np.ndarray,
) -> np.ndarray:
    """Each session's best candidate level. fail, quit_, levels: [S, K]; the coefficients: [S, 1] float32.

    Cost of a level = distance of p_fail from the band + a tie-break toward its middle (weak: it never
    outweighs leaving the band) + quit_weight * p_quit. Returns [S].
    """
    gap = np.maximum(low - fail, 0.0) + np.maximum(fail - high, 0.0)
    cost = gap + 0.1 * np.abs(fail - mid) + quit_weight * quit_
    best: np.ndarray = levels[np.arange(len(levels)), np.argmin(cost, axis=1)]
    return best
