"""`metabrain demo`: a live experiment in a minute. The sidecar with the bundled model serves simulated
players over gRPC, split between the designer's fixed level and the default director (the portfolio,
which learns as the players' sessions play which of its candidates keeps them longest); game time runs faster
than real time (the players' frames go out as fast as they are answered). At the end: the experiment
report's headline (session length per arm with its interval, quits, deaths), the survival curves and
each player's difficulty over time.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from tqdm import tqdm

from sidecar.engine.engine import EngineConfig
from sidecar.limits import Limits
from sidecar.policies.experiments import parse_experiment
from sidecar.serving.inprocess import start_in_thread
from sidecar.serving.server import ServeConfig
from sim.client import ClientConfig, play_many
from sim.populations import load_population
from sim.report import curves_png

DEFAULT_ARMS = "static=50,portfolio=50"


def run_demo(
    players: int = 48,
    seconds: float = 300.0,
    population: str = "default",
    seed: int = 7,
    out_dir: str = "demo-out",
    arms: str = DEFAULT_ARMS,
    transport: str = "grpc",
    checkpoint: str | None = None,
) -> int:
    from sidecar.operations.experiment_report import markdown, read_outcomes, report, write_report

    # The per-session lines are for operators; here the report at the end says it all.
    logging.getLogger("metabrain").setLevel(logging.WARNING)
    experiment = parse_experiment(f"demo:{arms}")
    pop = load_population(population, seed).players(players)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as recs:
        sc = start_in_thread(
            ServeConfig(
                grpc_port=0,
                ws_port=0,
                checkpoint=checkpoint,
                engine=EngineConfig(device="cpu"),
                experiments=(experiment,),
                # Simulated players run faster than real time: a game's per-session frame limit would
                # refuse most of their frames (and with them the quits the report counts).
                limits=Limits(max_frames_per_second=1e6),
                record_dir=recs,
                state_dir=str(out / "state"),
            )
        )
        try:
            print(sc.sidecar.ports_line() + f" model={sc.sidecar.checkpoint.version}", flush=True)
            print(f"experiment demo: {', '.join(f'{a.label} ({a.weight:.0%})' for a in experiment.arms)}", flush=True)
            target = sc.grpc_address if transport == "grpc" else sc.ws_url
            cfg = ClientConfig(
                target=target, transport=transport, realtime=False, max_seconds=seconds, seed=seed, consent=True
            )
            frames = players * seconds * cfg.telemetry_hz
            with tqdm(total=int(frames), desc=f"{players} players, up to {seconds:g} game s each", unit="frame") as bar:
                rows = asyncio.run(play_many(pop, cfg, on_frame=lambda: bar.update(1)))
        finally:
            sc.stop()
        outcomes = read_outcomes(sorted(Path(recs).glob("*.mbrec")))
    curves_png(rows, out / "demo.png", f"metabrain demo — {rows[0].model_version}: difficulty per player, by arm")
    print()
    seen = sorted({o.arm for o in outcomes})
    paths = {}
    if len(seen) >= 2:
        rep = report(outcomes, control=experiment.arms[0].label, boot=1000)
        paths = write_report(outcomes, rep, out)
        print(markdown(rep))
    else:
        # A handful of players can all hash into one arm; there is nothing to compare then.
        print(f"all {players} players were assigned to {seen}: no comparison (try --players 48)")
    missing = sum(r.frames_sent - r.guidance - r.superseded for r in rows)
    print(
        f"frames sent {sum(r.frames_sent for r in rows)}, guidance {sum(r.guidance for r in rows)}, "
        f"superseded {sum(r.superseded for r in rows)}, unanswered {missing}"
    )
    if missing:
        # Unanswered frames were refused or lost: the recordings (and the report) miss them.
        print(f"metabrain demo: {missing} frames were not answered; the report above is incomplete", flush=True)
        return 1
    survival = f"{paths['png']} (survival per arm), {paths['markdown']} and " if paths else ""
    print(f"wrote {survival}{out / 'demo.png'} (difficulty per player)")
    return 0
