"""A session's difficulty knobs, parsed once from the hello: their ranges, rates and defaults, and the
map between their values and one difficulty level in [0, 1] (0 easiest)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["KnobSet", "KnobSpecLike", "KnobValueLike", "knob_values_at", "values_in_order"]


class KnobSpecLike(Protocol):
    """What a knob declaration carries (the wire's KnobSpec, or any object with these fields)."""

    @property
    def name(self) -> str: ...
    @property
    def min_value(self) -> float: ...
    @property
    def max_value(self) -> float: ...
    @property
    def default_value(self) -> float: ...
    @property
    def max_change_per_second(self) -> float: ...
    @property
    def higher_is_easier(self) -> bool: ...


class KnobValueLike(Protocol):
    """A knob value by name (the wire's KnobValue, in a frame or a guidance)."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> float: ...


def values_in_order(named: Iterable[KnobValueLike], names: Sequence[str], fill: Sequence[float] = ()) -> np.ndarray:
    """Knob values given by name, in `names`' order (the hello's), as float32; a knob not named takes
    `fill`'s value for it (NaN without `fill`)."""
    by_name = {k.name: k.value for k in named}
    if not fill:
        return np.array([by_name.get(n, np.nan) for n in names], np.float32)
    return np.array([by_name.get(n, f) for n, f in zip(names, fill, strict=True)], np.float32)


@dataclass
class KnobSet:
    """The knobs in the hello's order, as float32 arrays (per-tick numpy work) and plain-float lists
    (per-frame work on a handful of knobs is cheaper outside numpy)."""

    names: list[str]
    lo: np.ndarray
    span: np.ndarray
    easier_when_higher: np.ndarray
    hi: np.ndarray
    rate: np.ndarray  # max change per second; 0: no limit
    defaults: np.ndarray

    @classmethod
    def from_specs(cls, specs: Iterable[KnobSpecLike]) -> KnobSet:
        specs = list(specs)
        lo = np.array([k.min_value for k in specs], np.float32)
        span = np.array([max(k.max_value - k.min_value, 1e-9) for k in specs], np.float32)
        return cls(
            [k.name for k in specs],
            lo,
            span,
            np.array([k.higher_is_easier for k in specs], bool),
            np.array([k.max_value for k in specs], np.float32),
            np.array([k.max_change_per_second for k in specs], np.float32),
            np.array([k.default_value for k in specs], np.float32),
        )

    def __post_init__(self) -> None:
        self._lo = self.lo.tolist()
        self._span = self.span.tolist()
        self._flip = self.easier_when_higher.tolist()

    def to_difficulty(self, values: np.ndarray) -> float:
        if len(self.names) == 0:
            return 0.5
        total = 0.0
        for v, lo, span, flip in zip(values.tolist(), self._lo, self._span, self._flip, strict=True):
            x = min(max((v - lo) / span, 0.0), 1.0)
            total += 1.0 - x if flip else x
        return total / len(self.names)

    def to_values(self, difficulty: float | np.ndarray) -> np.ndarray:
        return knob_values_at(self.lo, self.span, self.easier_when_higher, difficulty)

    def midpoints(self) -> np.ndarray:
        """What a knob a frame does not report counts as."""
        return self.lo + 0.5 * self.span


def knob_values_at(
    lo: np.ndarray, span: np.ndarray, easier_when_higher: np.ndarray, difficulty: float | np.ndarray
) -> np.ndarray:
    """Knob values for a difficulty in [0, 1] (per knob, or one for all), elementwise over the knobs given."""
    d = np.where(easier_when_higher, 1.0 - difficulty, difficulty)
    return np.asarray(lo + d * span, np.float32)
