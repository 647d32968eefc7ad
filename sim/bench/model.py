"""`metabrain bench-model`: model-step time per tick for several batch sizes, eager vs CUDA graphs.

Each tick is the runner's whole step: zero new slots, gather states, one model step, scatter, copy
predictions to the host. Reported as the median of repeated ticks after warm-up; the eager time at
batch 1 is the baseline every other figure is divided by.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sidecar.engine.plan import StepPlan, hint_pairs
from sidecar.engine.runner import Runner
from sidecar.features import MAX_MODEL_NPCS, NPC_DIM, PLAYER_DIM
from sidecar.model.player_model import ModelConfig, PlayerModel, parameter_count


def synthetic_plan(batch: int, levels: int = 12, seed: int = 0) -> StepPlan:
    rng = np.random.default_rng(seed)
    mask = np.zeros((batch, MAX_MODEL_NPCS), bool)
    mask[:, :6] = True
    ids = np.broadcast_to(np.arange(MAX_MODEL_NPCS), mask.shape)
    hint_rows, hint_slots, hint_ids = hint_pairs(mask, ids, np.arange(batch))  # one player per session
    return StepPlan(
        tick=0,
        entries=[],
        slots=rng.permutation(batch).astype(np.int64),
        reset_slots=np.zeros(0, np.int64),
        players=rng.normal(size=(batch, PLAYER_DIM)).astype(np.float32),
        npcs=rng.normal(size=(batch, MAX_MODEL_NPCS, NPC_DIM)).astype(np.float32),
        npc_mask=mask,
        # The scheduler's: the candidate grid shared by every row, and each session's own level now.
        levels=np.concatenate(
            [np.tile(np.linspace(0.0, 1.0, levels - 1), (batch, 1)), rng.uniform(size=(batch, 1))], axis=1
        ).astype(np.float32),
        explain_rows=np.zeros(0, np.int64),
        hint_rows=hint_rows,
        hint_slots=hint_slots,
        hint_ids=hint_ids,
    )


def time_ticks(runner: Runner, plan: StepPlan, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        runner.step(plan)
    times = []
    for _ in range(repeats):
        if runner.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        runner.step(plan)  # returns host numpy arrays: the copy back synchronizes
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(device: str, batches: list[int], config: str, repeats: int, dtype: torch.dtype) -> dict[str, Any]:
    from sidecar.model.checkpoint import load_checkpoint

    # "default" is the shipped model (its own configuration), as the whole-tick bench and the sidecar use.
    model = PlayerModel(ModelConfig.gpu_large()).eval() if config == "large" else load_checkpoint(None).model
    rows: list[dict[str, Any]] = []
    modes = ["eager"] + (["cuda_graph"] if device.startswith("cuda") else [])
    with tqdm(total=len(batches) * len(modes), desc=f"bench {config} on {device}", unit="case") as bar:
        for mode in modes:
            runner = Runner(model, device, max_slots=max(batches), cuda_graphs=mode == "cuda_graph", dtype=dtype)
            for b in batches:
                n = repeats if b <= 1024 else max(repeats // 4, 5)
                t = time_ticks(runner, synthetic_plan(b), n)
                rows.append({"mode": mode, "batch": b, "tick_ms": t * 1e3, "us_per_player": t * 1e6 / b})
                bar.update(1)
    base = next(r["tick_ms"] for r in rows if r["mode"] == "eager" and r["batch"] == batches[0])
    for r in rows:
        r["vs_eager_b1"] = r["tick_ms"] / base
    return {
        "device": device,
        "device_name": (
            torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine()
        ),
        "config": config,
        "parameters": parameter_count(model),
        "dtype": str(dtype),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "rows": rows,
    }


def whole_ticks(device: str, sessions: list[int], config: str, repeats: int, bf16: bool) -> dict[str, Any]:
    """The engine's whole tick for N sessions (one simulated player each, real validated frames):
    featurizing the tick's frames, scheduler plan, model step, every session's director and its
    guidance message."""
    from sidecar.engine.engine import Engine, EngineConfig
    from sidecar.model.checkpoint import Checkpoint, load_checkpoint
    from sim.bench.sessions import SimulatedSessions

    if config == "large":
        checkpoint = Checkpoint(PlayerModel(ModelConfig.gpu_large()).eval(), "large (untrained)", trained=False)
    else:
        checkpoint = load_checkpoint(None)
    n_max = max(sessions)
    engine = Engine(checkpoint, EngineConfig(device=device, max_slots=n_max, max_batch=n_max, bf16=bf16))
    sims = SimulatedSessions(engine, n_max, progress=True)
    rows: list[dict[str, Any]] = []
    model_s: list[float] = []
    engine.on_tick.append(lambda st: model_s.append(st.model_seconds))
    t_game = 1.0
    for n in tqdm(sessions, desc=f"whole tick, {config} on {device}", unit="case"):
        ticks, models = [], []
        for r in range(repeats + 2):
            t_game += 0.1
            frames = sims.receive(t_game, n)
            model_s.clear()
            t0 = time.perf_counter()
            out = engine.step_now(frames)
            dt = time.perf_counter() - t0
            assert len(out) == n
            if r >= 2:  # warm-up: CUDA graph capture, allocator
                ticks.append(dt)
                models.append(sum(model_s))
        tick = statistics.median(ticks)
        rows.append(
            {
                "sessions": n,
                "model_ms": statistics.median(models) * 1e3,
                "tick_ms": tick * 1e3,
                "frames_per_s": n / tick,
            }
        )
    return {
        "device": device,
        "config": config,
        "parameters": parameter_count(checkpoint.model),
        "bf16": bf16,
        "torch": torch.__version__,
        "machine": platform.platform(),
        "whole_tick_rows": rows,
    }


def cmd(a: argparse.Namespace) -> int:
    device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(a.threads)
    dtype = torch.bfloat16 if a.bf16 else torch.float32
    if a.whole_tick:
        sessions = [int(b) for b in a.batches.split(",")]
        report = whole_ticks(device, sessions, a.config, a.repeats, a.bf16)
        print(f"{report['config']} model, {report['parameters']:,} parameters, bf16={a.bf16}, on {device}")
        print(f"{'sessions':>9} {'model ms':>9} {'whole tick ms':>14} {'frames/s':>10}")
        for r in report["whole_tick_rows"]:
            print(f"{r['sessions']:>9} {r['model_ms']:>9.3f} {r['tick_ms']:>14.3f} {r['frames_per_s']:>10.0f}")
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=2))
        return 0
    report = bench(device, [int(b) for b in a.batches.split(",")], a.config, a.repeats, dtype)
    print(
        f"{report['config']} model, {report['parameters']:,} parameters, {report['dtype']}, on {device} "
        f"({report['device_name']}), torch {report['torch']}, {report['threads']} threads"
    )
    print(f"{'mode':>10} {'batch':>6} {'tick ms':>9} {'us/player':>10} {'x eager b1':>10}")
    for r in report["rows"]:
        print(
            f"{r['mode']:>10} {r['batch']:>6} {r['tick_ms']:>9.3f} {r['us_per_player']:>10.2f} "
            f"{r['vs_eager_b1']:>10.2f}"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
    return 0
