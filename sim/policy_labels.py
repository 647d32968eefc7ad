"""Director labels as the simulator's commands take them: 'static:0.4', 'rubber_band', 'learned',
'predictive:nohints', 'predictive:quit_weight=2;band_low=0.1'."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.policies.experiments import split_label, weighted_labels

__all__ = ["PolicyRun", "checked", "parse_mixture", "parse_policy"]


@dataclass
class PolicyRun:
    label: str
    policy: str
    params: dict[str, str]
    hints: bool


def parse_policy(label: str) -> PolicyRun:
    """'static:0.4', 'rubber_band', 'predictive:nohints', 'predictive:quit_weight=2;band_low=0.1' or
    'static:level=0.8;retreat=0.15'."""
    name, params, words = split_label(label)
    if name == "static" and not params and not words:
        params = {"level": "0.5"}
    unknown = [w for w in words if w != "nohints"]
    if unknown:
        raise ValueError(f"policy {label!r}: expected KEY=VALUE or 'nohints', got {unknown[0]!r}")
    return PolicyRun(label, name, params, "nohints" not in words)


def checked(run: PolicyRun) -> PolicyRun:
    """The run, after checking its policy and parameters as the sidecar would (ValueError naming them)."""
    from sidecar.policies.params import POLICY_NAMES, PolicyParamError, parse_params

    if run.policy not in (*POLICY_NAMES, "random_walk"):
        raise ValueError(f"policy {run.label!r}: {run.policy!r} is not one of {', '.join(POLICY_NAMES)}")
    try:
        parse_params(run.policy, run.params)
    except PolicyParamError as exc:
        raise ValueError(f"policy {run.label!r}: parameter {exc}") from None
    return run


def parse_mixture(text: str) -> list[tuple[PolicyRun, float]]:
    """'static:0.5=40,rubber_band=30,learned=30': labels and weights (any positive numbers; normalised)."""
    out = []
    for label, w in weighted_labels(text, f"mixture {text!r}"):
        if not w > 0:
            raise ValueError(f"mixture {text!r}: the weight of {label!r} must be > 0, got {w:g}")
        out.append((checked(parse_policy(label)), w))
    if not out:
        raise ValueError("a mixture needs at least one LABEL=WEIGHT")
    total = sum(w for _, w in out)
    return [(run, w / total) for run, w in out]
