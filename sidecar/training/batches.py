"""Truncated-BPTT batches: sessions laid end to end in lanes, cut into chunks of time steps, each lane
carrying its recurrent state across chunks (reset where a new session starts); and `rollout`, the
model over whole sessions in evaluation mode (for calibration and evaluation); `forward_session`, the
model over one session from a fresh state (the value surface's and the switch points' reads)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sidecar.model.player_model import PlayerModel, StepOutput
from sidecar.training.dataset import SessionExamples

__all__ = ["Batch", "Chunk", "batches", "forward_session", "make_lanes", "rollout"]


# -- lanes ------------------------------------------------------------------------------------

Chunk = tuple[int, int, int]  # (session index, start, end)


def make_lanes(lengths: list[int], n_lanes: int, chunk: int, rng: random.Random) -> list[list[Chunk]]:
    order = list(range(len(lengths)))
    rng.shuffle(order)
    lanes: list[list[Chunk]] = [[] for _ in range(n_lanes)]
    for s in order:  # longest-processing-time-ish: append each session to the shortest lane
        lane = min(lanes, key=len)
        for a in range(0, lengths[s], chunk):
            lane.append((s, a, min(a + chunk, lengths[s])))
    return lanes


@dataclass
class Batch:
    players: torch.Tensor  # [B, T, Fp]
    npcs: torch.Tensor  # [B, T, N, Fn]
    npc_mask: torch.Tensor  # [B, T, N]
    levels: torch.Tensor  # [B, T, 3]: level_fail, level_quit, level_value
    valid: torch.Tensor  # [B, T] bool
    reset: torch.Tensor  # [B] bool: the lane starts a new session (zero its state)
    targets: dict[str, torch.Tensor]
    session: torch.Tensor  # [B] int64: each lane's session index this step (-1 where the lane is idle)


def batches(
    sessions: list[SessionExamples],
    lanes: list[list[Chunk]],
    chunk: int,
    device: torch.device,
    steps: int | None = None,
) -> Iterator[Batch]:
    """Every rank must take the same number of steps under DDP: `steps` pads short lane sets."""
    steps = steps if steps is not None else max((len(lane) for lane in lanes), default=0)
    b = len(lanes)
    s0 = sessions[0]
    fp, (n, fn) = s0.players.shape[1], s0.npcs.shape[1:]
    for k in range(steps):
        players = np.zeros((b, chunk, fp), np.float32)
        npcs = np.zeros((b, chunk, n, fn), np.float32)
        mask = np.zeros((b, chunk, n), bool)
        levels = np.zeros((b, chunk, 3), np.float32)
        valid = np.zeros((b, chunk), bool)
        reset = np.ones(b, bool)
        session = np.full(b, -1, np.int64)
        names = ("fail", "quit", "frustration", "engagement", "skill", "played")
        tg = {name: np.zeros((b, chunk), np.float32) for name in names}
        value_mask = np.zeros((b, chunk), bool)
        npc_hit = np.zeros((b, chunk, n), np.float32)
        npc_tactic = np.full((b, chunk, n), -1, np.int64)
        for i, lane in enumerate(lanes):
            if k >= len(lane):
                continue
            si, a, e = lane[k]
            s = sessions[si]
            m = e - a
            players[i, :m] = s.players[a:e]
            npcs[i, :m] = s.npcs[a:e]
            mask[i, :m] = s.npc_mask[a:e]
            levels[i, :m, 0] = s.level_fail[a:e]
            levels[i, :m, 1] = s.level_quit[a:e]
            levels[i, :m, 2] = s.level_value[a:e]
            valid[i, :m] = True
            value_mask[i, :m] = s.value_mask[a:e]
            reset[i] = a == 0
            session[i] = si
            for name in tg:
                tg[name][i, :m] = getattr(s, name)[a:e]
            npc_hit[i, :m] = s.npc_hit[a:e]
            npc_tactic[i, :m] = s.npc_tactic[a:e]
        t = {name: torch.from_numpy(v).to(device) for name, v in tg.items()}
        t["npc_hit"] = torch.from_numpy(npc_hit).to(device)
        t["npc_tactic"] = torch.from_numpy(npc_tactic).to(device)
        t["value_mask"] = torch.from_numpy(value_mask).to(device)
        yield Batch(
            torch.from_numpy(players).to(device),
            torch.from_numpy(npcs).to(device),
            torch.from_numpy(mask).to(device),
            torch.from_numpy(levels).to(device),
            torch.from_numpy(valid).to(device),
            torch.from_numpy(reset).to(device),
            t,
            torch.from_numpy(session).to(device),
        )


@torch.no_grad()
def rollout(
    model: PlayerModel, sessions: list[SessionExamples], chunk: int = 64, lanes: int = 64
) -> Iterator[tuple[Batch, StepOutput]]:
    """Run the model over whole sessions in evaluation mode, chunk by chunk, carrying each lane's state."""
    model.eval()
    lane_list = make_lanes([len(s) for s in sessions], min(lanes, len(sessions)), chunk, random.Random(0))
    h = model.initial_state(len(lane_list))
    for b in batches(sessions, lane_list, chunk, torch.device("cpu")):
        h = h * (~b.reset).float()[None, :, None]
        out = model(b.players, b.npcs, b.npc_mask, h, b.levels)
        h = out.h
        yield b, out


def forward_session(model: PlayerModel, s: SessionExamples, steps: int | None = None) -> StepOutput:
    """The model over one session's first `steps` steps (all: None) from a fresh state, as one batch of
    one; the risk heads scored at the levels of its labels' horizons. The caller sets eval and no-grad."""
    t = len(s) if steps is None else steps
    levels = np.stack([s.level_fail, s.level_quit, s.level_value], -1)[:t]  # [T, 3]
    return model(
        torch.from_numpy(s.players[:t])[None],
        torch.from_numpy(s.npcs[:t].astype(np.float32))[None],
        torch.from_numpy(s.npc_mask[:t])[None],
        model.initial_state(1),
        torch.from_numpy(levels)[None],
    )
