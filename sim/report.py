"""Tables and pictures of simulated play (the demo and the director evaluation share these)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from sidecar.policies.director import DEFAULT_BAND
from sim.client import LiveSummary


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


def curves_png(rows: Sequence[LiveSummary], path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    lo, hi = DEFAULT_BAND
    for r in rows:
        if not r.curve:
            continue
        t = [c[0] for c in r.curve]
        label = f"#{r.index} {r.archetype} (skill {r.skill:.2f}){' quit' if r.quit else ''}"
        ax1.plot(t, [c[1] for c in r.curve], label=label)
        ax2.plot(t, [c[2] for c in r.curve])
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
