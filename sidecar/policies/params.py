"""Every director policy's parameters, declared once: name, range, meaning.

The hello's `policy_params` (and experiments' arms, `metabrain sim --param`, the simulator) are
parsed here before a session is welcomed: a typo in a name, a word where a number belongs, a NaN or a
value out of range is refused by name, in the same style as the hello's other fields, instead of
reaching the director as a NaN knob. No torch, no numpy: the protocol core imports this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["COMMON_PARAMS", "POLICY_NAMES", "POLICY_PARAMS", "Param", "PolicyParamError", "parse_params"]


@dataclass(frozen=True)
class Param:
    name: str
    lo: float = 0.0
    hi: float = 1.0
    doc: str = ""
    choices: tuple[str, ...] = ()  # a word parameter: one of these (no range)

    def parse(self, text: str) -> float | str:
        if self.choices:
            if text not in self.choices:
                raise PolicyParamError(self.name, f"={text!r} is not one of {', '.join(self.choices)}")
            return text
        try:
            value = float(text)
        except ValueError:
            raise PolicyParamError(self.name, f"={text!r} is not a number") from None
        if not math.isfinite(value):
            raise PolicyParamError(self.name, f"={text!r} must be a finite number")
        if not self.lo <= value <= self.hi:
            raise PolicyParamError(self.name, f"={value:g} is outside [{self.lo:g}, {self.hi:g}]")
        return value


class PolicyParamError(ValueError):
    """A policy parameter that cannot be used; `name` is the parameter, `message` says why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}{message}")
        self.name = name
        self.message = message


_LEVEL = "a difficulty in [0, 1] (0 easiest)"
# Accepted by every policy.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("npc_hints", doc="'off' turns the per-NPC tactic hints off for this session", choices=("on", "off")),
    Param(
        "retreat",
        doc="an engagement drop (0-1) at which a move harder than the designer's level is wholly taken back for "
        "a player who disengages under pressure; 0: never (policies/retreat.py)",
    ),
)
# The predictive choice's parameters; `guarded` hands them to the predictive policy it consults.
_BAND_PARAMS = (
    Param("band_low", doc="lower edge of the wanted p_fail band"),
    Param("band_high", doc="upper edge of the wanted p_fail band"),
    Param("quit_weight", 0.0, 100.0, "weight of p_quit against the band"),
)
POLICY_PARAMS: dict[str, tuple[Param, ...]] = {
    "static": (
        Param("level", doc=f"the fixed level, {_LEVEL}; default: the designer's defaults"),
        Param("offset", -1.0, 1.0, "added to the level (e.g. -0.1: a little easier than the designer's)"),
    ),
    "rubber_band": (
        Param("start", doc=f"the level to start from, {_LEVEL}; default: the designer's"),
        Param("offset", -1.0, 1.0, "added to the start (e.g. 0.2: from a little harder than the designer's)"),
        Param("death_step", 0.0, 1.0, "level lost per death"),
        Param("kill_step", 0.0, 1.0, "level gained per kill"),
        Param("calm_rate", 0.0, 1.0, "level gained per second without damage"),
        Param("min", doc="lowest level"),
        Param("max", doc="highest level"),
        Param("reach", doc="the farthest the level moves from where it started (default: anywhere in [min, max])"),
    ),
    "intensity": (
        Param("peak", 0.0, 100.0, "intensity at which the build-up turns to sustain"),
        Param("sustain_s", 0.0, 3600.0, "seconds of sustain"),
        Param("relax_s", 0.0, 3600.0, "seconds of relax"),
        Param("fade_to", 0.0, 100.0, "intensity at which the fade turns to relax"),
        Param("decay_per_s", 0.0, 100.0, "intensity lost per calm second"),
        Param("damage_gain", 0.0, 100.0, "intensity per unit of damage taken (in max-health units)"),
        Param("kill_gain", 0.0, 100.0, "intensity per kill"),
        Param("high", doc="level during build-up and sustain"),
        Param("low", doc="level during fade and relax"),
    ),
    "predictive": (
        *_BAND_PARAMS,
        Param("smoothing_s", 0.0, 600.0, "seconds to approach the chosen level"),
        Param("start", doc=f"the level to start from, {_LEVEL}"),
    ),
    "guarded": (
        Param("start", doc=f"the level to start from, {_LEVEL}; default: the designer's"),
        Param("base_down", 0.0, 1.0, "how far below the designer's level the model may ease without evidence"),
        Param("reach", 0.0, 1.0, "how much farther the level may move with full evidence"),
        Param("evidence_tau_s", 0.0, 3600.0, "seconds the evidence of frustration or boredom averages over"),
        Param("full_evidence", 0.0, 1.0, "evidence (an engagement drop, 0-1) that opens the whole reach"),
        Param("smoothing_s", 0.0, 600.0, "seconds to approach the chosen level"),
        *_BAND_PARAMS,
    ),
    "portfolio": (),
    "contextual": (),
    "learned": (
        Param("start", doc=f"the level to start from, {_LEVEL}; default: the designer's"),
        Param("confidence", 0.0, 10.0, "standard deviations of the value heads' spread a gain must clear"),
        Param("max_offset", 0.0, 1.0, "the farthest the level may move from the designer's"),
        Param("min_gain_s", 0.0, 600.0, "expected seconds of play a move must gain (on the lower bound)"),
        Param("smoothing_s", 0.0, 600.0, "seconds to approach the chosen level"),
        Param("calibrate", 0.0, 1.0, "1: shift the level axis by this player's deaths against the model's"),
    ),
    "perturbed": (
        Param("scale", 0.0, 0.5, "the offset step: offsets are -2, -1, 0, 1, 2 steps (probabilities logged)"),
        Param("period_s", 1.0, 3600.0, "seconds between draws of the offset"),
    ),
}
POLICY_NAMES: tuple[str, ...] = tuple(POLICY_PARAMS)
# Pairs that must be ordered (low <= high) when both are given.
_ORDERED: dict[str, tuple[tuple[str, str], ...]] = {
    "rubber_band": (("min", "max"),),
    "intensity": (("low", "high"),),
    "predictive": (("band_low", "band_high"),),
    "guarded": (("band_low", "band_high"),),
}


def parse_params(policy: str, params: Mapping[str, str]) -> dict[str, float | str]:
    """The policy's parameters, parsed and range-checked; raises PolicyParamError naming the first bad one."""
    declared = {p.name: p for p in (*POLICY_PARAMS.get(policy, ()), *COMMON_PARAMS)}
    out: dict[str, float | str] = {}
    for key in sorted(params):
        spec = declared.get(key)
        if spec is None:
            names = ", ".join(sorted(declared)) or "none"
            raise PolicyParamError(key, f" is not a parameter of the {policy} policy (it takes: {names})")
        out[key] = spec.parse(params[key])
    for low, high in _ORDERED.get(policy, ()):
        lo, hi = out.get(low), out.get(high)
        if isinstance(lo, float) and isinstance(hi, float) and lo > hi:
            raise PolicyParamError(low, f"={lo:g} exceeds {high}={hi:g}")
    return out
