"""The guarded director: the model's choice inside a trust region around the designer's level that
this player's own behaviour widens.

Why: the predictive director keeps the model's p_fail inside a band, so it eases for anyone who dies
often. For players who quit from frustration that helps; for players who quit from boredom (who want
danger, and die more because they seek it) it makes the game worse than the designer's level, and the
model, trained on one population, cannot tell the two apart. What can tell them apart is how a player
reacts (flow theory's anxiety against boredom): a frustrated player disengages after pressure, a bored
one disengages in calm. So, per session:

- engagement drop: the player's recent activity (movement and shooting, featurizer `recent_activity`)
  against their own baseline (a slow running peak); 0 while they play as they did, up to 1;
- the mean drop in each context, pressure (damage or a death in the last seconds) and calm,
  exponentially weighted over `evidence_tau_s`; evidence of frustration: the drop under pressure;
  evidence of boredom: how much more the player disengages in calm than under pressure (seen in one
  context only, the drop there is the evidence); the stronger of the two decides the direction;
- the level: the designer's, or the model's choice clipped to `base_down` below it plus up to `reach`
  more as frustration evidence builds; with boredom evidence ahead instead, up to `reach` above it.

With no evidence either way it moves at most `base_down` from the designer's level, so a player unlike
any the model learned from is played close to the designer's default. The Guidance's director note
says which risk it is managing and how strong the evidence is.
"""

from __future__ import annotations

import math

from sidecar.features import P
from sidecar.policies.difficulty import (
    DifficultyPolicy,
    DirectorNote,
    Observation,
    Params,
    PredictivePolicy,
    _param,
    approach,
)

__all__ = ["GuardedPolicy"]

_ACTIVITY, _DAMAGE, _SINCE_DEATH = P["recent_activity"], P["recent_damage"], P["time_since_death"]
_BASELINE_UP_S = 10.0  # the baseline follows rising activity this fast
_BASELINE_DOWN_S = 600.0  # and falling activity this slowly (a drop must last to count as the new normal)
_WARMUP_S = 20.0  # no evidence before the baseline has seen this much play
_CALM_DAMAGE = 0.15  # recent damage (exponentially weighted over 20 s, in max-health units) at or above this: pressure
_MIN_SHARE = 0.05  # a context (pressure or calm) seen less than this share of the recent time: unknown
_PRESSURE_S = 45.0  # a death this recent is pressure (frustration outlasts the fight)


class GuardedPolicy(DifficultyPolicy):
    name = "guarded"

    def __init__(self, params: Params, default_level: float, band: tuple[float, float]) -> None:
        self.designer = default_level
        self.level = _param(params, "start", default_level)
        self.base_down = _param(params, "base_down", 0.1)
        self.reach = _param(params, "reach", 0.3)
        self.evidence_tau_s = _param(params, "evidence_tau_s", 60.0)
        self.full_evidence = _param(params, "full_evidence", 0.15)
        self.smoothing_s = _param(params, "smoothing_s", 3.0)
        self._model = PredictivePolicy(params, default_level, band)  # its choice (band, quit weight), not its level
        self.baseline = 0.0
        self.played_s = 0.0
        # Exponentially weighted: time under pressure and in calm, and the engagement drop in each.
        self.pressed_w = self.calm_w = self.pressed_drop = self.calm_drop = 0.0
        self.bored = 0.0
        self.frustrated = 0.0
        self.note = DirectorNote(target_level=self.designer, designer_level=self.designer)

    def target(self, obs: Observation) -> float:
        self._gather(obs)
        model = self._model.best(obs)
        ease = min(self.frustrated / self.full_evidence, 1.0) if self.full_evidence > 0 else 1.0
        harden = min(self.bored / self.full_evidence, 1.0) if self.full_evidence > 0 else 1.0
        note = DirectorNote(designer_level=self.designer, confidence=max(ease, harden))
        if self.bored > self.frustrated and harden > 0.0:
            want = self.designer + self.reach * harden
            note.managing = "boredom"
        else:
            low = self.designer - self.base_down - self.reach * ease
            want = min(max(model, low), self.designer)
            note.managing = "frustration" if want < self.designer - 1e-6 else "none"
        want = min(max(want, 0.0), 1.0)
        note.target_level = want
        self.note = note
        self.level = approach(self.level, want, obs.dt, self.smoothing_s)
        return self.level

    def _gather(self, obs: Observation) -> None:
        """Update the baseline and the two kinds of evidence from this step's players (their mean)."""
        x = obs.players
        dt = max(obs.dt, 0.0)
        activity = float(x[:, _ACTIVITY].mean())
        rate = _BASELINE_UP_S if activity > self.baseline else _BASELINE_DOWN_S
        self.baseline += min(dt / rate, 1.0) * (activity - self.baseline)
        self.played_s += dt
        if self.played_s < _WARMUP_S or self.baseline < 0.05:
            return
        drop = min(max(1.0 - activity / self.baseline, 0.0), 1.0)
        # time_since_death is in minutes, capped at 2 (the featurizer's scale).
        pressed = float(((x[:, _DAMAGE] >= _CALM_DAMAGE) | (x[:, _SINCE_DEATH] * 60.0 < _PRESSURE_S)).mean())
        a = 1.0 - math.exp(-dt / self.evidence_tau_s) if self.evidence_tau_s > 0 else 1.0
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
