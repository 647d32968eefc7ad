"""Simulated players: a PlayerModel interface and a population of players who differ and feel.

Each SimPlayer has a latent skill that improves with play, a reaction time, aim noise, and
tolerances for frustration (repeated failure) and boredom (no challenge). Frustration rises with
deaths and heavy damage; boredom rises while the fight is too easy. Both decay over time, make the
player less active as they build (a tell an observer can see), and drive the hazard of deciding to
leave. A player who has decided stops fighting for a while (puts the controller down, wanders,
checks their phone) and then quits, as people do; a rarer quit comes from outside the game with no
tell at all. So the difficulty a player faces changes how long they play: the thing a director
should optimise.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Protocol

from sim.game import DT, PLAYER_MAX_HEALTH, Action, Game

LEAVING_S = (10.0, 40.0)  # how long a player who has decided to leave lingers before quitting


class PlayerModel(Protocol):
    """Anything that can play: observe the game each tick and act (including deciding to quit)."""

    traits: PlayerTraits

    def act(self, game: Game) -> Action: ...


@dataclass(frozen=True)
class Psychology:
    """How a player's frustration and boredom move (the defaults are the `default` population's)."""

    frustration_per_death: float = 1.0
    frustration_per_damage: float = 0.004  # per point of damage taken
    frustration_tau_s: float = 70.0  # it fades with this time constant
    boredom_per_calm_s: float = 1.0 / 120.0  # per second with nothing threatening the player
    calm_after_s: float = 5.0  # seconds without damage before it counts as calm
    boredom_per_easy_kill: float = 0.02
    boredom_drain_per_death: float = 0.05
    boredom_drain_per_damage: float = 0.003
    boredom_tau_s: float = 150.0


@dataclass(frozen=True)
class PlayerTraits:
    skill: float  # 0 (novice) .. 1 (expert): aim and dodging
    reaction_s: float  # seconds before reacting to a threat
    aim_noise: float  # spread added to every shot
    learning_rate: float  # skill gained per minute of play
    frustration_tolerance: float  # frustration at which quitting becomes likely
    boredom_tolerance: float  # boredom at which quitting becomes likely
    archetype: str = "custom"
    psychology: Psychology = Psychology()


@dataclass
class SimPlayer:
    traits: PlayerTraits
    seed: int
    frustration: float = 0.0
    boredom: float = 0.0
    skill_now: float = field(init=False)
    _rng: random.Random = field(init=False)
    _seen_deaths: int = 0
    _seen_damage: float = 0.0
    _seen_kills: int = 0
    _react_timer: float = 0.0
    _strafe: float = 1.0
    _calm_s: float = 0.0
    _leaving_s: float = -1.0  # >= 0 once the player has decided to leave: seconds until they quit

    def __post_init__(self) -> None:
        self.skill_now = self.traits.skill
        self._rng = random.Random(self.seed)

    @property
    def leaving(self) -> bool:
        """True once the player has decided to quit (they linger, not fighting, then quit)."""
        return self._leaving_s >= 0.0

    @property
    def disengagement(self) -> float:
        """0 while engaged; grows toward 1 as frustration or boredom near the player's tolerance."""
        if self._leaving_s >= 0.0:
            return 1.0
        tr = self.traits
        return min(max(self.frustration / tr.frustration_tolerance, self.boredom / tr.boredom_tolerance) ** 2, 1.0)

    def _feel(self, game: Game) -> None:
        s = game.stats
        deaths, damage, kills = (
            s.deaths - self._seen_deaths,
            s.damage_taken - self._seen_damage,
            s.kills - self._seen_kills,
        )
        self._seen_deaths, self._seen_damage, self._seen_kills = s.deaths, s.damage_taken, s.kills
        self._feel_events(deaths, damage, kills)

    def _feel_events(self, deaths: int, damage: float, kills: int) -> None:
        ps = self.traits.psychology
        # Frustration: deaths hurt most, heavy damage some; it fades over about a minute.
        self.frustration += ps.frustration_per_death * deaths + ps.frustration_per_damage * damage
        self.frustration *= math.exp(-DT / ps.frustration_tau_s)
        # Boredom: grows while nothing threatens the player; challenge (damage, deaths) drains it.
        challenged = damage > 0 or deaths > 0
        self._calm_s = 0.0 if challenged else self._calm_s + DT
        calm = self._calm_s > ps.calm_after_s
        easy_kill = ps.boredom_per_easy_kill * kills if calm else 0.0
        self.boredom += DT * ps.boredom_per_calm_s * (1.0 if calm else 0.0) + easy_kill
        left = self.boredom - ps.boredom_drain_per_death * deaths - ps.boredom_drain_per_damage * damage
        self.boredom = max(left, 0.0)
        self.boredom *= math.exp(-DT / ps.boredom_tau_s)
        # Learning: skill grows with play, faster when the fight is close.
        self.skill_now = min(self.skill_now + self.traits.learning_rate * DT / 60.0, 1.0)

    def _quits(self, game: Game) -> bool:
        if self._leaving_s >= 0.0:
            self._leaving_s -= DT
            return self._leaving_s < 0.0
        rng, tr = self._rng, self.traits
        if rng.random() < DT / 7200.0:  # the doorbell: sudden, and nothing in the game foretells it
            return True
        over_f = min(self.frustration / tr.frustration_tolerance - 1.0, 2.0)
        over_b = min(self.boredom / tr.boredom_tolerance - 1.0, 2.0)
        # Hazard per second of deciding to leave: a steep rise toward and past either tolerance.
        hazard = 0.02 * math.exp(6.0 * over_f) + 0.02 * math.exp(6.0 * over_b)
        if rng.random() < hazard * DT * (0.3 if game.player.dead else 1.0):
            self._leaving_s = rng.uniform(*LEAVING_S)
        return False

    def act(self, game: Game) -> Action:
        self._feel(game)
        if self._quits(game):
            return Action(quit=True)
        rng, p = self._rng, game.player
        if p.dead:
            return Action()
        if self._leaving_s >= 0.0:  # decided to leave: stops fighting, drifts now and then
            return Action() if rng.random() < 0.9 else Action(move_x=rng.uniform(-0.3, 0.3))
        idle = self.disengagement
        if rng.random() < 0.7 * idle:  # a disengaging player idles more and more
            return Action()
        target = game.nearest_npc()
        if target is None:
            self._strafe = -self._strafe if rng.random() < 0.01 else self._strafe
            return Action(move_x=0.3 * self._strafe, move_z=0.0)
        dx, dz = target.x - p.x, target.z - p.z
        d = math.hypot(dx, dz) + 1e-9
        ux, uz = dx / d, dz / d
        if rng.random() < 0.02:
            self._strafe = -self._strafe
        # Keep a fighting distance and strafe; better players hold range better.
        radial = 0.0 if 8.0 < d < 13.0 else (1.0 if d >= 13.0 else -1.0)
        s = self.skill_now
        move_x = radial * ux - self._strafe * uz * (0.4 + 0.6 * s)
        move_z = radial * uz + self._strafe * ux * (0.4 + 0.6 * s)
        # Dodging: react to nearby attackers after the reaction time, with skill-dependent success.
        self._react_timer -= DT
        dodge = False
        if d < 14.0 and self._react_timer <= 0.0:
            self._react_timer = self.traits.reaction_s
            dodge = rng.random() < 0.15 + 0.45 * s
        hit = (0.18 + 0.62 * s) * (1.0 - self.traits.aim_noise) * (1.0 - 0.4 * d / 22.0)
        hit *= 1.0 - 0.3 * (p.health < 0.3 * PLAYER_MAX_HEALTH) * (1.0 - s)  # panic aim
        return Action(
            move_x=move_x,
            move_z=move_z,
            aim_at=target.npc_id,
            shoot=True,
            dodge=dodge,
            hit_chance=max(min(hit, 0.95), 0.02),
        )


# -- populations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Archetype:
    name: str
    skill: tuple[float, float]  # mean, sd
    reaction_s: tuple[float, float]
    aim_noise: tuple[float, float]
    learning_rate: tuple[float, float]
    frustration_tolerance: tuple[float, float]
    boredom_tolerance: tuple[float, float]


ARCHETYPES: dict[str, Archetype] = {
    "novice": Archetype("novice", (0.18, 0.08), (0.55, 0.1), (0.25, 0.08), (0.04, 0.02), (2.2, 0.5), (3.0, 0.6)),
    "casual": Archetype("casual", (0.42, 0.1), (0.4, 0.08), (0.15, 0.05), (0.03, 0.015), (3.0, 0.7), (1.6, 0.4)),
    "core": Archetype("core", (0.65, 0.1), (0.3, 0.06), (0.1, 0.04), (0.02, 0.01), (3.6, 0.8), (1.2, 0.3)),
    "expert": Archetype("expert", (0.88, 0.06), (0.2, 0.05), (0.05, 0.03), (0.01, 0.005), (5.0, 0.9), (0.7, 0.2)),
}

DEFAULT_MIX = {"novice": 0.25, "casual": 0.35, "core": 0.25, "expert": 0.15}
# A second population nobody tuned for: skewed to the extremes, with its own seed.
HOLDOUT_MIX = {"novice": 0.4, "casual": 0.1, "core": 0.15, "expert": 0.35}


def sample_traits(arch: Archetype, rng: random.Random) -> PlayerTraits:
    def draw(ms: tuple[float, float], lo: float, hi: float) -> float:
        return min(max(rng.gauss(*ms), lo), hi)

    return PlayerTraits(
        skill=draw(arch.skill, 0.02, 0.98),
        reaction_s=draw(arch.reaction_s, 0.1, 1.0),
        aim_noise=draw(arch.aim_noise, 0.0, 0.6),
        learning_rate=draw(arch.learning_rate, 0.0, 0.2),
        frustration_tolerance=draw(arch.frustration_tolerance, 0.8, 8.0),
        boredom_tolerance=draw(arch.boredom_tolerance, 0.3, 5.0),
        archetype=arch.name,
    )
