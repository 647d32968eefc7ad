"""Populations whose psychology differs from the default one: what makes them quit, what they want from
difficulty, how they change within a session. None of them is used for training or tuning: they are
the players a director has not seen (`metabrain evaluate-directors --population tilt`).

- `tilt`: players who tilt. A death soon after another hurts far more than the first, frustration
  lingers, and a frustrated player aims worse, so one bad minute spirals. Patient with calm fights.
- `thrill`: thrill seekers. Calm bores them within seconds, a death is exciting rather than
  frustrating; they want to be pushed.
- `learners`: fast learners who tire of a fight they have outgrown. Skill climbs quickly through the
  session, and the better they get the faster an easy fight bores them.
- `mixed`: a third of each, so a director must tell them apart player by player.
- `fragile`: mostly new players whom damage hurts and who stay hurt; calm barely bores them.
- `veterans`: mostly experienced players whom easy kills and calm bore fast; a death stings little.
  (These two were written after the director was built, to test it: docs/director-eval-2026-12-01.md.)

And one for training, not evaluation: `varied`, the default archetypes with every psychology
coefficient of the default model drawn from a wide range (domain randomisation). Its mechanisms are
the default population's; the tilt spiral, the thrill of dying and outgrowing a fight are not in it.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sim.game import DT, Game
from sim.players import (
    ARCHETYPES,
    DEFAULT_MIX,
    HOLDOUT_MIX,
    PlayerModel,
    PlayerTraits,
    Psychology,
    SimPlayer,
    sample_traits,
)

__all__ = [
    "ALL_POPULATIONS",
    "EVALUATION_POPULATIONS",
    "NAMED_POPULATIONS",
    "FastLearner",
    "Population",
    "PopulationSpec",
    "ThrillSeeker",
    "TiltPlayer",
    "load_population",
    "make_population_player",
]

EVALUATION_POPULATIONS = ("tilt", "thrill", "learners", "mixed", "fragile", "veterans")
# What a change to a director is checked on (`evaluate-directors --populations all`): the populations the
# model was trained and checked on, and every one with other psychology.
ALL_POPULATIONS = ("default", "holdout", *EVALUATION_POPULATIONS)


class TiltPlayer(SimPlayer):
    """Deaths within TILT_WINDOW_S of the previous one count TILT_FACTOR times; frustration fades slowly
    and spoils the aim."""

    TILT_WINDOW_S = 40.0
    TILT_FACTOR = 2.5

    def __post_init__(self) -> None:
        super().__post_init__()
        self._t = 0.0
        self._last_death_t = -1e9

    def _feel_events(self, deaths: int, damage: float, kills: int) -> None:
        self._t += DT
        tilted = deaths and self._t - self._last_death_t < self.TILT_WINDOW_S
        if deaths:
            self._last_death_t = self._t
        super()._feel_events(deaths, damage, kills)
        if tilted:  # a death soon after another: TILT_FACTOR times the frustration
            self.frustration += (self.TILT_FACTOR - 1.0) * self.traits.psychology.frustration_per_death * deaths

    def act(self, game: Game):  # type: ignore[no-untyped-def]
        action = super().act(game)
        tilt = min(self.frustration / self.traits.frustration_tolerance, 1.5)
        if action.hit_chance > 0 and tilt > 0.5:
            action.hit_chance = max(action.hit_chance * (1.0 - 0.35 * tilt), 0.02)
        return action


class ThrillSeeker(SimPlayer):
    """Bored quickly when nothing happens; dying drains boredom more than it frustrates."""


class FastLearner(SimPlayer):
    """Learns fast; the better they get, the faster a fight they have outgrown bores them."""

    def _feel_events(self, deaths: int, damage: float, kills: int) -> None:
        before = self.boredom
        super()._feel_events(deaths, damage, kills)
        grown = self.boredom - before
        if grown > 0:  # boredom grows faster the more skill they have gained since they started
            gained = max(self.skill_now - self.traits.skill, 0.0)
            self.boredom = before + grown * (1.0 + 4.0 * gained)


_TILT_PSYCHOLOGY = Psychology(frustration_tau_s=140.0)
_THRILL_PSYCHOLOGY = Psychology(
    frustration_per_death=0.45,
    boredom_per_calm_s=2.5 / 120.0,
    calm_after_s=3.0,
    boredom_per_easy_kill=0.05,
    boredom_drain_per_death=0.35,
    boredom_drain_per_damage=0.008,
)
_LEARNER_MIX = {"novice": 0.45, "casual": 0.4, "core": 0.15}
_FRAGILE_MIX = {"novice": 0.5, "casual": 0.4, "core": 0.1}
_FRAGILE_PSYCHOLOGY = Psychology(
    frustration_per_death=1.3,
    frustration_per_damage=0.012,
    frustration_tau_s=120.0,
    boredom_per_calm_s=0.4 / 120.0,
    boredom_per_easy_kill=0.01,
)
_VETERAN_MIX = {"casual": 0.1, "core": 0.4, "expert": 0.5}
_VETERAN_PSYCHOLOGY = Psychology(
    frustration_per_death=0.6,
    boredom_per_calm_s=1.8 / 120.0,
    boredom_per_easy_kill=0.07,
    calm_after_s=4.0,
    boredom_drain_per_damage=0.006,
)


def _tilt(rng: random.Random, seed: int) -> PlayerModel:
    t = _sample(DEFAULT_MIX, rng)
    t = replace(
        t, boredom_tolerance=t.boredom_tolerance * 1.6, psychology=_TILT_PSYCHOLOGY, archetype=f"tilt:{t.archetype}"
    )
    return TiltPlayer(t, seed)


def _thrill(rng: random.Random, seed: int) -> PlayerModel:
    t = _sample(DEFAULT_MIX, rng)
    t = replace(
        t,
        frustration_tolerance=t.frustration_tolerance * 1.3,
        psychology=_THRILL_PSYCHOLOGY,
        archetype=f"thrill:{t.archetype}",
    )
    return ThrillSeeker(t, seed)


def _learner(rng: random.Random, seed: int) -> PlayerModel:
    t = _sample(_LEARNER_MIX, rng)
    t = replace(t, learning_rate=t.learning_rate * 6.0, archetype=f"learner:{t.archetype}")
    return FastLearner(t, seed)


def _plain(mix: dict[str, float], psychology: Psychology, name: str) -> Callable[[random.Random, int], PlayerModel]:
    """A population of plain simulated players: archetypes drawn from `mix`, every one with `psychology`."""

    def make(rng: random.Random, seed: int) -> PlayerModel:
        t = _sample(mix, random.Random(seed))  # the player's own stream: the population's only deals seeds
        return SimPlayer(replace(t, psychology=psychology, archetype=f"{name}:{t.archetype}"), seed)

    return make


_fragile = _plain(_FRAGILE_MIX, _FRAGILE_PSYCHOLOGY, "fragile")
_veteran = _plain(_VETERAN_MIX, _VETERAN_PSYCHOLOGY, "veteran")


def _varied(rng: random.Random, seed: int) -> PlayerModel:
    """Training only: the default model's coefficients, each drawn over a wide range."""
    t = _sample(DEFAULT_MIX, rng)

    def scale(lo: float, hi: float) -> float:  # log-uniform
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))

    base = Psychology()
    psych = Psychology(
        frustration_per_death=base.frustration_per_death * scale(0.5, 2.0),
        frustration_per_damage=base.frustration_per_damage * scale(0.5, 2.0),
        frustration_tau_s=base.frustration_tau_s * scale(0.6, 2.0),
        boredom_per_calm_s=base.boredom_per_calm_s * scale(0.5, 2.5),
        calm_after_s=rng.uniform(3.0, 8.0),
        boredom_per_easy_kill=base.boredom_per_easy_kill * scale(0.5, 2.5),
        boredom_drain_per_death=base.boredom_drain_per_death * scale(0.5, 5.0),
        boredom_drain_per_damage=base.boredom_drain_per_damage * scale(0.5, 2.0),
        boredom_tau_s=base.boredom_tau_s * scale(0.6, 1.6),
    )
    t = replace(t, learning_rate=t.learning_rate * scale(0.5, 3.0), psychology=psych, archetype=f"varied:{t.archetype}")
    return SimPlayer(t, seed)


_MAKERS = {
    "tilt": _tilt,
    "thrill": _thrill,
    "learners": _learner,
    "fragile": _fragile,
    "veterans": _veteran,
    "varied": _varied,
}


def _sample(mix: dict[str, float], rng: random.Random) -> PlayerTraits:
    names = list(mix)
    return sample_traits(ARCHETYPES[rng.choices(names, [mix[k] for k in names])[0]], rng)


def make_population_player(name: str, rng: random.Random) -> PlayerModel:
    """The next player of a named population, drawn from `rng` (its seed drawn first, as Population does)."""
    seed = rng.randrange(2**31)
    if name == "mixed":
        name = rng.choice(("tilt", "thrill", "learners"))
    return _MAKERS[name](rng, seed)


# Populations with their own psychology (sim/populations.py): six for evaluation, one for training.
NAMED_POPULATIONS = (*EVALUATION_POPULATIONS, "varied")


@dataclass(frozen=True)
class PopulationSpec:
    mix: dict[str, float]
    seed: int = 0
    named: str = ""  # one of NAMED_POPULATIONS: its own players instead of the archetype mix

    @classmethod
    def parse(cls, text: str, seed: int = 0) -> PopulationSpec:
        """'default', 'holdout', a named population (NAMED_POPULATIONS) or 'novice=0.5,expert=0.5'."""
        if text == "default":
            return cls(dict(DEFAULT_MIX), seed)
        if text == "holdout":
            return cls(dict(HOLDOUT_MIX), seed)
        if text in NAMED_POPULATIONS:
            return cls({}, seed, text)
        mix: dict[str, float] = {}
        for part in text.split(","):
            name, _, weight = part.partition("=")
            name = name.strip()
            if name not in ARCHETYPES:
                raise ValueError(
                    f"population {text!r}: {name!r} is not a population or an archetype; populations: default, "
                    f"holdout, {', '.join(NAMED_POPULATIONS)}; archetypes (mix them as novice=1,expert=2): "
                    f"{', '.join(ARCHETYPES)}"
                )
            try:
                mix[name] = float(weight or 1.0)
            except ValueError as exc:
                raise ValueError(f"population weight for {name!r} is not a number: {weight!r}") from exc
        return cls(mix, seed)


class Population:
    """Makes players: from a spec of archetypes, or from any factory `path.py:Factory`."""

    def __init__(self, spec: PopulationSpec | None = None, factory: object | None = None) -> None:
        self.spec = spec or PopulationSpec(dict(DEFAULT_MIX))
        self.factory = factory

    def players(self, n: int) -> list[PlayerModel]:
        rng = random.Random(self.spec.seed)
        out: list[PlayerModel] = []
        names = list(self.spec.mix)
        weights = [self.spec.mix[k] for k in names]
        if self.spec.named:
            return [make_population_player(self.spec.named, rng) for _ in range(n)]
        for i in range(n):
            seed = rng.randrange(2**31)
            if self.factory is not None:
                out.append(self.factory(i, seed))  # type: ignore[operator]
                continue
            arch = ARCHETYPES[rng.choices(names, weights)[0]]
            out.append(SimPlayer(sample_traits(arch, rng), seed))
        return out


def load_population(text: str, seed: int = 0) -> Population:
    """'default', 'holdout', 'novice=0.5,expert=0.5', or 'path/to/file.py:Factory'.

    A factory is called as Factory(index, seed) and returns a PlayerModel.
    """
    if ".py:" in text:
        path, _, attr = text.rpartition(":")
        file = Path(path)
        if not file.exists():
            raise ValueError(f"population file {file} does not exist")
        spec = importlib.util.spec_from_file_location(f"metabrain_population_{file.stem}", file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        if not hasattr(module, attr):
            raise ValueError(f"population file {file} has no {attr!r}")
        return Population(PopulationSpec({}, seed), getattr(module, attr))
    return Population(PopulationSpec.parse(text, seed))
