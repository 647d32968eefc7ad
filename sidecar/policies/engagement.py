"""How a player reacts to pressure against calm: evidence of frustration or of boredom from their own play.

Why: a director that eases for anyone who dies often helps players who quit from frustration and hurts
players who quit from boredom (who want danger, and die more because they seek it); deaths alone cannot
tell the two apart, and neither can a model trained on one population. How a player reacts can (flow
theory's anxiety against boredom): a frustrated player disengages after pressure, a bored one in calm.

- engagement drop: the player's recent activity (movement and shooting, featurizer `recent_activity`)
  against their own baseline (a slow running peak); 0 while they play as they did, up to 1;
- the mean drop in each context, pressure (damage or a death in the last seconds) and calm,
  exponentially weighted over `tau_s`; evidence of frustration: the drop under pressure; evidence of
  boredom: how much more the player disengages in calm than under pressure (seen in one context only,
  the drop there is the evidence).
"""

from __future__ import annotations

import math

import numpy as np

from sidecar.features import P

__all__ = ["EngagementEvidence"]

_COLUMNS = [P["recent_activity"], P["recent_damage"], P["time_since_death"]]
_BASELINE_UP_S = 10.0  # the baseline follows rising activity this fast
_BASELINE_DOWN_S = 600.0  # and falling activity this slowly (a drop must last to count as the new normal)
_WARMUP_S = 20.0  # no evidence before the baseline has seen this much play
_CALM_DAMAGE = 0.15  # recent damage (exponentially weighted over 20 s, in max-health units) at or above this: pressure
_MIN_SHARE = 0.05  # a context (pressure or calm) seen less than this share of the recent time: unknown
_PRESSURE_S = 45.0  # a death this recent is pressure (frustration outlasts the fight)


class EngagementEvidence:
    """One session's evidence of frustration and of boredom (each an engagement drop, 0-1), from its
    players' features at each model step (their mean)."""

    def __init__(self, tau_s: float = 60.0) -> None:
        self.tau_s = tau_s
        self.baseline = 0.0
        self.played_s = 0.0
        # Exponentially weighted: time under pressure and in calm, and the engagement drop in each.
        self.pressed_w = self.calm_w = self.pressed_drop = self.calm_drop = 0.0
        self.bored = 0.0
        self.frustrated = 0.0

    def update(self, players: np.ndarray, dt: float) -> None:
        """players: [P, PLAYER_DIM] features of one model step; dt: game seconds since the step before."""
        dt = max(dt, 0.0) if math.isfinite(dt) else 0.0
        n = len(players)
        if n == 0:
            return
        # Plain floats: a session has a few players, where each numpy call costs more than its arithmetic.
        act, damage, since_death = players[:, _COLUMNS].T.tolist()
        activity = sum(act) / n
        if not math.isfinite(activity):  # features are checked upstream; evidence never turns NaN for good
            return
        rate = _BASELINE_UP_S if activity > self.baseline else _BASELINE_DOWN_S
        self.baseline += min(dt / rate, 1.0) * (activity - self.baseline)
        self.played_s += dt
        if self.played_s < _WARMUP_S or self.baseline < 0.05:
            return
        drop = min(max(1.0 - activity / self.baseline, 0.0), 1.0)
        # time_since_death is in minutes, capped at 2 (the featurizer's scale).
        pressed = sum(d >= _CALM_DAMAGE or s * 60.0 < _PRESSURE_S for d, s in zip(damage, since_death, strict=True)) / n
        a = 1.0 - math.exp(-dt / self.tau_s) if self.tau_s > 0 else 1.0
        self.pressed_w += a * (pressed - self.pressed_w)
        self.calm_w += a * (1.0 - pressed - self.calm_w)
        self.pressed_drop += a * (drop * pressed - self.pressed_drop)
        self.calm_drop += a * (drop * (1.0 - pressed) - self.calm_drop)
        # Which context the player disengages in more (the mean drop in each; seen in one context only,
        # the drop there is the evidence).
        seen_p, seen_c = self.pressed_w > _MIN_SHARE, self.calm_w > _MIN_SHARE
        in_pressure = self.pressed_drop / self.pressed_w if seen_p else 0.0
        in_calm = self.calm_drop / self.calm_w if seen_c else 0.0
        # Boredom: by how much more they disengage in calm; frustration: the drop under pressure.
        self.bored = max(in_calm - in_pressure, 0.0)
        self.frustrated = in_pressure
