"""`metabrain demo`: the sidecar with the bundled model, playing a mixed population over gRPC in real time."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from tqdm import tqdm

from sidecar.engine.engine import EngineConfig
from sidecar.inprocess import start_in_thread
from sidecar.server import ServeConfig
from sim.client import ClientConfig, play_many
from sim.players import load_population
from sim.report import curves_png, session_table


def run_demo(
    players: int = 8,
    seconds: float = 30.0,
    population: str = "default",
    seed: int = 7,
    out_dir: str = "demo-out",
    policy: str = "predictive",
    transport: str = "grpc",
    checkpoint: str | None = None,
) -> int:
    # The per-session lines are for operators; here the table at the end says it all.
    logging.getLogger("metabrain.service").setLevel(logging.WARNING)
    sc = start_in_thread(
        ServeConfig(
            grpc_port=0, ws_port=0, checkpoint=checkpoint, engine=EngineConfig(device="cpu", default_policy=policy)
        )
    )
    try:
        print(sc.sidecar.ports_line() + f" model={sc.sidecar.checkpoint.version}", flush=True)
        pop = load_population(population, seed).players(players)
        target = sc.grpc_address if transport == "grpc" else sc.ws_url
        cfg = ClientConfig(target=target, transport=transport, realtime=True, max_seconds=seconds, seed=seed)
        frames = players * seconds * cfg.telemetry_hz
        with tqdm(total=int(frames), desc=f"playing {players} players for {seconds:g} s", unit="frame") as bar:
            rows = asyncio.run(play_many(pop, cfg, on_frame=lambda: bar.update(1)))
    finally:
        sc.stop()
    print()
    print(session_table(rows))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    png = Path(out_dir) / "demo.png"
    curves_png(rows, png, f"metabrain demo — {rows[0].model_version}, policy {rows[0].policy}")
    print(f"\nwrote {png}")
    missing = sum(r.frames_sent - r.guidance - r.superseded for r in rows)
    print(
        f"frames sent {sum(r.frames_sent for r in rows)}, guidance {sum(r.guidance for r in rows)}, "
        f"superseded {sum(r.superseded for r in rows)}, unanswered {missing}"
    )
    return 0
