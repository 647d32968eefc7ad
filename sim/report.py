"""Tables and pictures of simulated play (the demo and the director evaluation share these)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from sidecar.policies.difficulty import DEFAULT_BAND
from sim.client import LiveSummary

if TYPE_CHECKING:
    from sim.offline import SessionSummary


def session_table(rows: Sequence[LiveSummary]) -> str:
    lo, hi = DEFAULT_BAND
    out = [
        f"{'player':>6} {'type':>7} {'skill':>5} {'time s':>7} {'deaths':>6} {'kills':>5} "
        f"{'difficulty mean [min-max]':>26} {'in band':>7} {'quit':>4} {'guidance':>8} {'p99 ms':>6}"
    ]
    for r in rows:
        diffs = [d for _, d, _ in r.curve] or [math.nan]
        known = [p for _, _, p in r.curve if not math.isnan(p)]  # seconds with a prediction yet
        in_band = f"{sum(lo <= p <= hi for p in known) / len(known):.0%}" if known else "-"
        lat = sorted(r.latencies_ms)
        p99 = lat[int(0.99 * (len(lat) - 1))] if lat else float("nan")
        out.append(
            f"{r.index:>6} {r.archetype:>7} {r.skill:>5.2f} {r.seconds:>7.1f} {r.deaths:>6} {r.kills:>5} "
            f"{sum(diffs) / len(diffs):>10.2f} [{min(diffs):.2f}-{max(diffs):.2f}]{'':>7} {in_band:>7} "
            f"{'yes' if r.quit else 'no':>4} {r.guidance:>4}/{r.frames_sent:<4}{p99:>6.1f}"
        )
    return "\n".join(out)


T = TypeVar("T", LiveSummary, "SessionSummary")


def _by_policy(rows: Sequence[T]) -> dict[str, list[T]]:
    out: dict[str, list[T]] = {}
    for r in rows:
        out.setdefault(r.policy or "(sidecar's default)", []).append(r)
    return out


def live_summary(rows: Sequence[LiveSummary]) -> str:
    """Per policy: sessions, session length, quits, deaths, and what the sidecar answered."""
    lines = [
        f"{'policy':14} {'sessions':>8} {'mean s':>7} {'median s':>8} {'quits':>5} {'deaths':>6} "
        f"{'frames sent':>11} {'guidance':>8} {'superseded':>10} {'unanswered':>10} {'errors':>6}"
    ]
    for policy, g in _by_policy(rows).items():
        lengths = sorted(r.seconds for r in g)
        sent, guided, sup = sum(r.frames_sent for r in g), sum(r.guidance for r in g), sum(r.superseded for r in g)
        lines.append(
            f"{policy:14} {len(g):>8} {sum(lengths) / len(lengths):>7.0f} {lengths[len(lengths) // 2]:>8.0f} "
            f"{sum(r.quit for r in g):>5} {sum(r.deaths for r in g):>6} {sent:>11} {guided:>8} {sup:>10} "
            f"{sent - guided - sup:>10} {sum(r.errors for r in g):>6}"
        )
    lines.append(
        "superseded: a newer frame of the session overtook it before the model ran (latest wins); "
        "unanswered: sent but neither answered nor superseded"
    )
    return "\n".join(lines)


def offline_summary(rows: Sequence[SessionSummary], cap_s: float) -> str:
    """Per policy: sessions, mean and median length, quits, deaths, mean difficulty (offline runs)."""
    lines = [
        f"{'policy':18} {'sessions':>8} {'mean s':>7} {'median s':>8} {'quits':>5} {'capped':>6} "
        f"{'deaths/min':>10} {'mean difficulty':>15}"
    ]
    for policy, g in _by_policy(rows).items():
        lengths = sorted(r.seconds for r in g)
        minutes = max(sum(lengths) / 60, 1e-9)
        lines.append(
            f"{policy:18} {len(g):>8} {sum(lengths) / len(lengths):>7.0f} {lengths[len(lengths) // 2]:>8.0f} "
            f"{sum(r.quit for r in g):>5} {sum(not r.quit and r.seconds >= cap_s for r in g):>6} "
            f"{sum(r.deaths for r in g) / minutes:>10.2f} {sum(r.difficulty_mean for r in g) / len(g):>15.2f}"
        )
    lines.append(f"sessions are capped at {cap_s:g} game seconds (--seconds); a capped session did not quit")
    return "\n".join(lines)


def curves_png(rows: Sequence[LiveSummary], path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    lo, hi = DEFAULT_BAND
    arms = sorted({r.arm for r in rows if r.arm})
    colors = {a: plt.get_cmap("tab10")(i) for i, a in enumerate(arms)}  # an experiment: a colour per arm
    labelled: set[str] = set()
    for r in rows:
        if not r.curve:
            continue
        t = [c[0] for c in r.curve]
        if arms:
            label = r.arm if r.arm not in labelled else None
            labelled.add(r.arm)
            style = {"color": colors.get(r.arm, "grey"), "alpha": 0.55, "lw": 1.0}
        else:
            label = f"#{r.index} {r.archetype} (skill {r.skill:.2f}){' quit' if r.quit else ''}"
            style = {}
        ax1.plot(t, [c[1] for c in r.curve], label=label, **style)
        ax2.plot(t, [c[2] for c in r.curve], **style)
    ax1.set_ylabel("difficulty (0 easiest)")
    ax1.set_ylim(-0.02, 1.02)
    ax1.legend(fontsize=7, ncol=2, loc="upper left")
    ax2.axhspan(lo, hi, color="green", alpha=0.12, label="target band")
    ax2.set_ylabel("predicted p_fail (10 s)")
    ax2.set_xlabel("game time (s)")
    ax2.set_ylim(0, 1)
    ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
