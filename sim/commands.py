"""Subcommands: `metabrain sim`, `demo`, `replay`, `evaluate-directors`, `bench-sim`."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    from sidecar.policies.portfolio import ArmEvidence


def _params(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def cmd_sim(a: argparse.Namespace) -> int:
    from sim.policy_labels import PolicyRun, checked
    from sim.populations import load_population

    pop = load_population(a.population, a.seed)
    params = _params(a.param)
    if a.policy:
        checked(PolicyRun(a.policy, a.policy, params, True))
    if a.target:
        from sim.client import ClientConfig, play_many, resolve_target
        from sim.report import curves_png, live_summary, session_table

        target, transport = resolve_target(a.target, a.transport)
        seconds = a.seconds if a.seconds is not None else 60.0
        cfg = ClientConfig(
            target=target,
            transport=transport,
            realtime=not a.fast,
            max_seconds=seconds,
            policy=a.policy,
            params=params,
            consent=a.record_consent,
            token=a.token or "",
            seed=a.seed,
            telemetry_hz=a.telemetry_hz,
        )
        players = pop.players(a.sessions)
        with tqdm(total=int(a.sessions * seconds * a.telemetry_hz), desc="frames", unit="frame") as bar:
            rows = asyncio.run(play_many(players, cfg, on_frame=lambda: bar.update(1)))
        print(session_table(rows))
        print()
        print(live_summary(rows))
        if a.png:
            curves_png(rows, a.png, f"metabrain sim — {rows[0].model_version}, policy {rows[0].policy}")
            print(f"wrote {a.png}")
        lost = [r for r in rows if r.lost]
        if lost:
            print(
                f"metabrain sim: {len(lost)} of {len(rows)} sessions lost the sidecar before they ended "
                f"(first: {lost[0].lost})",
                file=sys.stderr,
            )
            return 1
        return 0
    from sim.offline import OfflineConfig, run_offline
    from sim.policy_labels import parse_mixture
    from sim.report import offline_summary

    cfg2 = OfflineConfig(
        sessions=a.sessions,
        max_seconds=a.seconds if a.seconds is not None else 900.0,
        seed=a.seed,
        policies=[a.policy or "predictive"],
        params=params,
        record_dir=a.record_dir,
        npc_hints=not a.no_hints,
        telemetry_hz=a.telemetry_hz,
        mixture=parse_mixture(a.mixture) if a.mixture else [],
        batch_sessions=a.concurrent,
    )
    with tqdm(total=a.sessions, desc="sessions", unit="session") as bar:
        rows2 = run_offline(pop, cfg2, progress=bar.update)
    print(offline_summary(rows2, cfg2.max_seconds))
    if a.record_dir:
        print(f"recordings in {a.record_dir}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from sim.demo import run_demo
    from sim.populations import load_population

    load_population(a.population, a.seed)  # a mistake is reported before a sidecar starts

    return run_demo(a.players, a.seconds, a.population, a.seed, a.out, a.arms, a.transport, a.checkpoint)


def cmd_replay(a: argparse.Namespace) -> int:
    import concurrent.futures
    import logging

    from sidecar.operations.recording import recording_files
    from sim.replay import replay_file, report_png, report_table

    files = [str(p) for p in recording_files(a.files)]
    if not files:
        raise FileNotFoundError(f"no .mbrec recordings in {' '.join(a.files)}")
    running = None
    target = a.target
    if not target:
        from sidecar.engine.engine import EngineConfig
        from sidecar.serving.inprocess import start_in_thread
        from sidecar.serving.server import ServeConfig

        logging.getLogger("metabrain").setLevel(logging.WARNING)  # no per-session lines through the bar
        running = start_in_thread(
            ServeConfig(grpc_port=0, ws_port=None, checkpoint=a.checkpoint, engine=EngineConfig(device="cpu"))
        )
        target = running.grpc_address
        print(f"replaying against an in-process sidecar ({running.sidecar.checkpoint.version})")
    baseline = a.against or "the recorded guidance"
    candidate = f"{a.policy or 'the recorded policy'} on {target if a.target else 'this sidecar'}"
    try:
        # Files side by side (each its own stream): the sidecar batches them into the same ticks.
        with (
            concurrent.futures.ThreadPoolExecutor(a.parallel) as pool,
            tqdm(total=len(files), desc="replaying", unit="file") as bar,
        ):
            futures = [pool.submit(replay_file, f, target, a.against, a.policy, a.token or "") for f in files]
            for fut in concurrent.futures.as_completed(futures):
                fut.result()
                bar.update(1)
            results = [fut.result() for fut in futures]
    finally:
        if running is not None:
            running.stop()
    print(report_table(results, baseline, candidate))
    if a.png:
        what = report_png(results, a.png, baseline, candidate)
        print(f"wrote {a.png} ({what})")
    return 0


def cmd_evaluate_directors(a: argparse.Namespace) -> int:
    from sim.director_eval import DEFAULT_POLICIES, evaluate_directors, markdown, pngs, write
    from sim.policy_labels import checked, parse_policy
    from sim.populations import load_population

    policies = tuple(a.policies.split(",")) if a.policies else DEFAULT_POLICIES
    for label in policies:
        checked(parse_policy(label))
    if a.from_recordings:
        return _off_policy(a, policies)
    if a.populations:
        return _over_populations(a, policies)
    if a.seeds:
        return _over_seeds(a, policies)
    load_population(a.population, a.seed)  # before the workers start
    report = evaluate_directors(
        a.population,
        a.players,
        a.seed,
        policies,
        a.max_seconds,
        a.checkpoint,
        a.workers,
        a.telemetry_hz,
        a.concurrent,
        a.portfolio_state,
    )
    write(report, a.json, a.markdown)
    print(markdown(report))
    for p in pngs(report, a.out):
        print(f"wrote {p}")
    return 0


def _over_seeds(a: argparse.Namespace, policies: tuple[str, ...]) -> int:
    """`evaluate-directors --seeds 1,2,3`: the same directors on other players for each seed, and what the
    runs say together (a learning director's run is one trajectory)."""
    from sim.director_eval import evaluate_seeds, over_seeds, seeds_markdown, seeds_png, slim
    from sim.populations import load_population

    try:
        seeds = tuple(int(s) for s in a.seeds.split(","))
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated whole numbers, got {a.seeds!r}") from None
    for seed in seeds:
        load_population(a.population, seed)  # before the workers start
    args = (a.max_seconds, a.checkpoint, a.workers, a.telemetry_hz, a.concurrent, a.portfolio_state)
    reports = evaluate_seeds(a.population, a.players, seeds, policies, *args)
    summary = over_seeds(reports)
    _write_summary(a, summary, seeds_markdown(summary), [slim(r) for r in reports])
    print(f"wrote {seeds_png(summary, a.out)}")
    return 0


def _write_summary(a: argparse.Namespace, summary: dict[str, Any], text: str, reports: list[dict[str, Any]]) -> None:
    """A summary over several runs: as JSON with its runs' reports (--json), as markdown (--markdown), printed."""
    if a.json:
        Path(a.json).write_text(json.dumps({**summary, "reports": reports}, indent=2))
    if a.markdown:
        Path(a.markdown).write_text(text)
    print(text)


def _over_populations(a: argparse.Namespace, policies: tuple[str, ...]) -> int:
    """`evaluate-directors --populations all`: the same directors on every population (each its own players,
    --seed), side by side, naming those where the candidate is worse than the designer's level or the best
    fixed level."""
    from sim.director_eval import across_populations, evaluate_directors, populations_markdown, slim
    from sim.populations import ALL_POPULATIONS, load_population

    if a.seeds:
        raise ValueError("--populations runs one seed (--seed) on each population; --seeds runs one population")
    names = ALL_POPULATIONS if a.populations == "all" else tuple(p.strip() for p in a.populations.split(","))
    for name in names:
        if "=" in name:
            raise ValueError(f"--populations: {name!r} is an archetype mix; run a mix with --population")
        load_population(name, a.seed)  # a name that is not a population fails here, before any run
    args = (a.max_seconds, a.checkpoint, a.workers, a.telemetry_hz, a.concurrent, a.portfolio_state)
    reports = [evaluate_directors(name, a.players, a.seed, policies, *args) for name in names]
    summary = across_populations(reports)
    _write_summary(a, summary, populations_markdown(summary), [slim(r) for r in reports])
    return 0


def _off_policy(a: argparse.Namespace, policies: tuple[str, ...]) -> int:
    """`evaluate-directors --from-recordings DIR`: each director's mean session, estimated off-policy."""
    from sidecar.operations.recording import recording_files
    from sidecar.training.offpolicy import estimate, read_logged
    from sim.director_eval import off_policy_png

    # Each source is a log of its own design (offpolicy.py: several are weighted as one mixture of them).
    logs = [sorted(map(str, recording_files([src]))) for src in a.from_recordings]
    with tqdm(total=sum(map(len, logs)), desc="reading recordings", unit="file") as bar:
        sessions = [s for k, files in enumerate(logs) for s in read_logged(_counted(files, bar), log=k)]
    if not sessions:
        print(
            "metabrain evaluate-directors: no recording says which director it drew and with what probability "
            "(header fields arm and assignment_propensity: record a mixture, e.g. `metabrain sim --mixture ...`)",
            file=sys.stderr,
        )
        return 2
    arms = sorted({s.arm for s in sessions})
    print(f"{len(sessions)} logged sessions; directors drawn: {', '.join(arms)}")
    rows = [
        _replayed_portfolio(a, sessions)
        if label == "portfolio"
        else estimate(sessions, label, boot=a.bootstrap, seed=a.seed)
        for label in policies
    ]
    print("\n| director | sessions drawn | DR mean length s | 95% interval | IS | SNIS | effective sample size |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r.get("method") == "replay" and "replay" in r:
            n, mean = r["sessions_of_director"], r["replay"]
            interval = "{:.0f}–{:.0f}".format(*r["ci95"]) if r["ci95"] else "–"
            print(f"| portfolio (replayed) | {n} | {mean:.0f} | {interval} | | | |")
            continue
        if "dr" not in r:
            print(f"| {r['director']} | 0 | – | {r['note']} | | | |")
            continue
        lo, hi = r["dr_ci95"]
        print(
            f"| {r['director']} | {r['sessions_of_director']} | {r['dr']:.0f} | {lo:.0f}–{hi:.0f} | {r['ips']:.0f} | "
            f"{r['snis']:.0f} | {r['effective_sample_size']:.0f} |"
        )
    for r in rows:
        if r.get("method") == "replay" and "shares" in r:
            shares = ", ".join(f"{k} {v:.0%}" for k, v in r["shares"].items())
            begun = f"one started from {r['started_from']} sessions' evidence" if r["started_from"] else "a fresh one"
            print(
                f"\nportfolio: {begun} replayed over {r['sessions']} sessions, {a.concurrent} at a time, each "
                f"playing a logged session of the candidate it drew (designer's level {r['designer_level']:g}); "
                f"its draws: {shares}. The interval is for one such run (its own luck included)."
            )
            for key in ("candidates", "note"):
                if r.get(key):
                    print(f"portfolio: {r[key]}")
    if a.json:
        Path(a.json).write_text(json.dumps({"sessions": len(sessions), "estimates": rows}, indent=2))
    print(f"wrote {off_policy_png(rows, a.out)}")
    return 0


def _counted(files: list[str], bar: tqdm) -> Iterator[str]:
    for f in files:
        yield f
        bar.update(1)


def _replayed_portfolio(a: argparse.Namespace, sessions: list[Any]) -> dict[str, Any]:
    """The portfolio learns as it plays: estimated by replaying it on its candidates' logged sessions
    (sidecar/training/portfolio_replay.py), not by weighting the sessions it had in the log."""
    from sidecar.training.portfolio_replay import estimate_portfolio

    runs = 20
    with tqdm(total=runs + a.bootstrap, desc="replaying the portfolio", unit="run") as bar:
        return estimate_portfolio(
            sessions,
            sessions=a.players,
            concurrent=a.concurrent,
            runs=runs,
            boot=a.bootstrap,
            seed=a.seed,
            cap_s=a.max_seconds,
            progress=bar.update,
            seeded=_stored_evidence(a.portfolio_state) if a.portfolio_state else None,
        )


def _stored_evidence(state_dir: str) -> dict[str, ArmEvidence]:
    """The one game's evidence a --state-dir holds (the replay starts from it)."""
    from sidecar.operations.portfolio_store import PortfolioStore
    from sidecar.policies.portfolio import CONTEXT_MARK

    # Every label (a learns_start candidate's evidence at each start too); not a contextual share's.
    games = {g: e for g, (e, _) in PortfolioStore(state_dir).stored().items() if CONTEXT_MARK not in g}
    if len(games) != 1:
        raise ValueError(
            f"--portfolio-state {state_dir}: the replay starts from one game's evidence, not {len(games)}"
            f" ({', '.join(sorted(games))})"
        )
    return next(iter(games.values()))


def cmd_generate(a: argparse.Namespace) -> int:
    """`metabrain dataset generate`: simulated sessions recorded for training."""
    from sim.datagen import GenerateConfig, generate

    n = generate(
        GenerateConfig(
            out=a.out,
            sessions=a.sessions,
            population=a.population,
            seed=a.seed,
            workers=a.workers,
            max_seconds=a.max_seconds,
            telemetry_hz=a.telemetry_hz,
            policies=tuple(a.policies.split(",")) if a.policies else GenerateConfig.policies,
        )
    )
    print(f"recorded {n} sessions into {a.out}")
    return 0


def cmd_bench_sim(a: argparse.Namespace) -> int:
    """Simulated player-seconds per wall second: the game and its players alone, one core."""
    from sim.offline import play_fixed
    from sim.populations import load_population

    players = load_population("default", 3).players(a.sessions)
    t0 = time.perf_counter()
    sim_s = 0.0
    for i, p in enumerate(tqdm(players, desc="simulating", unit="session")):
        t, _, _ = play_fixed(p, i, 0.4, a.seconds)
        sim_s += t
    wall = time.perf_counter() - t0
    # The baseline is real time itself: the factor says how many simulated seconds one wall second buys.
    print(
        f"simulated {sim_s:.0f} player-seconds in {wall:.2f} s wall: {sim_s / wall:.0f}x real time on one core "
        f"({platform.processor() or platform.machine()}, Python {sys.version.split()[0]})"
    )
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "player_seconds": sim_s,
                    "wall_s": wall,
                    "realtime_factor": sim_s / wall,
                    "machine": platform.platform(),
                }
            )
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("sim", help="simulate sessions offline, or against a running sidecar (--target)")
    s.add_argument(
        "--population", default="default", help="'default', 'holdout', 'novice=1,expert=2' or file.py:Factory"
    )
    s.add_argument("--sessions", type=int, default=20)
    s.add_argument(
        "--seconds",
        type=float,
        help="session length cap in game seconds (default: 900 offline, 60 with --target, which plays in real time)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--policy", default="", help="director policy (the sidecar's default when empty)")
    s.add_argument("--param", action="append", help="policy parameter KEY=VALUE (repeatable)")
    s.add_argument("--target", help="host:port (gRPC) or ws://host:port/metabrain/v1/session; offline when absent")
    s.add_argument(
        "--transport", choices=["grpc", "websocket"], help="default: from --target (a ws:// URL is WebSocket)"
    )
    s.add_argument("--fast", action="store_true", help="as fast as possible instead of real time (with --target)")
    s.add_argument("--token", help="auth token for the sidecar")
    s.add_argument("--record-dir", help="offline: record every session here")
    s.add_argument("--record-consent", action="store_true", help="with --target: consent to the sidecar recording")
    s.add_argument("--no-hints", action="store_true", help="offline: NPCs ignore tactic hints")
    s.add_argument("--png", help="with --target: write difficulty curves here")
    s.add_argument("--telemetry-hz", type=float, default=5.0, help="frames a second the simulated game sends")
    s.add_argument(
        "--concurrent",
        type=int,
        default=4096,
        help="offline: players playing at once; the next starts when one leaves",
    )
    s.add_argument(
        "--mixture",
        help="offline: each session draws its director, e.g. 'static:0.5=40,rubber_band=30,learned=30' (the draw "
        "and its probability are recorded: what off-policy evaluation reads)",
    )
    s.set_defaults(func=cmd_sim)

    d = sub.add_parser(
        "demo", help="a live experiment in a minute: the designer's level against the default director, over gRPC"
    )
    d.add_argument("--players", type=int, default=48, help="simulated players, split between the arms")
    d.add_argument("--seconds", type=float, default=300.0, help="session length cap in game seconds")
    d.add_argument("--population", default="default")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--arms", default="static=50,portfolio=50", help="the experiment's arms and weights")
    d.add_argument("--transport", choices=["grpc", "websocket"], default="grpc")
    d.add_argument("--checkpoint")
    d.add_argument("--out", default="demo-out", help="directory for demo.png")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("replay", help="re-send recorded sessions to a sidecar and compare the guidance")
    r.add_argument("files", nargs="+", help=".mbrec files or directories")
    r.add_argument("--target", help="host:port of a running sidecar (default: an in-process one)")
    r.add_argument("--checkpoint", help="for the in-process sidecar")
    r.add_argument("--against", help="compare with this second sidecar instead of the recorded guidance")
    r.add_argument("--policy", help="replay under this director policy instead of the recorded one")
    r.add_argument("--token")
    r.add_argument("--png", help="write difficulty, recorded versus replayed (the recordings that differ most)")
    r.add_argument("--parallel", type=int, default=8, help="recordings replayed at once")
    r.set_defaults(func=cmd_replay)

    e = sub.add_parser("evaluate-directors", help="every director policy on one simulated population")
    e.add_argument("--population", default="default")
    e.add_argument("--players", type=int, default=1000)
    e.add_argument("--seed", type=int, default=20261128)
    e.add_argument(
        "--seeds",
        help="comma-separated: run the directors once per seed (other players each time) and report each "
        "director's mean per seed and over them; a learning director's run is one trajectory",
    )
    e.add_argument(
        "--populations",
        help="'all' (default, holdout and every evaluation population) or comma-separated names: the directors "
        "on each (--seed), side by side, naming where the candidate is worse than the designer's level or the "
        "best fixed level",
    )
    e.add_argument("--policies", help="comma-separated, e.g. static:0.3,rubber_band,predictive,predictive:nohints")
    e.add_argument("--max-seconds", type=float, default=900.0)
    e.add_argument("--checkpoint")
    e.add_argument("--workers", type=int, default=2)
    e.add_argument("--telemetry-hz", type=float, default=5.0, help="frames a second the simulated games send")
    e.add_argument(
        "--concurrent",
        type=int,
        default=64,
        help="players playing at once; the next starts when one leaves (what an adaptive director learns from)",
    )
    e.add_argument(
        "--portfolio-state",
        metavar="DIR",
        help="the portfolio starts from the evidence in this --state-dir (e.g. after `metabrain portfolio import`); "
        "with --from-recordings, its replays do",
    )
    e.add_argument(
        "--from-recordings",
        nargs="+",
        metavar="DIR",
        help="instead of simulating: estimate each director of --policies off-policy from these recordings "
        "(several directories: logs of different mixtures, weighted as one design)",
    )
    e.add_argument("--bootstrap", type=int, default=1000, help="with --from-recordings: bootstrap resamples")
    e.add_argument("--json", help="write the table as JSON")
    e.add_argument("--markdown", help="write the table as markdown")
    e.add_argument("--out", default="director-eval", help="directory for the PNGs")
    e.set_defaults(func=cmd_evaluate_directors)

    dataset = sub.choices.get("dataset")  # sidecar/training/commands.py registers it first
    if dataset is not None:
        dsub = dataset.get_default("dataset_actions")
        gen = dsub.add_parser("generate", help="record simulated sessions (mixed policies, random NPC tactics)")
        gen.add_argument("--out", required=True, help="directory for the .mbrec recordings")
        gen.add_argument("--sessions", type=int, default=800)
        gen.add_argument(
            "--population", default="default", help="'default', 'holdout', 'novice=1,expert=1' or file.py:Factory"
        )
        gen.add_argument("--seed", type=int, default=1)
        gen.add_argument("--workers", type=int, default=2)
        gen.add_argument("--max-seconds", type=float, default=1200.0, help="session length cap (game seconds)")
        gen.add_argument("--telemetry-hz", type=float, default=5.0, help="frames a second the simulated game sends")
        gen.add_argument(
            "--policies",
            default="",
            help="directors to draw from, comma-separated (default: the training mix; `piecewise`: levels drawn "
            "at random and held, the switch points of sidecar/training/switch_points.py)",
        )
        gen.set_defaults(func=cmd_generate)

    b = sub.add_parser("bench-sim", help="offline simulation speed (player-seconds per wall second)")
    b.add_argument("--sessions", type=int, default=40)
    b.add_argument("--seconds", type=float, default=300.0)
    b.add_argument("--json")
    b.set_defaults(func=cmd_bench_sim)
