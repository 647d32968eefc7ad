"""The streaming player model: one file, top to bottom.

Each tick the model takes every active player's features (their own telemetry plus the NPCs around
them), advances that player's recurrent state by one step, and predicts:

  p_fail       the player fails (dies) within `fail_horizon_s`, GIVEN a difficulty level
  p_quit       the player quits within `quit_horizon_s`, GIVEN a difficulty level
  frustration, engagement, skill   in [0, 1]
  npc tactics  for every NPC near the player: the chance that NPC lands damage on the player within
               `npc_horizon_s` if it follows each tactic (the hint policy picks from these)
  value        the share of the next `value_horizon_s` the player goes on playing, GIVEN a difficulty
               level held over that time, from each of `value_members` heads trained on bootstrap
               resamples: their mean is the estimate, their spread how sure it is (the learned
               director acts only where they agree)

Conditioning p_fail and p_quit on a difficulty level is what lets the predictive director ask
"what if": it scores several candidate levels for every player in the same batch and picks one.

Shapes: B players in the batch, T time steps, N = MAX_MODEL_NPCS, K candidate levels,
L GRU layers, H hidden size, E NPC embedding size, A = number of tactics, M value heads.
The streaming step is the sequence forward with T = 1, so training and serving share one path.
Serving may pass `npc_pairs`, the (player, NPC) positions whose tactics the director will use (each
NPC once): then only present NPCs are encoded and the tactic head runs at those positions alone. The
other outputs are the same; it skips padding and pairs nobody asks about (a CPU runner does this when
they are most of the slots, as in a multiplayer tick, where the tactic head was half the step).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sidecar.features import MAX_MODEL_NPCS, NPC_DIM, PLAYER_DIM, P

# Tactics the NPC head scores, in NpcTactic enum order starting at NPC_TACTIC_HOLD (=1).
TACTICS = ("hold", "advance", "flank", "retreat", "regroup", "pressure")
DIFFICULTY_COLUMN = P["difficulty"]


@dataclass
class ModelConfig:
    player_dim: int = PLAYER_DIM
    npc_dim: int = NPC_DIM
    max_npcs: int = MAX_MODEL_NPCS
    hidden: int = 128  # H
    layers: int = 1  # L
    npc_embed: int = 32  # E
    head_hidden: int = 64
    dropout: float = 0.1
    fail_horizon_s: float = 10.0
    quit_horizon_s: float = 60.0
    npc_horizon_s: float = 5.0
    value_horizon_s: float = 300.0
    value_members: int = 0  # M bootstrap replicates of the value surface; 0: none (older checkpoints)
    value_grid: int = 21  # G: the surface's points per axis (skill estimate x level)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def gpu_large(cls) -> ModelConfig:
        """About 100M parameters: 4 layers x 2048 (the H200 configuration)."""
        return cls(hidden=2048, layers=4, npc_embed=256, head_hidden=1024)


@dataclass
class StepOutput:
    h: Tensor  # [L, B, H] new recurrent state
    fail_logits: Tensor  # [B, T, K]
    quit_logits: Tensor  # [B, T, K]
    frustration: Tensor  # [B, T]
    engagement: Tensor  # [B, T]
    skill: Tensor  # [B, T]
    npc_logits: Tensor  # [B, T, N, A]; [P, A] at npc_pairs when they are given
    value_logits: Tensor  # [B, T, K, M] (M = 0 without a value head)


class PlayerModel(nn.Module):
    risk_scale: Tensor  # [2] buffers: Platt scaling of the (fail, quit) logits
    risk_bias: Tensor
    value_surface: Tensor  # [M, G, G] buffer: value logits over (skill estimate, level)

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        E, H = cfg.npc_embed, cfg.hidden
        # NPC set encoder and attention pooling with the player's own features as the query.
        self.npc_enc = nn.Sequential(nn.Linear(cfg.npc_dim, E), nn.GELU(), nn.Linear(E, E))
        self.npc_query = nn.Linear(cfg.player_dim, E)
        self.input_proj = nn.Sequential(nn.Linear(cfg.player_dim + 2 * E, H), nn.GELU(), nn.Dropout(cfg.dropout))
        self.core = nn.GRU(
            H, H, num_layers=cfg.layers, batch_first=True, dropout=cfg.dropout if cfg.layers > 1 else 0.0
        )
        self.core_norm = nn.LayerNorm(H)
        # Difficulty-conditioned risk heads: [h, embed(d)] -> (fail, quit) logits.
        self.diff_embed = nn.Sequential(nn.Linear(1, 16), nn.GELU())
        self.risk_head = nn.Sequential(
            nn.Linear(H + 16, cfg.head_hidden), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.head_hidden, 2)
        )
        self.state_head = nn.Sequential(nn.Linear(H, cfg.head_hidden), nn.GELU(), nn.Linear(cfg.head_hidden, 3))
        # Post-hoc calibration of the two risk logits (Platt scaling, fitted on the validation split).
        self.register_buffer("risk_scale", torch.ones(2))
        self.register_buffer("risk_bias", torch.zeros(2))
        # The value surface: logits of the share of the next value_horizon_s a player goes on playing, by
        # (the model's own skill estimate, level held), per bootstrap replicate. Not trained with the
        # network: fitted afterwards from sessions whose level was set at random (training/value_fit.py).
        G = cfg.value_grid
        self.register_buffer("value_surface", torch.zeros(cfg.value_members, G, G))  # [M, G, G]
        self.npc_from_h = nn.Linear(H, E)
        self.npc_head = nn.Sequential(
            nn.Linear(2 * E, cfg.head_hidden), nn.GELU(), nn.Linear(cfg.head_hidden, len(TACTICS))
        )

    def reset_value_surface(self, members: int) -> None:
        """A fresh (zero) surface of `members` replicates: for fitting one to a checkpoint made before
        the surface existed, or with another number of replicates."""
        G = self.cfg.value_grid
        self.cfg = replace(self.cfg, value_members=members)
        self.value_surface = torch.zeros(members, G, G, device=self.value_surface.device)  # [M, G, G]

    def initial_state(
        self, batch: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> Tensor:
        return torch.zeros(self.cfg.layers, batch, self.cfg.hidden, device=device, dtype=dtype)  # [L, B, H]

    def forward(
        self,
        players: Tensor,  # [B, T, Fp]
        npcs: Tensor,  # [B, T, N, Fn]
        npc_mask: Tensor,  # [B, T, N] bool
        h0: Tensor,  # [L, B, H]
        levels: Tensor,  # [B, T, K] difficulty levels at which to score p_fail / p_quit
        npc_pairs: Tensor | None = None,  # [P] int64 flat indices into [B, T, N]: score only these NPCs
    ) -> StepOutput:
        e = self.npc_enc(npcs) if npc_pairs is None else self._encode_present(npcs, npc_mask)  # [B, T, N, E]
        q = self.npc_query(players)  # [B, T, E]
        scores = torch.einsum("btne,bte->btn", e, q) / e.shape[-1] ** 0.5  # [B, T, N]
        scores = scores.masked_fill(~npc_mask, -1e4)
        attn = torch.softmax(scores, dim=-1) * npc_mask  # [B, T, N]; all zeros when no NPC
        pooled_attn = torch.einsum("btn,btne->bte", attn, e)  # [B, T, E]
        m = npc_mask.unsqueeze(-1).to(e.dtype)
        pooled_max = (e * m - (1 - m) * 1e4).amax(dim=2).clamp_min(0.0) * m.amax(dim=2)  # [B, T, E]
        x = self.input_proj(torch.cat([players, pooled_attn, pooled_max], dim=-1))  # [B, T, H]
        out, h = self.core(x, h0)  # out [B, T, H], h [L, B, H]
        z = self.core_norm(out)  # [B, T, H]

        d = self.diff_embed(levels.unsqueeze(-1))  # [B, T, K, 16]
        # risk_head(cat([z, d])) with its first layer split: z's part once per row, d's part per level,
        # summed by broadcasting (the same function, without K copies of z).
        first, rest = self.risk_head[0], self.risk_head[1:]
        assert isinstance(first, nn.Linear)
        H = z.shape[-1]
        hz = F.linear(z, first.weight[:, :H], first.bias).unsqueeze(2)  # [B, T, 1, hh]
        hd = F.linear(d, first.weight[:, H:])  # [B, T, K, hh]
        risk = rest(hz + hd) * self.risk_scale + self.risk_bias  # [B, T, K, 2]
        states = torch.sigmoid(self.state_head(z))  # [B, T, 3]
        # [B, T, K, M]; a model without a value surface (M = 0) skips its ~15 ops (a quarter of a
        # one-player step on a CPU).
        no_surface = self.value_surface.shape[0] == 0
        value = levels.new_zeros((*levels.shape, 0)) if no_surface else self._value(states[..., 2], levels)

        # npc_head(cat([e, npc_from_h(z)])) split the same way: the player's part once, broadcast over N.
        first, rest = self.npc_head[0], self.npc_head[1:]
        assert isinstance(first, nn.Linear)
        E = e.shape[-1]
        if npc_pairs is None:
            he = F.linear(e, first.weight[:, :E], first.bias)  # [B, T, N, hh]
            hh = F.linear(self.npc_from_h(z), first.weight[:, E:]).unsqueeze(2)  # [B, T, 1, hh]
        else:
            he = F.linear(e.reshape(-1, E)[npc_pairs], first.weight[:, :E], first.bias)  # [P, hh]
            row = torch.div(npc_pairs, e.shape[2], rounding_mode="floor")  # [P] index into B * T
            hh = F.linear(self.npc_from_h(z.reshape(-1, H)[row]), first.weight[:, E:])  # [P, hh]
        npc_logits = rest(he + hh)  # [B, T, N, A], or [P, A]
        return StepOutput(
            h=h,
            fail_logits=risk[..., 0],
            quit_logits=risk[..., 1],
            frustration=states[..., 0],
            engagement=states[..., 1],
            skill=states[..., 2],
            npc_logits=npc_logits,
            value_logits=value,
        )

    def _value(self, skill: Tensor, levels: Tensor) -> Tensor:
        """skill: [B, T], levels: [B, T, K] -> [B, T, K, M] value logits, read off the surface bilinearly."""
        M, G = self.value_surface.shape[0], self.value_surface.shape[1]
        x = skill.detach().clamp(0.0, 1.0).unsqueeze(-1) * (G - 1)  # [B, T, 1] grid coordinate of the skill
        y = levels.clamp(0.0, 1.0) * (G - 1)  # [B, T, K]
        i0 = x.floor().clamp(max=G - 2)
        j0 = y.floor().clamp(max=G - 2)
        wx, wy = (x - i0).unsqueeze(-1), (y - j0).unsqueeze(-1)  # [B, T, 1|K, 1]
        flat = self.value_surface.reshape(M, G * G).t()  # [G*G, M]
        base = (i0 * G + j0).long()  # [B, T, K] index of the corner below both coordinates

        def at(di: int, dj: int) -> Tensor:
            return flat[base + di * G + dj]  # [B, T, K, M]

        return (1 - wx) * ((1 - wy) * at(0, 0) + wy * at(0, 1)) + wx * ((1 - wy) * at(1, 0) + wy * at(1, 1))

    def _encode_present(self, npcs: Tensor, npc_mask: Tensor) -> Tensor:
        """npc_enc on the present NPCs only; zeros where the mask is off (every use of those is masked)."""
        flat = npcs.reshape(-1, npcs.shape[-1])  # [B*T*N, Fn]
        present = npc_mask.reshape(-1).nonzero().squeeze(1)  # [V]
        e = flat.new_zeros(flat.shape[0], self.cfg.npc_embed)
        e = e.index_copy(0, present, self.npc_enc(flat[present]))  # [B*T*N, E]
        return e.view((*npcs.shape[:-1], self.cfg.npc_embed))  # [B, T, N, E]


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
