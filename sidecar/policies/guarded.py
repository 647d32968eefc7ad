"""The guarded director: the model's choice inside a trust region around the designer's level that
this player's own behaviour widens.

Why: the predictive director keeps the model's p_fail inside a band, so it eases for anyone who dies
often. For players who quit from frustration that helps; for players who quit from boredom (who want
danger, and die more because they seek it) it makes the game worse than the designer's level, and the
model, trained on one population, cannot tell the two apart. What can tell them apart is how a player
reacts (flow theory's anxiety against boredom): a frustrated player disengages after pressure, a bored
one disengages in calm. So, per session:

- evidence of frustration and of boredom from how the player disengages under pressure and in calm
  (sidecar/policies/engagement.py), averaged over `evidence_tau_s`; the stronger decides the direction;
- the level: the designer's, or the model's choice clipped to `base_down` below it plus up to `reach`
  more as frustration evidence builds; with boredom evidence ahead instead, up to `reach` above it.

With no evidence either way it moves at most `base_down` from the designer's level, so a player unlike
any the model learned from is played close to the designer's default. The Guidance's director note
says which risk it is managing and how strong the evidence is.
"""

from __future__ import annotations

from sidecar.policies.difficulty import (
    DifficultyPolicy,
    DirectorNote,
    Observation,
    Params,
    PredictivePolicy,
    _param,
    approach,
)
from sidecar.policies.engagement import EngagementEvidence

__all__ = ["GuardedPolicy"]


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
        self.evidence = EngagementEvidence(self.evidence_tau_s)
        self.note = DirectorNote(target_level=self.designer, designer_level=self.designer)

    def target(self, obs: Observation) -> float:
        evidence = self.evidence
        evidence.update(obs.players, obs.dt)
        model = self._model.best(obs)
        ease = min(evidence.frustrated / self.full_evidence, 1.0) if self.full_evidence > 0 else 1.0
        harden = min(evidence.bored / self.full_evidence, 1.0) if self.full_evidence > 0 else 1.0
        note = DirectorNote(designer_level=self.designer, confidence=max(ease, harden))
        if evidence.bored > evidence.frustrated and harden > 0.0:
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
