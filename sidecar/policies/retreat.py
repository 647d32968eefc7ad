"""A move harder than the designer's level, undone for a player whose own play says it hurts them.

Why: a candidate that holds the game harder than the designer's level is drawn because the game's
players *on average* stay longer under it; some of them do not. On thrill-seekers a fixed 0.8 keeps the
population 22% longer than the designer's 0.5 and its least skilled tenth 17% shorter, and every rule
on deaths alone that eased those players hurt veterans who die as often and want it hard
(docs/director-eval-2026-12-01.md). How the player reacts tells them apart (engagement.py): a session
whose player disengages under pressure has the harder level taken back toward the designer's in
proportion to that evidence. With no evidence the candidate's level stands; with full evidence
(`retreat`, an engagement drop) the session is played at the designer's level. Never farther from it
than the candidate asked.

A director that keeps each player's predicted risk in a band (`predictive`) is not given one in the
portfolio: its band already eases for a player it presses, and a retreat on top took back the harder
levels it gave the skilled players who wanted them (`predictive` with the (0.10, 0.40) band on 1,000
default players: 533 s alone, 516 s with `retreat=0.3`; the shipped band 501 and 496, though on fragile
players 490 and 502: docs/director-eval-2026-12-01.md, thirty-fifth session).

An easier level is not taken back. The first version took it back for a player who disengages in calm
(boredom) and read lingering frustration as boredom: on players whose frustration outlasts the fight
(`tilt`) the portfolio, mostly `predictive` there, fell from 527 s to 452 s (1,000 players; 527 again
with the harder side alone), on players who want it much easier (`fragile`) it played 333 s against 490.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sidecar.policies.difficulty import DirectorNote
from sidecar.policies.engagement import EngagementEvidence

__all__ = ["Retreat"]


class Retreat:
    """One session's retreat toward the designer's level; `share` is how much of the move it took back."""

    def __init__(self, designer: float, full_evidence: float, tau_s: float = 60.0) -> None:
        self.designer = designer
        self.full_evidence = full_evidence
        self.evidence = EngagementEvidence(tau_s)
        self.share = 0.0
        self.asked: float | None = None  # the candidate's latest target, before any of it was taken back
        self.now = designer  # the level played at after it

    def level(self, target: float, players: np.ndarray, dt: float) -> float:
        """The level to play at this model step, given the candidate's `target` and the step's players."""
        e = self.evidence
        e.update(players, dt)
        self.asked = target
        move = target - self.designer
        # Harder than designed: taken back as the player disengages under pressure (not when they
        # disengage more in calm: bored). An easier level is not taken back (module docstring).
        if move <= 0.0 or e.frustrated < e.bored:
            self.share = 0.0
        else:
            self.share = min(e.frustrated / self.full_evidence, 1.0) if self.full_evidence > 0 else 1.0
        self.now = self.designer + move * (1.0 - self.share)
        return self.now

    @property
    def taken_back(self) -> float:
        """How much of the candidate's latest move is taken back (the candidate asks for the level played
        at plus this; 0 before the first step and while nothing is taken back)."""
        return 0.0 if self.asked is None or self.share <= 0.0 else self.asked - self.now

    def explained(self, note: DirectorNote | None) -> DirectorNote | None:
        """The director note for the game: `note` (the candidate's), or while part of its move is taken back,
        the risk that answers (frustration), the level played at and how much was taken back
        (level_taken_back; as a share of the move: confidence when the candidate gave no note)."""
        if self.share <= 0.0 or self.asked is None:
            return note
        back = self.taken_back
        if note is None:
            return DirectorNote("frustration", self.now, self.designer, confidence=self.share, level_taken_back=back)
        return replace(note, managing="frustration", target_level=self.now, level_taken_back=back)
