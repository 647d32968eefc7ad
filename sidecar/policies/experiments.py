"""Live experiments: players split between directors by a keyed hash, sticky across sessions and sidecars.

    metabrain serve --experiment "retention:static:0.4=50,learned=50"
    metabrain serve --experiments experiments.toml

An experiment names its arms (a director with its parameters, and a weight). A session's arm is drawn
from HMAC-SHA256(secret, experiment name + the player's pseudonymous id): the same player lands in the
same arm in every session and on every sidecar that shares the secret (kept in --state-dir, as the
resume secret is). A hello may ask for an arm by name (`Hello.experiment_arm`) only where the server
allows it (--experiment-override: QA, playtests). The arm goes into the welcome, the recording's
header (with its probability, for off-policy evaluation), the logs, a metrics label and the dashboard.

A file holds several experiments, each for one game or for all ([TOML] or YAML):

    [[experiment]]
    name = "retention"
    game_id = "com.studio.arena"        # optional: this game only
    arms = { "static:0.4" = 50, "learned" = 50 }
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidecar.policies.params import POLICY_NAMES, PolicyParamError, parse_params

__all__ = [
    "Arm",
    "Experiment",
    "ExperimentSet",
    "load_experiments",
    "normal_label",
    "parse_arm",
    "parse_experiment",
    "split_label",
    "weighted_labels",
]


@dataclass(frozen=True)
class Arm:
    label: str  # as given: "static:0.4", "learned", "predictive:quit_weight=2;band_low=0.1"
    policy: str
    params: Mapping[str, str]
    weight: float  # the probability of the arm (weights normalised)


@dataclass(frozen=True)
class Experiment:
    name: str
    arms: tuple[Arm, ...]
    game_id: str = ""  # "": every game

    def assign(self, player_key: str, secret: bytes) -> Arm:
        """The player's arm: a uniform draw from the keyed hash, against the cumulative weights."""
        digest = hmac.new(secret, f"{self.name}\x00{player_key}".encode(), hashlib.sha256).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        edge = 0.0
        for arm in self.arms:
            edge += arm.weight
            if u < edge:
                return arm
        return self.arms[-1]

    def arm(self, label: str) -> Arm | None:
        return next((a for a in self.arms if a.label == label), None)


@dataclass
class ExperimentSet:
    experiments: tuple[Experiment, ...] = ()
    secret: bytes = b""
    allow_override: bool = False  # hellos may ask for an arm (Hello.experiment_arm)
    _by_game: dict[str, Experiment | None] = field(default_factory=dict)

    def for_game(self, game_id: str) -> Experiment | None:
        """The experiment a game's sessions take part in: the first for that game, else the first for all."""
        if game_id not in self._by_game:
            exact = next((e for e in self.experiments if e.game_id == game_id), None)
            self._by_game[game_id] = exact or next((e for e in self.experiments if not e.game_id), None)
        return self._by_game[game_id]


def split_label(label: str) -> tuple[str, dict[str, str], list[str]]:
    """A director label's name, KEY=VALUE parameters and bare words, in the one grammar every tool
    writes: 'name', 'name:KEY=VALUE;KEY=VALUE' (a key given twice: the last), 'static:0.4' (a fixed level,
    {'level': '0.4'}). Bare words ('nohints') come back apart, for the caller to accept or refuse."""
    name, _, arg = label.partition(":")
    if name == "static" and arg and "=" not in arg:
        return name, {"level": arg}, []
    params: dict[str, str] = {}
    words: list[str] = []
    for part in filter(None, arg.split(";")):
        key, sep, value = part.partition("=")
        if sep:
            params[key] = value
        else:
            words.append(part)
    return name, params, words


def parse_arm(label: str, weight: float) -> Arm:
    """'static:0.4', 'learned', 'predictive:quit_weight=2;band_low=0.1' with its weight; checked."""
    name, params, words = split_label(label)
    if words:
        raise ValueError(f"arm {label!r}: expected KEY=VALUE parameters, got {words[0]!r}")
    if name not in POLICY_NAMES:
        raise ValueError(f"arm {label!r}: {name!r} is not a director ({', '.join(POLICY_NAMES)})")
    try:
        parse_params(name, params)
    except PolicyParamError as exc:
        raise ValueError(f"arm {label!r}: parameter {exc}") from None
    if not weight > 0:
        raise ValueError(f"arm {label!r}: its weight must be > 0, got {weight:g}")
    return Arm(label, name, params, weight)


def normal_label(label: str) -> str:
    """One spelling per director (logs written by hand or by other tools spell an arm many ways):
    'static:0.50', 'static:.5' and 'static:level=0.5' are 'static:0.5'; a director's parameters in one
    order, numbers alike ('predictive:band_high=.40;band_low=0.1' is 'predictive:band_high=0.4;band_low=0.1')."""
    if ":" not in label:
        return label
    name, params, words = split_label(label)
    if name == "static" and list(params) == ["level"] and not words:
        return f"static:{_number(params['level'])}"
    return f"{name}:" + ";".join(sorted([f"{k}={_number(v)}" for k, v in params.items()] + words))


def _number(text: str) -> str:
    """A number in one spelling (to 3 decimals); anything else as it is."""
    try:
        return f"{round(float(text), 3):g}"
    except ValueError:
        return text


def _experiment(name: str, arms: Sequence[tuple[str, float]], game_id: str = "") -> Experiment:
    if not name:
        raise ValueError("an experiment needs a name")
    if len(arms) < 2:
        raise ValueError(f"experiment {name!r} needs at least two arms")
    labels = [label for label, _ in arms]
    if len(set(labels)) != len(labels):
        raise ValueError(f"experiment {name!r} names an arm twice")
    parsed = [parse_arm(label, w) for label, w in arms]
    total = sum(a.weight for a in parsed)
    return Experiment(name, tuple(Arm(a.label, a.policy, a.params, a.weight / total) for a in parsed), game_id)


def parse_experiment(text: str) -> Experiment:
    """'NAME:ARM=WEIGHT,ARM=WEIGHT', e.g. 'retention:static:0.4=50,learned=50'."""
    name, sep, rest = text.partition(":")
    if not sep or not rest:
        raise ValueError(
            f"--experiment {text!r}: expected NAME:ARM=WEIGHT,ARM=WEIGHT (e.g. ab:static:0.4=50,learned=50)"
        )
    return _experiment(name, weighted_labels(rest, f"--experiment {text!r}", "ARM"))


def weighted_labels(items: str, context: str, key: str = "LABEL") -> list[tuple[str, float]]:
    """'static:0.4=50,learned=50' -> [('static:0.4', 50.0), ('learned', 50.0)] (a label may hold ':' and
    '='; its weight follows the last '='). context starts each error, e.g. "--experiment 'ab:...'"."""
    out = []
    for part in filter(None, (p.strip() for p in items.split(","))):
        label, eq, weight = part.rpartition("=")
        if not eq or not label:
            raise ValueError(f"{context}: expected {key}=WEIGHT, got {part!r}")
        try:
            out.append((label, float(weight)))
        except ValueError:
            raise ValueError(f"{context}: the weight of {label!r} is not a number: {weight!r}") from None
    return out


def load_experiments(path: str | Path) -> tuple[Experiment, ...]:
    """Experiments from a TOML or YAML file (see the module's docstring)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"experiments file {p} does not exist")
    text = p.read_text()
    data: Any
    if p.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"experiments file {p}: {exc}") from None
    entries = data.get("experiment", data.get("experiments")) if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"experiments file {p}: expected a list of [[experiment]] entries")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("arms"), dict):
            raise ValueError(f"experiments file {p}: experiment {i + 1} needs a name and a table of arms")
        arms = [(str(label), float(w)) for label, w in e["arms"].items()]
        out.append(_experiment(str(e.get("name", "")), arms, str(e.get("game_id", ""))))
    return tuple(out)
