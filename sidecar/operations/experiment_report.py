"""`metabrain experiment report RECORDINGS...`: which arm of a live experiment keeps players longer.

Per arm: players, sessions, mean and median session length, quits per minute played, deaths per
minute, share of time in the challenge band. Sessions that did not end in a quit (cut short by the
game, or still running: sidecar/operations/session_outcomes.py) are censored, not quits:
Kaplan-Meier survival curves per arm and a log-rank test (lifelines). Differences against the control arm
with 95% intervals from a bootstrap over players (a player's sessions stay together). A sample ratio
mismatch check (scipy's chi-square: players per arm against the arms' weights) says when the split
itself is broken. And an always-valid sequential test (a mixture sequential probability ratio test
on the players' mean session lengths, normal mixing): its p-value and confidence sequence stay valid
however often the team looks, so the report can be read every day. Markdown, JSON and a PNG of the
survival curves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.operations.session_outcomes import read_sessions
from sidecar.policies.difficulty import DEFAULT_BAND

__all__ = ["SessionOutcome", "msprt", "read_outcomes", "report", "write_report"]

ALPHA = 0.05


@dataclass
class SessionOutcome:
    file: str
    experiment: str
    arm: str
    weight: float  # the arm's probability under the assignment
    player: str
    seconds: float
    quit: bool  # False: censored (cut short by the game, or no goodbye recorded): session_outcomes.py
    deaths: int
    in_band: float  # share of answered frames whose p_fail sat in the band (nan: no insight)


def read_outcomes(paths: Sequence[str | Path]) -> list[SessionOutcome]:
    out = []
    for s in read_sessions(paths):
        if not s.arm:
            continue
        band = s.band or DEFAULT_BAND
        inside = total = 0
        for _, resp in s.recording.responses():
            if resp.WhichOneof("kind") == "guidance" and resp.guidance.insights:
                total += 1
                inside += band[0] <= resp.guidance.insights[0].p_fail <= band[1]
        h = s.header
        out.append(
            SessionOutcome(
                s.name,
                str(h.get("experiment", "")),
                s.arm,
                float(h.get("assignment_propensity", 1.0)),
                s.player,
                s.end,
                s.quit,
                s.deaths,
                inside / total if total else float("nan"),
            )
        )
    return out


def msprt(a: np.ndarray, b: np.ndarray, tau: float, alpha: float = ALPHA) -> dict[str, float]:
    """Mixture SPRT for the difference of means of two samples (normal approximation, N(0, tau^2) mixing
    over the difference): the always-valid p-value and the (1 - alpha) confidence sequence at this n.
    Valid at every look, so it can be computed after every batch of players."""
    diff = float(b.mean() - a.mean())
    var = float(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))  # of the difference of means
    if not var > 0:
        return {"difference": diff, "p_value": 1.0, "low": -math.inf, "high": math.inf, "lambda": 1.0}
    t2 = tau * tau
    log_lambda = 0.5 * math.log(var / (var + t2)) + t2 * diff * diff / (2 * var * (var + t2))
    lam = math.exp(min(log_lambda, 700.0))
    half = math.sqrt(var * (var + t2) / t2 * (2 * math.log(1 / alpha) + math.log((var + t2) / var)))
    return {"difference": diff, "p_value": min(1.0, 1.0 / lam), "low": diff - half, "high": diff + half, "lambda": lam}


def _player_means(rows: Sequence[SessionOutcome]) -> tuple[list[str], np.ndarray]:
    by: dict[str, list[float]] = {}
    for r in rows:
        by.setdefault(r.player, []).append(r.seconds)
    players = sorted(by)
    return players, np.array([np.mean(by[p]) for p in players])


def _arm_stats(rows: Sequence[SessionOutcome]) -> dict[str, Any]:
    lengths = np.array([r.seconds for r in rows])
    minutes = max(lengths.sum() / 60.0, 1e-9)
    band = [r.in_band for r in rows if not math.isnan(r.in_band)]
    return {
        "players": len({r.player for r in rows}),
        "sessions": len(rows),
        "mean_length_s": float(lengths.mean()),
        "median_length_s": float(np.median(lengths)),
        "quits": int(sum(r.quit for r in rows)),
        "censored": int(sum(not r.quit for r in rows)),
        "quits_per_minute": sum(r.quit for r in rows) / minutes,
        "deaths_per_minute": sum(r.deaths for r in rows) / minutes,
        "in_band_share": float(np.mean(band)) if band else None,
        "weight": float(np.median([r.weight for r in rows])),
    }


def _bootstrap_diff(control: list[SessionOutcome], other: list[SessionOutcome], n: int, seed: int) -> list[float]:
    """95% interval of the difference in mean session length, resampling players (their sessions together):
    each resample draws players with replacement and pools their sessions' lengths."""
    rng = np.random.default_rng(seed)

    def clusters(rows: list[SessionOutcome]) -> tuple[np.ndarray, np.ndarray]:
        by: dict[str, list[float]] = {}
        for r in rows:
            by.setdefault(r.player, []).append(r.seconds)
        return np.array([sum(v) for v in by.values()]), np.array([len(v) for v in by.values()], float)

    def means(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        pick = rng.integers(0, len(sums), (n, len(sums)))  # [n, players]
        return sums[pick].sum(axis=1) / counts[pick].sum(axis=1)

    draws = means(*clusters(other)) - means(*clusters(control))
    return [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]


def report(
    outcomes: Sequence[SessionOutcome], control: str | None = None, boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    from lifelines.statistics import multivariate_logrank_test
    from scipy.stats import chisquare

    arms = sorted({r.arm for r in outcomes})
    if len(arms) < 2:
        raise ValueError(f"an experiment report needs sessions of at least two arms; these recordings have {arms}")
    control = control or next((a for a in arms if a.startswith("static")), arms[0])
    if control not in arms:
        raise ValueError(f"--control {control!r} is not an arm of these recordings ({', '.join(arms)})")
    by_arm = {a: [r for r in outcomes if r.arm == a] for a in arms}
    stats = {a: _arm_stats(rows) for a, rows in by_arm.items()}
    lr = multivariate_logrank_test([r.seconds for r in outcomes], [r.arm for r in outcomes], [r.quit for r in outcomes])
    players = np.array([stats[a]["players"] for a in arms], float)
    weights = np.array([stats[a]["weight"] for a in arms])
    srm = chisquare(players, players.sum() * weights / weights.sum())
    pooled = float(np.mean([r.seconds for r in outcomes]))
    tau = 0.1 * pooled  # the effects worth finding: around a tenth of a session
    _, ctrl_means = _player_means(by_arm[control])
    comparisons = {}
    for a in arms:
        if a == control:
            continue
        _, means = _player_means(by_arm[a])
        diff = stats[a]["mean_length_s"] - stats[control]["mean_length_s"]
        lo, hi = _bootstrap_diff(by_arm[control], by_arm[a], boot, seed)
        seq = msprt(ctrl_means, means, tau)
        comparisons[a] = {
            "difference_s": diff,
            "relative": diff / stats[control]["mean_length_s"],
            "ci95_s": [lo, hi],
            "excludes_zero": lo > 0 or hi < 0,
            "sequential_p_value": seq["p_value"],
            "confidence_sequence_s": [seq["low"], seq["high"]],
        }
    return {
        "experiments": sorted({r.experiment for r in outcomes if r.experiment}),
        "control": control,
        "arms": stats,
        "comparisons": comparisons,
        "logrank": {"statistic": float(lr.test_statistic), "p_value": float(lr.p_value)},
        "sample_ratio_mismatch": {
            "p_value": float(srm.pvalue),
            "flagged": bool(srm.pvalue < 0.001),
            "players": dict(zip(arms, players.astype(int).tolist(), strict=True)),
            "expected_share": dict(zip(arms, (weights / weights.sum()).tolist(), strict=True)),
        },
        "sessions": len(outcomes),
    }


def markdown(rep: dict[str, Any]) -> str:
    lines = [
        f"Experiment {', '.join(rep['experiments']) or '(unnamed)'}: {rep['sessions']} sessions; control arm "
        f"`{rep['control']}`.",
        "",
        "| arm | players | sessions | mean s | median s | quits/min | deaths/min | in band | censored |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a, s in rep["arms"].items():
        band = "–" if s["in_band_share"] is None else f"{s['in_band_share']:.2f}"
        lines.append(
            f"| {a} | {s['players']} | {s['sessions']} | {s['mean_length_s']:.0f} | {s['median_length_s']:.0f} | "
            f"{s['quits_per_minute']:.3f} | {s['deaths_per_minute']:.2f} | {band} | {s['censored']} |"
        )
    lines += [
        "",
        "| arm vs control | difference s | relative | 95% interval (bootstrap over players) | "
        "always-valid p | confidence sequence s |",
        "|---|---|---|---|---|---|",
    ]
    for a, c in rep["comparisons"].items():
        lo, hi = c["ci95_s"]
        slo, shi = c["confidence_sequence_s"]
        lines.append(
            f"| {a} | {c['difference_s']:+.0f} | {c['relative']:+.1%} | {lo:+.0f} to {hi:+.0f}"
            f"{' (excludes 0)' if c['excludes_zero'] else ''} | {c['sequential_p_value']:.3g} | "
            f"{slo:+.0f} to {shi:+.0f} |"
        )
    srm = rep["sample_ratio_mismatch"]
    lines += [
        "",
        f"Log-rank test (quits, censored sessions kept): p = {rep['logrank']['p_value']:.3g}. "
        f"Sample ratio check: p = {srm['p_value']:.3g}"
        + (
            " — MISMATCH: the split does not match the arms' weights; do not trust the comparison."
            if srm["flagged"]
            else " (the split matches the weights)."
        ),
        "The always-valid p-value and confidence sequence stay valid at every look (read the report daily); the "
        "bootstrap interval is for one look at a fixed horizon.",
    ]
    return "\n".join(lines) + "\n"


def survival_png(outcomes: Sequence[SessionOutcome], rep: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lifelines import KaplanMeierFitter

    fig, ax = plt.subplots(figsize=(8, 5))
    for arm in rep["arms"]:
        rows = [r for r in outcomes if r.arm == arm]
        km = KaplanMeierFitter(label=f"{arm} (n={len(rows)}, mean {rep['arms'][arm]['mean_length_s']:.0f} s)")
        km.fit([r.seconds / 60 for r in rows], [r.quit for r in rows])
        km.plot_survival_function(ax=ax, ci_show=True)
    ax.set_xlabel("minutes played")
    ax.set_ylabel("share of sessions still playing")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Kaplan-Meier survival per arm (log-rank p = {rep['logrank']['p_value']:.3g}; censored: not quit)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(outcomes: Sequence[SessionOutcome], rep: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "experiment.md", "json": out / "experiment.json", "png": out / "survival.png"}
    paths["markdown"].write_text(markdown(rep))
    paths["json"].write_text(json.dumps({**rep, "sessions_detail": [asdict(r) for r in outcomes]}, indent=2))
    survival_png(outcomes, rep, paths["png"])
    return paths
