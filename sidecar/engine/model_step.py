"""The model step in C (sidecar/engine/_model_step.c), for a CPU runner's ticks of up to a few dozen rows.

Why: a served tick at 60 Hz holds one to a few rows (a few dozen where frames carry many players), and
there the TorchScript step's ~60 ops cost ~0.2-0.45 ms whatever the rows (their dispatch, not their
arithmetic), the largest part of a small tick. The C does the step's arithmetic alone, each layer on
every row at once, with an AVX2 kernel where the CPU has it (`_model_step.kernels()`). The model file
stays the definition: this covers one shape of it (one GRU layer, exact GELU heads, layer norm, no
value surface; `compiled_step_for` checks the modules), agrees with torch to float32 rounding
(tests/test_model_step.py), and declines anything else, leaving the step to torch. Its weights are a
copy taken when the runner is made, as the frozen TorchScript graph's are.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sidecar.model.player_model import PlayerModel

try:
    from sidecar.engine import _model_step
except ImportError:  # not built (no C compiler where it was installed): torch runs every step
    _model_step = None  # type: ignore[assignment]

__all__ = [
    "PACKED",
    "CompiledStep",
    "compiled_kernel",
    "compiled_step_available",
    "compiled_step_for",
    "packed_weights",
]

# The weights in the order the C reads them (its `layout`); each matrix [in, out], torch's [out, in]
# transposed (`packed_weights`).
PACKED = (
    "npc_enc.0.weight",
    "npc_enc.0.bias",
    "npc_enc.2.weight",
    "npc_enc.2.bias",
    "npc_query.weight",
    "npc_query.bias",
    "input_proj.0.weight",
    "input_proj.0.bias",
    "core.weight_ih_l0",
    "core.weight_hh_l0",
    "core.bias_ih_l0",
    "core.bias_hh_l0",
    "core_norm.weight",
    "core_norm.bias",
    "diff_embed.0.weight",
    "diff_embed.0.bias",
    "risk_head.0.weight",
    "risk_head.0.bias",
    "risk_head.3.weight",
    "risk_head.3.bias",
    "risk_scale",
    "risk_bias",
    "state_head.0.weight",
    "state_head.0.bias",
    "state_head.2.weight",
    "state_head.2.bias",
    "npc_from_h.weight",
    "npc_from_h.bias",
    "npc_head.0.weight",
    "npc_head.0.bias",
    "npc_head.2.weight",
    "npc_head.2.bias",
)


def compiled_step_available() -> bool:
    return _model_step is not None


def compiled_kernel() -> str | None:
    """The C step's kernel in use ("avx2" where the CPU has AVX2 and FMA, else "baseline"); None: not built."""
    return None if _model_step is None else _model_step.kernels()[0]


class CompiledStep:
    """The C step with one model's weights packed for it."""

    def __init__(self, weights: np.ndarray, dims: tuple[int, ...]) -> None:
        self.weights = weights  # [W] float32, PACKED order
        # (player features, NPC features, NPC embedding, hidden, head hidden, tactics, level embedding)
        self.dims = dims
        self.tactics = dims[5]

    def __call__(
        self,
        pool: np.ndarray,  # [S, H] float32, the state slots (written: each row's new state)
        slots: np.ndarray,  # [B] int64
        players: np.ndarray,  # [B, Fp] float32
        npcs: np.ndarray,  # [B, N, Fn] float32
        mask: np.ndarray,  # [B, N] bool
        levels: np.ndarray,  # [B, K] float32
        pair_rows: np.ndarray,  # [P] int64: the (row, NPC slot) pairs whose tactics are scored
        pair_slots: np.ndarray,  # [P] int64
    ) -> tuple[np.ndarray, ...] | None:
        """(p_fail [B, K], p_quit [B, K], frustration, engagement, skill [B], value [B, K, 0], tactics [P, A]),
        or None where the C declined (nothing changed)."""
        assert _model_step is not None
        b, k = levels.shape
        fail = np.empty((b, k), np.float32)
        quit_ = np.empty((b, k), np.float32)
        states = np.empty((b, 3), np.float32)
        npc = np.empty((len(pair_rows), self.tactics), np.float32)
        done = _model_step.step(
            self.weights,
            self.dims,
            pool,
            slots,
            players,
            np.ascontiguousarray(npcs),
            np.ascontiguousarray(mask),
            np.ascontiguousarray(levels),
            pair_rows,
            pair_slots,
            fail,
            quit_,
            states,
            npc,
        )
        if done is None:
            return None
        return fail, quit_, states[:, 0], states[:, 1], states[:, 2], np.zeros((b, k, 0), np.float32), npc


def compiled_step_for(model: PlayerModel) -> CompiledStep | None:
    """The C step for this model, or None where it is not built or the model is not the shape it covers
    (then torch runs every step)."""
    if _model_step is None:
        return None
    state = model.state_dict()
    if not _covered(model, set(state)):
        return None
    weights = packed_weights(state)
    cfg, tactics, level_embed = model.cfg, state["npc_head.2.bias"].shape[0], state["diff_embed.0.bias"].shape[0]
    dims = (cfg.player_dim, cfg.npc_dim, cfg.npc_embed, cfg.hidden, cfg.head_hidden, int(tactics), int(level_embed))
    return CompiledStep(weights, dims)


def packed_weights(state: dict[str, torch.Tensor]) -> np.ndarray:
    """The weights the C reads: PACKED's tensors in order, each matrix transposed, flat float32."""
    parts = [state[name].detach().float().cpu() for name in PACKED]
    flat = [(t.t() if t.dim() == 2 else t).contiguous().reshape(-1).numpy() for t in parts]
    return np.ascontiguousarray(np.concatenate(flat), np.float32)


def _covered(model: PlayerModel, names: set[str]) -> bool:
    """Whether the model (its state's `names`) is the shape the C was written for, module by module."""
    cfg = model.cfg
    if cfg.layers != 1 or cfg.value_members != 0 or not bool(model.core.bias) or not model.core.batch_first:
        return False
    if names != {*PACKED, "value_surface"}:
        return False

    def gelu_mlp(seq: nn.Module, length: int, linears: tuple[int, ...]) -> bool:
        """`length` modules: Linear layers at `linears`, the first followed by an exact GELU."""
        if not isinstance(seq, nn.Sequential) or len(seq) != length:
            return False
        gelu = seq[1]
        return (
            isinstance(gelu, nn.GELU)
            and gelu.approximate == "none"
            and all(isinstance(seq[i], nn.Linear) for i in linears)
        )

    norm = model.core_norm
    return bool(
        gelu_mlp(model.npc_enc, 3, (0, 2))
        and gelu_mlp(model.input_proj, 3, (0,))  # its third is dropout, a no-op at inference
        and gelu_mlp(model.diff_embed, 2, (0,))
        and gelu_mlp(model.risk_head, 4, (0, 3))  # [2] is dropout
        and gelu_mlp(model.state_head, 3, (0, 2))
        and gelu_mlp(model.npc_head, 3, (0, 2))
        and isinstance(norm, nn.LayerNorm)
        and norm.eps == 1e-5
        and norm.elementwise_affine
        and model.diff_embed[0].in_features == 1
        and model.npc_enc[0].in_features == cfg.npc_dim
        and model.input_proj[0].in_features == cfg.player_dim + 2 * cfg.npc_embed
        and model.state_head[2].out_features == 3
        and model.risk_head[3].out_features == 2
        and isinstance(model.core, nn.GRU)
        and model.core.input_size == cfg.hidden
    )
