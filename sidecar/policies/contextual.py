"""The contextual director: the portfolio's choice made per player, by how skilled the model reads them.

Why: on the default population the best director differs along the skill range. `predictive` keeps the
least skilled playing longest (it eases the game for them: +50% against the rubber band in the lowest
skill decile) and the rubber band keeps the middle longest (+25% in deciles 5-8), so one choice per game
(the portfolio) leaves either half on the table. Measured with the simulator's own skill, a per-decile
choice between the two would play 1.09x the rubber band (docs/director-eval-2026-12-01.md).

How: for its first CONTEXT_AT_S seconds a session plays what the game's players as a whole have
stayed longest under so far (the designer's level until anything is learned). Then its skill estimate
(the mean over the second half of that time) places it in one of CONTEXT_BUCKETS equal shares of this
game's players (by rank among the estimates seen), and that share's own portfolio (portfolio.py, keyed
"<game>#skill<b>of<n>": the designer's level, harder, `predictive`, the rubber band and the ladder)
draws its director for the rest of the session by Thompson sampling on the quit hazard, learning from
the play after the draw. A share starts from what its siblings learned, worth at most
BORROWED_SESSIONS sessions (partial pooling): where every player wants the same, the shares do not each
pay to find it out; where they differ, a share's own sessions soon outweigh it. Every share has the
designer's level among its candidates, so a share whose players stay longest there ends up there.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from sidecar.columns import MAX_PLAY_GAP_S
from sidecar.policies.difficulty import DifficultyPolicy, DirectorNote, Observation, Params
from sidecar.policies.portfolio import (
    CONTEXT_MARK,
    ArmEvidence,
    Portfolio,
    PortfolioArm,
    portfolio_for,
    skill_spread,
    thompson,
)

__all__ = ["CONTEXT_AT_S", "CONTEXT_BUCKETS", "ContextualPolicy", "bucket_key"]

# director.make_policy's shape (passed in: director.py imports this module)
MakePolicy = Callable[[str, Mapping[str, str], float, tuple[float, float], int], DifficultyPolicy]

CONTEXT_AT_S = 60.0
CONTEXT_BUCKETS = 3
BORROWED_SESSIONS = 20.0


def bucket_key(game_id: str, bucket: int, buckets: int = CONTEXT_BUCKETS) -> str:
    """The portfolio key of a game's skill share (bucket 0: the least skilled)."""
    return f"{game_id}{CONTEXT_MARK}{bucket + 1}of{buckets}"


class ContextualPolicy(DifficultyPolicy):
    name = "contextual"

    def __init__(
        self,
        params: Params,
        default_level: float,
        band: tuple[float, float],
        game_id: str,
        seed: int,
        make: MakePolicy,
    ) -> None:
        self.default_level = default_level
        self.band = band
        self.game_id = game_id
        self.seed = seed
        self.params = dict(params)
        self._make = make
        self.note = DirectorNote(managing="none", target_level=default_level, designer_level=default_level)
        self.skills: list[float] = []
        self.started_at: float | None = None
        self.inner: DifficultyPolicy | None = None
        self.portfolio: Portfolio | None = None
        self.arm: PortfolioArm | None = None
        self.bucket = -1
        self.propensity = 1.0
        self._last_time = 0.0
        self._level = default_level  # the level the first minute's director holds now
        self.first: DifficultyPolicy | None = None  # the first minute's director (None: the designer's level)
        first = self._first_pick()
        if first is not None:
            arm, drawn_with = first
            self.first = self._policy_of(arm, default_level)
            self.steers_to_band = self.first.steers_to_band  # the NPC hints follow the minute's director
            self.note = self._note(arm, drawn_with, 0.0)

    def target(self, obs: Observation) -> float:
        if self.inner is not None:
            # The play since the draw counts for the drawn director, step by step (the first minute never).
            self.played(min(max(obs.game_time - self._last_time, 0.0), MAX_PLAY_GAP_S))
            self._last_time = obs.game_time
            return self.inner.target(obs)
        if self.started_at is None:
            self.started_at = obs.game_time
        if obs.skill >= 0.0:
            self.skills.append(obs.skill)
        if obs.game_time - self.started_at < CONTEXT_AT_S or not self.skills:
            if self.first is not None:
                self._level = self.first.target(obs)
            return self._level
        self._choose(obs)
        self._last_time = obs.game_time
        assert self.inner is not None
        return self.inner.target(obs)

    def _choose(self, obs: Observation) -> None:
        recent = self.skills[len(self.skills) // 2 :]
        skill = sum(recent) / len(recent)
        self.bucket = skill_spread(self.game_id).bucket(skill, CONTEXT_BUCKETS)
        self.portfolio = portfolio_for(bucket_key(self.game_id, self.bucket))
        self.arm, self.propensity = self.portfolio.choose(self._borrowed(self.portfolio))
        self.inner = self._policy_of(self.arm, self._level)  # an adaptive one goes on from where the game is
        self.steers_to_band = self.inner.steers_to_band  # the drawn director's, for the NPC hints
        self.note = self._note(self.arm, self.propensity, self.portfolio.expected_gain_s(self.arm.label))

    def _policy_of(self, arm: PortfolioArm, start: float) -> DifficultyPolicy:
        params: dict[str, str] = {k: str(v) for k, v in self.params.items()}
        params.update(dict(arm.params))
        if arm.policy in ("rubber_band", "predictive"):
            params["start"] = f"{min(max(start, 0.0), 1.0):.6f}"
        return self._make(arm.policy, params, self.default_level, self.band, self.seed)

    def _note(self, arm: PortfolioArm, drawn_with: float, gain_s: float) -> DirectorNote:
        offset = arm.offset if arm.policy == "static" else 0.0
        return DirectorNote(
            managing=arm.manages,
            target_level=min(max(self.default_level + offset, 0.0), 1.0),
            designer_level=self.default_level,
            expected_gain_s=gain_s,
            confidence=drawn_with,
            propensity=drawn_with,
            candidate=self.drawn or f"first minute/{arm.label}",
        )

    def _first_pick(self) -> tuple[PortfolioArm, float] | None:
        """The first minute's director, before the player's skill is known: Thompson sampling on what all
        the game's shares learned together (None, the designer's level, until they have learned anything):
        where the whole game's players want something else (all of them harder, say), they get it from
        the start, not a minute in."""
        shares = [portfolio_for(bucket_key(self.game_id, b)) for b in range(CONTEXT_BUCKETS)]
        pooled = _pooled(shares)
        if not any(ev.finished for ev in pooled.values()):
            return None
        arms = {arm.label: arm for share in shares for arm in share.arms}
        return thompson(list(arms.values()), pooled, random.Random(self.seed))

    def _borrowed(self, own: Portfolio) -> dict[str, tuple[float, float]]:
        """What the game's other skill shares learned, per candidate, worth at most BORROWED_SESSIONS
        sessions (partial pooling): a share starts from what the game's players as a whole prefer, and
        its own evidence takes over as it grows. Where every player wants the same (all of them harder,
        say), the shares no longer each pay to find it out; where they differ, a few hundred of a share's
        own sessions outweigh it. Rungs a sibling's ladder added join this share too."""
        siblings = [portfolio_for(bucket_key(self.game_id, b)) for b in range(CONTEXT_BUCKETS) if b != self.bucket]
        pooled = _pooled(siblings)
        own.adopt(list(pooled))
        out = {}
        for label, ev in pooled.items():
            w = min(1.0, BORROWED_SESSIONS / ev.finished) if ev.finished else 0.0
            out[label] = (w * ev.quits, w * ev.seconds)
        return out

    def played(self, seconds: float) -> None:
        """The session played `seconds` more under the drawn director."""
        if self.portfolio is not None and self.arm is not None:
            self.portfolio.played(self.arm.label, seconds)

    def ended(self, by_player: bool) -> None:
        if self.portfolio is not None and self.arm is not None:
            self.portfolio.ended(self.arm.label, by_player)

    @property
    def drawn(self) -> str:
        """'<share>/<director>' once chosen ('' during the first minute), for evaluation reports."""
        return f"skill{self.bucket + 1}of{CONTEXT_BUCKETS}/{self.arm.label}" if self.arm is not None else ""


def _pooled(shares: list[Portfolio]) -> dict[str, ArmEvidence]:
    """The shares' evidence added up, per candidate label."""
    pooled: dict[str, ArmEvidence] = {}
    for share in shares:
        for label, ev in share.evidence().items():
            pooled[label] = pooled.get(label, ArmEvidence()).plus(ev)
    return pooled
