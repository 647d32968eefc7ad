"""A director evaluation (`metabrain evaluate-directors`, sim/director_eval.py) as a markdown table:
what the command prints and what the model card includes."""

from __future__ import annotations

from typing import Any

__all__ = ["DESIGNER_DEFAULT", "markdown"]

DESIGNER_DEFAULT = "static:0.5"  # the simulated arena's designer defaults sit at level 0.5 of every knob


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Population `{report['population']}`, {report['players']} players, seed {report['seed']}, sessions capped "
        f"at {report['max_seconds']:.0f} s.",
        "",
        "| policy | mean length s | median s | quit share | quit rate min 1 / 2 / 5 | in band | win-rate spread "
        "| mean difficulty | deaths/min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in report["table"]:
        q = t["quit_rate_by_minute"]
        m1, m2, m5 = (f"{q[m]:.2f}" if len(q) > m else "–" for m in (0, 1, 4))  # short caps have fewer minutes
        lines.append(
            f"| {t['policy']} | {t['mean_length_s']:.0f} | {t['median_length_s']:.0f} | {t['quit_share']:.2f} | "
            f"{m1} / {m2} / {m5} | {t['in_band_share']:.2f} | "
            f"{t['win_rate_spread']:.2f} | {t['mean_difficulty']:.2f} | {t['deaths_per_min']:.2f} |"
        )
    for t in report["table"]:
        if t.get("drawn"):
            given = ", ".join(
                f"{d} {v['share']:.0%} ({v['mean_length_s']:.0f} s)" for d, v in sorted(t["drawn"].items())
            )
            lines += ["", f"{t['policy']} gave its sessions: {given}."]
    c = _comparison(report["comparison"])
    if c:
        name = c["candidate"]
        lines += [
            "",
            f"Best static: {c['best_static']}. {name} vs best static: {c['vs_best_static']:+.1%}"
            + (f"; vs rubber_band: {c['vs_rubber_band']:+.1%}" if "vs_rubber_band" in c else "")
            + (f"; NPC hints on vs off: {c['hints_on_vs_off']:+.1%}" if "hints_on_vs_off" in c else "")
            + (
                f"; worst skill decile against the designer's default ({DESIGNER_DEFAULT}): "
                f"{c['worst_decile_vs_designer_default']:+.1%}"
                if "worst_decile_vs_designer_default" in c
                else ""
            )
            + _decile_interval(c)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _decile_interval(c: dict[str, Any]) -> str:
    """The worst decile's paired 95% interval, and which deciles are below the designer's level beyond chance."""
    if "worst_decile_ci95" not in c:
        return ""
    lo, hi = c["worst_decile_ci95"]
    below = c["deciles_credibly_below_designer_default"]
    where = f"deciles {', '.join(map(str, below))}" if below else "none"
    return (
        f" (decile {c['worst_decile']}, 95% interval {lo - 1:+.1%} to {hi - 1:+.1%}; "
        f"below the designer's level beyond chance: {where})"
    )


def _comparison(c: dict[str, Any]) -> dict[str, Any]:
    """The comparison block; reports written before it named its candidate (the model card's JSON from
    2026-11-29) say `predictive_vs_best_static` and `predictive_vs_rubber_band`."""
    if not c or "candidate" in c:
        return c
    out: dict[str, Any] = {"candidate": "predictive", "best_static": c.get("best_static", "")}
    for key, value in c.items():
        if key.startswith("predictive_vs_"):
            out[key.removeprefix("predictive_")] = value
        elif key != "best_static":
            out[key] = value
    return out
