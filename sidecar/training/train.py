"""`metabrain train`: truncated backpropagation through time over the streaming model.

Sessions are laid end to end in B parallel lanes; each step takes the next chunk of T frames from
every lane, carries each lane's recurrent state from its previous chunk (detached: truncated BPTT)
and zeroes it where a new session starts. A session never shares a chunk with another, so the GRU
runs over whole chunks in one call. AdamW, cosine or plateau learning-rate schedule, dropout and
weight decay, early stopping on the validation split. Runs under torchrun with
DistributedDataParallel (gloo on CPU, nccl on GPU): each rank takes its share of the lanes.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sidecar.model.checkpoint import save_checkpoint
from sidecar.model.player_model import ModelConfig, PlayerModel, StepOutput
from sidecar.training.batches import Batch, Chunk, batches, make_lanes
from sidecar.training.dataset import SessionExamples, examples_model_hz, load_examples, split_of
from sidecar.training.value_fit import fit_value_surface


@dataclass
class TrainConfig:
    data: str
    out: str
    version: str = "metabrain-gru-s"
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.1
    weight_decay: float = 1e-4
    lr: float = 3e-3
    schedule: str = "cosine"  # or "plateau"
    epochs: int = 20
    patience: int = 4
    lanes: int = 96
    chunk: int = 64
    seed: int = 0
    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_steps: int = 0  # stop after this many steps in total (tests); 0 = no limit
    threads: int = 0  # torch threads; 0 = leave as is
    value_members: int = 20  # bootstrap replicates of the value surface (training/value_fit.py)
    # Fine-tuning: start from this checkpoint's weights (its architecture wins over the settings above)
    # and train only `trainable`: "all", "heads" (the trunk frozen) or "none" (only the value surface is
    # refitted, shrunk toward the checkpoint's own: adapting the director to a game's recordings).
    init: str = ""
    trainable: str = "all"
    rank_digest: str = ""  # write each rank's final weight digest to <this>.rank<N> (checks DDP agreement)
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {
            "fail": 1.0,
            "quit": 1.0,
            "frustration": 0.3,
            "engagement": 0.3,
            "skill": 0.3,
            "npc": 0.5,
        }
    )


def losses(out: StepOutput, batch: Batch) -> dict[str, torch.Tensor]:
    v = batch.valid.float()
    denom = v.sum().clamp_min(1.0)
    t = batch.targets

    def masked(x: torch.Tensor) -> torch.Tensor:
        return (x * v).sum() / denom

    result = {
        "fail": masked(F.binary_cross_entropy_with_logits(out.fail_logits[..., 0], t["fail"], reduction="none")),
        "quit": masked(F.binary_cross_entropy_with_logits(out.quit_logits[..., 1], t["quit"], reduction="none")),
    }
    for name, pred in (("frustration", out.frustration), ("engagement", out.engagement), ("skill", out.skill)):
        result[name] = masked(F.binary_cross_entropy(pred.clamp(1e-5, 1 - 1e-5), t[name], reduction="none"))
    tactic = t["npc_tactic"]
    seen = (tactic >= 0) & batch.valid.unsqueeze(-1)
    logit = out.npc_logits.gather(-1, tactic.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # [B, T, N]
    npc = F.binary_cross_entropy_with_logits(logit, t["npc_hit"], reduction="none")
    result["npc"] = (npc * seen).sum() / seen.sum().clamp_min(1.0)
    return result


def run_epoch(
    model: nn.Module,
    sessions: list[SessionExamples],
    lanes: list[list[Chunk]],
    cfg: TrainConfig,
    device: torch.device,
    opt: torch.optim.Optimizer | None,
    bar: tqdm | None = None,
    step_budget: list[int] | None = None,
    steps: int | None = None,
    sched: Any = None,
) -> dict[str, float]:
    """One pass over the lanes; trains when `opt` is given (and steps a per-batch `sched` after it)."""
    core: PlayerModel = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model  # type: ignore[assignment]
    h = core.initial_state(len(lanes), device)
    totals: dict[str, float] = {}
    n = 0
    train = opt is not None
    model.train(train)
    for batch in batches(sessions, lanes, cfg.chunk, device, steps):
        h = h * (~batch.reset).float()[None, :, None]
        with torch.set_grad_enabled(train):
            out = model(batch.players, batch.npcs, batch.npc_mask, h, batch.levels)
            parts = losses(out, batch)
            loss = sum(cfg.loss_weights[k] * v for k, v in parts.items())
        if train:
            assert opt is not None
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if sched is not None and sched.last_epoch + 1 < sched.total_steps:
                sched.step()
        h = out.h.detach()
        for k, v in parts.items():
            totals[k] = totals.get(k, 0.0) + float(v.detach())
        totals["loss"] = totals.get("loss", 0.0) + float(loss.detach())  # type: ignore[union-attr]
        n += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{totals['loss'] / n:.4f}")
        if step_budget is not None:
            step_budget[0] -= 1
            if step_budget[0] <= 0:
                break
    return {k: v / max(n, 1) for k, v in totals.items()}


def trainable_parameters(model: PlayerModel, which: str) -> list[nn.Parameter]:
    """The parameters to train ("all", "heads": all but the NPC encoder, input and GRU trunk, "none": the
    network stays as it is and only the value surface is refitted); the others are frozen."""
    trunk = ("npc_enc.", "npc_query.", "input_proj.", "core.", "core_norm.")
    if which not in ("all", "heads", "none"):
        raise ValueError(f"trainable must be all, heads or none, got {which!r}")
    chosen = []
    for name, p in model.named_parameters():
        keep = which == "all" or (which == "heads" and not name.startswith(trunk))
        p.requires_grad_(keep)
        if keep:
            chosen.append(p)
    return chosen


def split_sessions(sessions: list[SessionExamples], cfg: TrainConfig) -> dict[str, list[SessionExamples]]:
    out: dict[str, list[SessionExamples]] = {"train": [], "val": [], "test": []}
    for s in sessions:
        out[split_of(s.name, cfg.split_seed, cfg.val_fraction, cfg.test_fraction)].append(s)
    return out


def train(cfg: TrainConfig) -> dict[str, Any]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    if distributed:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    splits = split_sessions(load_examples(cfg.data), cfg)
    train_s, val_s = splits["train"], splits["val"] or splits["train"][:1]
    had_surface = False
    if cfg.init:
        from sidecar.model.checkpoint import load_checkpoint

        base = load_checkpoint(cfg.init).model
        had_surface = base.cfg.value_members > 0
        if not had_surface and cfg.value_members > 0:
            base.reset_value_surface(cfg.value_members)  # made before the surface: fit one from scratch
        model: nn.Module = base.train().to(device)
    else:
        model_cfg = ModelConfig(
            hidden=cfg.hidden, layers=cfg.layers, dropout=cfg.dropout, value_members=cfg.value_members
        )
        model = PlayerModel(model_cfg).to(device)
    assert isinstance(model, PlayerModel)
    params = trainable_parameters(model, cfg.trainable)
    if distributed:
        model = nn.parallel.DistributedDataParallel(model)
    core: PlayerModel = model.module if distributed else model  # type: ignore[assignment]
    show = rank == 0
    t0 = time.time()
    best, history = math.inf, list[dict[str, Any]]()
    if params:  # "none": the network stays as it is; only the value surface is refitted below
        best, history = _fit_network(model, core, params, train_s, val_s, cfg, device, rank, world, rng)
    from sidecar.training.calibrate import calibrate

    calibration = calibrate(core, val_s, cfg.chunk) if cfg.trainable != "none" else {}
    value_fit = fit_value_surface(
        core, train_s + val_s, examples_model_hz(cfg.data), cfg.seed, shrink_to_model=bool(cfg.init) and had_surface
    )
    if show:
        print(f"value surface: {value_fit['points']:.0f} points from {value_fit.get('sessions', 0):.0f} sessions")
    report = {
        "calibration": calibration,
        "value_fit": value_fit,
        "config": asdict(cfg),
        "history": history,
        "best_val_loss": best,
        "seconds": time.time() - t0,
        "sessions": {k: len(v) for k, v in splits.items()},
        "world_size": world,
    }
    if cfg.rank_digest:
        Path(f"{cfg.rank_digest}.rank{rank}").write_text(weights_digest(core))
    if rank == 0:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(
            cfg.out,
            core,
            f"{cfg.version} (trained)",
            trained=True,
            metrics={"best_val_loss": best},
            extra={"train": report, "model_rate_hz": examples_model_hz(cfg.data)},
        )
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return report


def _fit_network(
    model: nn.Module,
    core: PlayerModel,
    params: list[nn.Parameter],
    train_s: list[SessionExamples],
    val_s: list[SessionExamples],
    cfg: TrainConfig,
    device: torch.device,
    rank: int,
    world: int,
    rng: random.Random,
) -> tuple[float, list[dict[str, Any]]]:
    """TBPTT epochs with early stopping on the validation loss; leaves the best weights in `core`."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    all_lanes = make_lanes([len(s) for s in train_s], cfg.lanes * world, cfg.chunk, rng)
    lanes = all_lanes[rank::world]
    steps_per_epoch = max(len(lane) for lane in all_lanes)
    total = steps_per_epoch * cfg.epochs
    if cfg.schedule == "cosine":
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1), pct_start=0.05)
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=1)
    val_lanes = make_lanes([len(s) for s in val_s], min(cfg.lanes, max(len(val_s), 1)), cfg.chunk, random.Random(1))
    best, best_state, bad, history = math.inf, None, 0, []
    budget = [cfg.max_steps] if cfg.max_steps else None
    show = rank == 0
    for epoch in range(cfg.epochs):
        bar = tqdm(
            total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", disable=not show, leave=False
        )
        per_batch = sched if cfg.schedule == "cosine" else None
        tr = run_epoch(model, train_s, lanes, cfg, device, opt, bar, budget, steps_per_epoch, per_batch)
        bar.close()
        val = run_epoch(core, val_s, val_lanes, cfg, device, None)
        if cfg.schedule != "cosine":
            sched.step(val["loss"])
        history.append({"epoch": epoch + 1, "train": tr, "val": val, "lr": opt.param_groups[0]["lr"]})
        if show:
            print(
                f"epoch {epoch + 1}: train {tr['loss']:.4f} val {val['loss']:.4f} (fail {val['fail']:.4f} "
                f"quit {val['quit']:.4f} npc {val['npc']:.4f})",
                flush=True,
            )
        if val["loss"] < best - 1e-4:
            best, bad = val["loss"], 0
            best_state = {k: v.detach().clone() for k, v in core.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                if show:
                    print(f"early stop: no validation improvement for {cfg.patience} epochs", flush=True)
                break
        if budget is not None and budget[0] <= 0:
            break
    if best_state is not None:
        core.load_state_dict(best_state)
    return best, history


def weights_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()
