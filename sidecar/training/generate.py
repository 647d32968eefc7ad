"""`metabrain dataset generate`: simulated sessions recorded for training, in parallel shards."""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sidecar.orphans import die_with_parent

# Policies mixed so the data covers every difficulty, and NPC tactics randomised so the NPC head
# sees what each tactic does.
DATA_POLICIES = ["random_walk", "random_walk", "rubber_band", "intensity", "static"]


@dataclass
class GenerateConfig:
    out: str
    sessions: int = 800
    population: str = "default"
    seed: int = 1
    workers: int = 2
    max_seconds: float = 1200.0
    frame_every: int = 6


def _shard(args: tuple[GenerateConfig, int, int, Any]) -> int:
    cfg, shard, n, queue = args
    from sim.offline import OfflineConfig, run_offline
    from sim.players import load_population

    pop = load_population(cfg.population, cfg.seed * 100 + shard)
    ocfg = OfflineConfig(
        sessions=n,
        max_seconds=cfg.max_seconds,
        frame_every=cfg.frame_every,
        seed=cfg.seed * 100 + shard,
        policies=DATA_POLICIES,
        random_tactics=True,
        random_static_levels=True,
        record_dir=cfg.out,
        npc_hints=False,
    )
    res = run_offline(pop, ocfg, progress=lambda k: queue.put(k))
    return len(res)


def generate(cfg: GenerateConfig) -> int:
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    per = [cfg.sessions // cfg.workers + (1 if i < cfg.sessions % cfg.workers else 0) for i in range(cfg.workers)]
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        queue = manager.Queue()
        with ctx.Pool(cfg.workers, initializer=die_with_parent) as pool:
            result = pool.map_async(_shard, [(cfg, i, n, queue) for i, n in enumerate(per)])
            with tqdm(total=cfg.sessions, desc="simulating sessions", unit="session") as bar:
                done = 0
                while done < cfg.sessions:
                    done += queue.get()
                    bar.update(1)
            return sum(result.get())
