"""A director evaluation (`metabrain evaluate-directors`, sim/director_eval.py) as a markdown table:
what the command prints and what the model card includes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["DESIGNER_DEFAULT", "figure", "figure_name", "file_part", "markdown"]

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
            + (f"; NPC hints on vs off{_hints_of(c)}: {c['hints_on_vs_off']:+.1%}" if "hints_on_vs_off" in c else "")
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


def _hints_of(c: dict[str, Any]) -> str:
    """Whose hints the on-against-off figure is, where not the candidate's."""
    return f" ({c['hints_of']})" if c.get("hints_of") else ""


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


def file_part(population: str) -> str:
    """A population as part of a file name ('path/to/players.py:Factory' -> 'players.py-Factory')."""
    name = population.rsplit("/", 1)[-1]
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in name) or "population"


def figure_name(report: dict[str, Any]) -> str:
    """The file name of a report's figure (`directors_<population>.png`)."""
    return f"directors_{file_part(str(report['population']))}.png"


def figure(report: dict[str, Any], path: str | Path) -> Path:
    """The report's directors side by side, drawn from the report alone (so a figure is never older than
    its table): the share of sessions still going at each minute (from the quit rate by minute; the cap
    ends the rest), the mean session by skill decile, and the difficulty each decile was given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (still, length, level) = plt.subplots(1, 3, figsize=(15, 4.6))
    deciles = list(range(1, 11))
    for t in report["table"]:
        going, alive = [1.0], 1.0
        for q in t["quit_rate_by_minute"]:
            alive *= 1.0 - q
            going.append(alive)
        still.plot(range(len(going)), going, label=t["policy"])
        if "length_by_skill_decile" in t:  # reports before 2026-12-01 lack it
            length.plot(deciles, [v / 60 for v in t["length_by_skill_decile"]], marker="o", ms=3)
        else:
            length.plot([], [])  # keeps each director's colour the same in every panel
        level.plot(deciles, t["difficulty_by_skill_decile"], marker="o", ms=3)
    still.set(xlabel="minute", ylabel="share of sessions still playing", ylim=(0, 1.02))
    still.legend(fontsize=8)
    length.set(xlabel="skill decile (1: least skilled)", ylabel="mean session (minutes)", xticks=deciles)
    level.set(xlabel="skill decile (1: least skilled)", ylabel="mean difficulty given", ylim=(0, 1), xticks=deciles)
    fig.suptitle(f"Directors on population {report['population']}, {report['players']} players")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
