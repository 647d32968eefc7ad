"""`metabrain dataset generate`: simulated sessions recorded for training, in parallel shards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sidecar.serving.worker_pool import report, run_pool
from sim.offline import OfflineConfig, run_offline
from sim.populations import load_population

# Policies mixed so the data covers every difficulty, and NPC tactics randomised so the NPC head
# sees what each tactic does. The piecewise sessions' level switches teach the value heads.
DATA_POLICIES = ["piecewise", "piecewise", "random_walk", "rubber_band", "intensity", "static"]


@dataclass
class GenerateConfig:
    out: str
    sessions: int = 800
    population: str = "default"
    seed: int = 1
    workers: int = 2
    max_seconds: float = 1200.0
    telemetry_hz: float = 5.0  # frames a second the simulated game sends
    policies: tuple[str, ...] = tuple(DATA_POLICIES)  # drawn in turn; `piecewise` alone: switch points


def _shard(args: tuple[GenerateConfig, int, int]) -> int:
    cfg, shard, n = args
    pop = load_population(cfg.population, cfg.seed * 100 + shard)
    ocfg = OfflineConfig(
        sessions=n,
        max_seconds=cfg.max_seconds,
        telemetry_hz=cfg.telemetry_hz,
        seed=cfg.seed * 100 + shard,
        policies=list(cfg.policies),
        random_tactics=True,
        random_static_levels=True,
        record_dir=cfg.out,
        npc_hints=False,
    )
    res = run_offline(pop, ocfg, progress=report)
    return len(res)


def generate(cfg: GenerateConfig) -> int:
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    per = [cfg.sessions // cfg.workers + (1 if i < cfg.sessions % cfg.workers else 0) for i in range(cfg.workers)]
    tasks = [(cfg, i, n) for i, n in enumerate(per)]
    return sum(run_pool(_shard, tasks, cfg.workers, cfg.sessions, "simulating sessions", "session"))
