"""`metabrain evaluate-directors`: every policy against the same simulated population.

Each policy plays the same players (same traits, same seeds) offline through the sidecar's own engine.
Reported per policy: mean and median session length (the engagement proxy), quit rate by minute,
share of frames whose predicted p_fail sits in the target band, and the spread of win rates
(kills / (kills + deaths)) across skill deciles.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.serving.worker_pool import report, run_pool
from sidecar.training.director_report import DESIGNER_DEFAULT, file_part, markdown
from sim.offline import SessionSummary
from sim.policy_labels import PolicyRun, parse_policy

CONCURRENT = 64
DEFAULT_POLICIES = (
    "static:0.1",
    "static:0.25",
    "static:0.4",
    "static:0.55",
    "static:0.7",
    "rubber_band",
    "intensity",
    "predictive",
    "predictive:nohints",
    "guarded",
    "portfolio",
)


def _run(
    args: tuple[PolicyRun, str, int, int, float, str | None, float, int, str | None],
) -> tuple[str, list[dict[str, Any]]]:
    run, population, n, seed, max_seconds, checkpoint, telemetry_hz, concurrent, portfolio_state = args
    import torch

    torch.set_num_threads(1)
    from sidecar.model.checkpoint import load_checkpoint
    from sidecar.policies.portfolio import reset_portfolios

    reset_portfolios()  # each run learns from its own players only (and what portfolio_state holds)
    if portfolio_state:
        from sidecar.operations.portfolio_store import PortfolioStore

        PortfolioStore(portfolio_state).load()  # read only: the evaluation's own play is not written back
    from sim.offline import OfflineConfig, run_offline
    from sim.populations import load_population

    cfg = OfflineConfig(
        sessions=n,
        max_seconds=max_seconds,
        seed=seed,
        policies=[run.policy],
        params=run.params,
        npc_hints=run.hints,
        curve_every_s=1e9,
        telemetry_hz=telemetry_hz,
        batch_sessions=concurrent,
    )
    rows = run_offline(load_population(population, seed), cfg, load_checkpoint(checkpoint), progress=report)
    return run.label, [asdict(r) for r in rows]


def _drawn(rows: list[SessionSummary], director: str) -> dict[str, float]:
    mine = [r.seconds for r in rows if r.drawn == director]
    return {"share": len(mine) / len(rows), "mean_length_s": float(np.mean(mine))}


def summarize(label: str, rows: list[SessionSummary], max_seconds: float) -> dict[str, Any]:
    lengths = np.array([r.seconds for r in rows])
    minutes = int(np.ceil(max_seconds / 60))
    quit_by_minute = []
    alive = len(rows)
    for m in range(minutes):
        q = sum(1 for r in rows if r.quit and m * 60 <= r.seconds < (m + 1) * 60)
        quit_by_minute.append(q / max(alive, 1))
        alive -= q
    skills = np.array([r.skill for r in rows])
    win = np.array([r.kills / max(r.kills + r.deaths, 1) for r in rows])
    deciles = np.quantile(skills, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(deciles, skills, side="right") - 1, 0, 9)
    win_by_decile = [float(win[idx == d].mean()) if (idx == d).any() else float("nan") for d in range(10)]
    diff_by_decile = [
        float(np.mean([r.difficulty_mean for r, i in zip(rows, idx, strict=True) if i == d]))
        if (idx == d).any()
        else float("nan")
        for d in range(10)
    ]
    length_by_decile = [float(lengths[idx == d].mean()) if (idx == d).any() else float("nan") for d in range(10)]
    return {
        "policy": label,
        "sessions": len(rows),
        "mean_length_s": float(lengths.mean()),
        "median_length_s": float(np.median(lengths)),
        "quit_share": float(np.mean([r.quit for r in rows])),
        "quit_rate_by_minute": quit_by_minute,
        "in_band_share": float(np.mean([r.in_band_share for r in rows])),
        "win_rate_by_skill_decile": win_by_decile,
        "win_rate_spread": float(np.nanmax(win_by_decile) - np.nanmin(win_by_decile)),
        "difficulty_by_skill_decile": diff_by_decile,
        "length_by_skill_decile": length_by_decile,
        "mean_difficulty": float(np.mean([r.difficulty_mean for r in rows])),
        "deaths_per_min": float(sum(r.deaths for r in rows) / max(lengths.sum() / 60, 1e-9)),
        # A portfolio's sessions: the share given to each of its directors, and each one's mean length.
        "drawn": {d: _drawn(rows, d) for d in sorted({r.drawn for r in rows if r.drawn})},
    }


def evaluate_directors(
    population: str = "default",
    players: int = 1000,
    seed: int = 20261128,
    policies: tuple[str, ...] = DEFAULT_POLICIES,
    max_seconds: float = 900.0,
    checkpoint: str | None = None,
    workers: int = 2,
    telemetry_hz: float = 5.0,
    concurrent: int = CONCURRENT,
    portfolio_state: str | None = None,
) -> dict[str, Any]:
    """concurrent: players playing at once; the next starts when one leaves (an adaptive director, the
    portfolio, learns from the sessions that have ended). portfolio_state: a --state-dir whose portfolio
    evidence the portfolio starts from (`metabrain portfolio import`)."""
    args = (max_seconds, checkpoint, workers, telemetry_hz, concurrent, portfolio_state)
    return evaluate_seeds(population, players, (seed,), policies, *args)[0]


def evaluate_seeds(
    population: str,
    players: int,
    seeds: tuple[int, ...],
    policies: tuple[str, ...] = DEFAULT_POLICIES,
    max_seconds: float = 900.0,
    checkpoint: str | None = None,
    workers: int = 2,
    telemetry_hz: float = 5.0,
    concurrent: int = CONCURRENT,
    portfolio_state: str | None = None,
) -> list[dict[str, Any]]:
    """evaluate_directors once per seed (other players each time), every (seed, director) one task of
    one pool: a report per seed, in the order given."""
    runs = [parse_policy(p) for p in policies]
    tasks = [
        (r, population, players, seed, max_seconds, checkpoint, telemetry_hz, concurrent, portfolio_state)
        for seed in seeds
        for r in runs
    ]
    desc = f"{len(runs)} policies x {players} players" + (f" x {len(seeds)} seeds" if len(seeds) > 1 else "")
    done = run_pool(_run, tasks, workers, players * len(tasks), desc, "session")
    reports = []
    for k, seed in enumerate(seeds):
        results = {
            label: [SessionSummary(**r) for r in rows] for label, rows in done[k * len(runs) : (k + 1) * len(runs)]
        }
        table = [summarize(r.label, results[r.label], max_seconds) for r in runs]
        reports.append(_report(population, players, seed, max_seconds, telemetry_hz, checkpoint, table, results))
    return reports


def over_seeds(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """What several seeds' reports say together. A learning director's run is one trajectory (once one
    draw differs, every later one does), so its mean session moves between runs more than a fixed
    director's: each director's mean session per seed and on average, and the candidate (the portfolio,
    else the model's director) against the best fixed level of each seed, with a t-interval over seeds."""
    first = reports[0]
    labels = [t["policy"] for t in first["table"]]
    means = {lb: [next(t["mean_length_s"] for t in r["table"] if t["policy"] == lb) for r in reports] for lb in labels}
    out: dict[str, Any] = {
        "population": first["population"],
        "players": first["players"],
        "seeds": [r["seed"] for r in reports],
        "max_seconds": first["max_seconds"],
        "mean_length_s": {lb: {"per_seed": v, "mean": float(np.mean(v))} for lb, v in means.items()},
    }
    comparisons = [r["comparison"] for r in reports]
    if all("vs_best_static" in c for c in comparisons):
        gains = np.array([c["vs_best_static"] for c in comparisons])
        out["candidate"] = comparisons[0]["candidate"]
        out["vs_best_static"] = {
            "per_seed": gains.tolist(),
            "best_static_per_seed": [c["best_static"] for c in comparisons],
            "mean": float(gains.mean()),
            "ci95": _t_interval(gains),
        }
    return out


def across_populations(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The same directors' reports on several populations, side by side: each director's mean session on
    each, and the candidate (the portfolio, else the model's director) against the designer's level and
    the best fixed level there, with the skill deciles below the designer's level beyond chance. `worse`
    names the populations where the candidate plays shorter than either or a decile is below: a change to
    a director is checked on every population, not only on those it was built for (the retreat's first
    version, checked on four populations, cost the four it was not checked on 3-32%; docs)."""
    rows: list[dict[str, Any]] = []
    for r in reports:
        means = {t["policy"]: t["mean_length_s"] for t in r["table"]}
        c = r["comparison"]
        row: dict[str, Any] = {"population": r["population"], "seed": r["seed"], "players": r["players"]}
        row["mean_length_s"] = means
        if "candidate" in c:
            candidate = c["candidate"]
            row.update(candidate=candidate, best_static=c["best_static"], vs_best_static=c["vs_best_static"])
            if DESIGNER_DEFAULT in means:
                row["vs_designer_default"] = means[candidate] / means[DESIGNER_DEFAULT] - 1
                row["deciles_below_designer_default"] = c.get("deciles_credibly_below_designer_default", [])
        rows.append(row)
    worse = [
        row["population"]
        for row in rows
        if row.get("vs_best_static", 0.0) < 0
        or row.get("vs_designer_default", 0.0) < 0
        or row.get("deciles_below_designer_default")
    ]
    return {
        "policies": [t["policy"] for t in reports[0]["table"]],
        "max_seconds": reports[0]["max_seconds"],
        "rows": rows,
        "worse": worse,
    }


def populations_markdown(summary: dict[str, Any]) -> str:
    """across_populations as a table: a row per population, a column per director, then the candidate
    against the designer's level and the best fixed level, and a verdict line."""
    policies = summary["policies"]
    lines = [
        f"Sessions capped at {summary['max_seconds']:.0f} s. Mean session, s; the candidate against the designer's "
        f"level ({DESIGNER_DEFAULT}) and the best fixed level on the same players:",
        "",
        "| population | seed | players | " + " | ".join(policies) + " | candidate | vs designer | vs best fixed |"
        " skill deciles below the designer beyond chance |",
        "|---|---|---|" + "---|" * (len(policies) + 4),
    ]
    for row in summary["rows"]:
        means = " | ".join(f"{row['mean_length_s'][p]:.1f}" for p in policies)
        vs_designer = f"{row['vs_designer_default']:+.1%}" if "vs_designer_default" in row else "–"
        vs_best = f"{row['vs_best_static']:+.1%} ({row['best_static']})" if "vs_best_static" in row else "–"
        below = row.get("deciles_below_designer_default")
        deciles = "–" if below is None else (", ".join(map(str, below)) or "none")
        lines.append(
            f"| {row['population']} | {row['seed']} | {row['players']} | {means} | {row.get('candidate', '–')} | "
            f"{vs_designer} | {vs_best} | {deciles} |"
        )
    worse = summary["worse"]
    lines += [
        "",
        "Shorter than the designer's level or the best fixed level, or a skill decile below the designer's level "
        f"beyond chance, on: {', '.join(worse)}."
        if worse
        else "Worse than the designer's level or the best fixed level on none of these populations.",
    ]
    return "\n".join(lines)


def _t_interval(values: np.ndarray) -> list[float]:
    """The 95% t-interval of the mean (NaN, NaN for one value)."""
    if len(values) < 2:
        return [float("nan"), float("nan")]
    from scipy import stats

    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return [float(values.mean()) - half, float(values.mean()) + half]


def seeds_png(summary: dict[str, Any], out_dir: str | Path) -> Path:
    """Each director's mean session in every seed's run (a dot a run) and over them (a bar): how far one
    run of a learning director can be from the next, beside the fixed ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(summary["mean_length_s"])
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(labels), 4.5))
    for x, label in enumerate(labels):
        m = summary["mean_length_s"][label]
        ax.bar(x, m["mean"], width=0.6, alpha=0.35)
        ax.scatter([x] * len(m["per_seed"]), m["per_seed"], color="black", s=14, zorder=3)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel("mean session (s)")
    ax.set_title(
        f"{summary['population']}: a dot per seed ({len(summary['seeds'])}), {summary['players']} players each"
    )
    fig.tight_layout()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"seeds_{file_part(summary['population'])}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def seeds_markdown(summary: dict[str, Any]) -> str:
    """over_seeds as a table: a row per director, a column per seed."""
    seeds = summary["seeds"]
    lines = [
        f"Population `{summary['population']}`, {summary['players']} players a seed, seeds "
        f"{', '.join(map(str, seeds))}, sessions capped at {summary['max_seconds']:.0f} s. Mean session, s:",
        "",
        "| policy | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
        "|---|" + "---|" * (len(seeds) + 1),
    ]
    for label, m in summary["mean_length_s"].items():
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in m["per_seed"]) + f" | {m['mean']:.1f} |")
    vs = summary.get("vs_best_static")
    if vs:
        each = ", ".join(f"{g:+.1%} ({b})" for g, b in zip(vs["per_seed"], vs["best_static_per_seed"], strict=True))
        lo, hi = vs["ci95"]
        interval = f", 95% interval over seeds {lo:+.1%} to {hi:+.1%}" if np.isfinite(lo) else ""
        lines += [
            "",
            f"{summary['candidate']} against each seed's best fixed level: {each}; mean {vs['mean']:+.1%}{interval}.",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class DecileRatios:
    """Per skill decile (least skilled first), one director's mean session over another's on the same players."""

    ratios: list[float]
    ci95: list[list[float]]  # each decile's 95% interval (paired bootstrap)
    below: list[int]  # deciles (1-based) below 1 beyond chance, for the ten together (see decile_ratios)


def decile_ratios(
    mine: list[SessionSummary], base: list[SessionSummary], boot: int = 2000, seed: int = 0
) -> DecileRatios:
    """Per skill decile, the mean session under one director over the same players' mean under another,
    with its 95% interval from a paired bootstrap (players resampled within their decile, each with both
    of its sessions). A decile of 100 players knows its mean to about ±10%: the smallest of ten ratios is
    well below 1 by chance alone, and one of ten 95% intervals misses 1 in about a quarter of runs where
    nothing differs. So a decile counts as below only when its one-sided bound at 1 - 0.05/10 is (a 5%
    chance, for all ten together, of naming one that is not)."""
    theirs = {r.index: r.seconds for r in base}
    pairs = [(r.skill, r.seconds, theirs[r.index]) for r in mine if r.index in theirs]
    skills = np.array([p[0] for p in pairs])
    a, b = np.array([p[1] for p in pairs]), np.array([p[2] for p in pairs])
    edges = np.quantile(skills, np.linspace(0, 1, 11)) if len(pairs) else np.zeros(11)
    idx = np.clip(np.searchsorted(edges, skills, side="right") - 1, 0, 9)
    rng = np.random.default_rng(seed)
    out = DecileRatios([], [], [])
    for d in range(10):
        ad, bd = a[idx == d], b[idx == d]
        if not len(ad) or bd.sum() <= 0:
            out.ratios.append(float("nan"))
            out.ci95.append([float("nan"), float("nan")])
            continue
        pick = rng.integers(0, len(ad), (boot, len(ad)))
        draws = ad[pick].mean(axis=1) / np.maximum(bd[pick].mean(axis=1), 1e-9)
        out.ratios.append(float(ad.mean() / bd.mean()))
        out.ci95.append([float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))])
        if np.percentile(draws, 100 * (1 - 0.05 / 10)) < 1.0:
            out.below.append(d + 1)
    return out


def compare(table: list[dict[str, Any]], results: dict[str, list[SessionSummary]] | None = None) -> dict[str, Any]:
    """The model-driven director (learned if it ran, else predictive) against the others. results: each
    director's sessions, for the per-decile intervals against the designer's level (same players)."""
    by = {t["policy"]: t for t in table}
    static = [t for t in table if t["policy"].startswith("static")]
    best_static = max(static, key=lambda t: t["mean_length_s"]) if static else None
    candidate = next((c for c in ("portfolio", "learned", "predictive") if c in by), None)
    comparison: dict[str, Any] = {}
    if candidate is None or best_static is None:
        return comparison
    p = by[candidate]["mean_length_s"]
    comparison["candidate"] = candidate
    comparison["best_static"] = best_static["policy"]
    comparison["vs_best_static"] = p / best_static["mean_length_s"] - 1
    if "rubber_band" in by:
        comparison["vs_rubber_band"] = p / by["rubber_band"]["mean_length_s"] - 1
    # NPC hints on against off: the candidate's, or else the first director that ran both ways.
    hinted = next((c for c in (candidate, *by) if f"{c}:nohints" in by), None)
    if hinted is not None:
        comparison["hints_on_vs_off"] = by[hinted]["mean_length_s"] / by[f"{hinted}:nohints"]["mean_length_s"] - 1
        if hinted != candidate:
            comparison["hints_of"] = hinted
    # Every director's deciles against the designer's level on the same players, with paired intervals.
    paired: dict[str, DecileRatios] = {}
    if results and DESIGNER_DEFAULT in results:
        paired = {k: decile_ratios(v, results[DESIGNER_DEFAULT]) for k, v in results.items() if k != DESIGNER_DEFAULT}
        comparison["deciles_vs_designer_default"] = {label: asdict(r) for label, r in paired.items()}
    if DESIGNER_DEFAULT in by:  # the same players' mean session by skill decile, against the designer's level
        ratio = np.array(by[candidate]["length_by_skill_decile"]) / np.array(
            by[DESIGNER_DEFAULT]["length_by_skill_decile"]
        )
        comparison["decile_ratio_vs_designer_default"] = ratio.tolist()
        comparison["worst_decile_vs_designer_default"] = float(np.nanmin(ratio) - 1)
        if candidate in paired:
            mine = paired[candidate]
            comparison["decile_ratio_ci95_vs_designer_default"] = mine.ci95
            worst = int(np.nanargmin(ratio))
            comparison["worst_decile"] = worst + 1
            comparison["worst_decile_ci95"] = mine.ci95[worst]
            # Deciles (1 = least skilled) below the designer's level beyond chance (decile_ratios).
            comparison["deciles_credibly_below_designer_default"] = mine.below
    return comparison


def _report(
    population: str,
    players: int,
    seed: int,
    max_seconds: float,
    telemetry_hz: float,
    checkpoint: str | None,
    table: list[dict[str, Any]],
    results: dict[str, list[SessionSummary]],
) -> dict[str, Any]:
    comparison = compare(table, results)
    return {
        "population": population,
        "players": players,
        "seed": seed,
        "max_seconds": max_seconds,
        "telemetry_hz": telemetry_hz,
        "checkpoint": checkpoint or "bundled",
        "table": table,
        "comparison": comparison,
        "lengths": {label: [r.seconds for r in rows] for label, rows in results.items()},
        "skill_difficulty": {label: [(r.skill, r.difficulty_mean) for r in rows] for label, rows in results.items()},
    }


def pngs(report: dict[str, Any], out_dir: str | Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = [t["policy"] for t in report["table"]]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    ax.boxplot([np.array(report["lengths"][lb]) / 60 for lb in labels], tick_labels=labels, showmeans=True)
    ax.set_ylabel("session length (minutes)")
    ax.set_title(f"Session length per policy — population {report['population']}, {report['players']} players")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    p1 = out / f"session_length_{file_part(report['population'])}.png"
    fig.savefig(p1, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 5))
    for lb in labels:
        if lb.startswith("static"):
            continue
        sd = np.array(report["skill_difficulty"][lb])
        ax.scatter(sd[:, 0], sd[:, 1], s=6, alpha=0.5, label=lb)
    ax.set_xlabel("player skill (latent)")
    ax.set_ylabel("mean difficulty faced")
    ax.set_title("Difficulty versus skill")
    ax.legend(fontsize=8, markerscale=2)
    fig.tight_layout()
    p2 = out / f"difficulty_vs_skill_{file_part(report['population'])}.png"
    fig.savefig(p2, dpi=110)
    plt.close(fig)
    return [p1, p2]


def slim(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its per-session lists (what the JSON keeps)."""
    return {k: v for k, v in report.items() if k not in ("lengths", "skill_difficulty")}


def write(report: dict[str, Any], json_path: str | None, md_path: str | None) -> None:
    if json_path:
        Path(json_path).write_text(json.dumps(slim(report), indent=2))
    if md_path:
        Path(md_path).write_text(markdown(report))


def off_policy_png(estimates: list[dict[str, Any]], out_dir: str | Path) -> Path:
    """Each director's off-policy estimate with its 95% interval (evaluate-directors --from-recordings)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in estimates if "dr" in r or "replay" in r]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(shown) + 1.8))
    for y, r in enumerate(shown):
        mean, interval = (r["replay"], r["ci95"]) if "replay" in r else (r["dr"], r["dr_ci95"])
        label = f"{r['director']} (replayed)" if "replay" in r else f"{r['director']} (DR)"
        if interval:
            ax.plot(np.array(interval) / 60, [y, y], color="tab:blue", lw=3, alpha=0.5)
        ax.plot([mean / 60], [y], "o", color="tab:blue")
        ax.text(mean / 60, y + 0.18, f"{mean:.0f} s", ha="center", fontsize=8)
        ax.annotate(
            label,
            (0, y),
            xytext=(-8, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            xycoords=("axes fraction", "data"),
            fontsize=9,
        )
    ax.set_yticks([])
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.set_xlabel("mean session length (minutes), 95% interval")
    ax.set_title("Directors estimated from recordings")
    fig.tight_layout()
    fig.subplots_adjust(left=0.3)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "off_policy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
