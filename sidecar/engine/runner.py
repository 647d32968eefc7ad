"""The runner: the only part that touches torch. Holds the model and the state-slot pool on the device.

Per step: zero newly assigned slots, gather the batch's states by slot, run the model once for the
whole batch, scatter the new states back, and return plain numpy predictions. On CUDA, inputs go
through pinned staging buffers and the step is replayed from CUDA graphs captured per batch-size
bucket (padding rows write into a scratch slot). On a CPU a tick of up to COMPILED_UP_TO rows runs in
C (model_step.py: the model's arithmetic alone) and a larger one as a traced, frozen TorchScript graph
(half the per-call overhead of eager PyTorch at small batches); all within float32 rounding of the
model's outputs. Gradients for explanations always use the eager model.
"""

from __future__ import annotations

import time
import warnings
from typing import cast

import numpy as np
import torch

from sidecar.engine.config import EngineConfig
from sidecar.engine.model_step import compiled_kernel, compiled_step_for
from sidecar.engine.plan import StepPlan, StepResult, npc_width
from sidecar.features import PLAYER_COLUMNS
from sidecar.model.player_model import PlayerModel

GRAPH_BUCKETS = (1, 8, 64, 256, 1024, 4096, 8192)
# A CPU step of more rows runs in blocks of this many: past it the activations outgrow the core's
# caches (measured: 2,048 rows in one call 13.4-14.2 us a row, in blocks of 512 8.0-8.8).
CPU_BLOCK = 512
# Tactics are scored for the hinted NPCs alone when they are fewer than this share of the NPC slots
# (a multiplayer tick hints each NPC once); otherwise for every slot, which skips ~30 us of gathers.
HINTED_ONLY_BELOW = 0.5
# A CPU step of up to this many rows runs with oneDNN off: its kernels (GELU above all: ~15 us of setup a
# call whatever the size) cost more than they save there (`python -m sim.bench.onednn`: 1.2-1.35x faster
# at 1-8 rows, 1.1x at 32-64, no consistent difference from 128; outputs within 4e-7).
ONEDNN_OFF_UP_TO = 64
assert ONEDNN_OFF_UP_TO <= CPU_BLOCK  # such a step is one block (Runner._eager_numpy)
# A CPU step of up to this many rows runs in C (model_step.py) where it can. The runner's whole step in a
# loop (`python -m sim.bench.model_step`, the AVX2 kernel): 10x TorchScript's speed at one row, 2x at 16,
# 1.45x at 32, 0.95x at 64, 0.8x at 128 (torch's BLAS wins big blocks). Served, where the transport and
# Python share the core's caches, the C costs less still: ticks of 32-player frames (~40 rows) in half
# TorchScript's model time (BENCHMARKS.md, run 14). The baseline kernel (no AVX2: SSE2 pairs, no FMA) is
# ~3.5x slower and even with TorchScript at 8 rows, so there the C takes what it took before it had one.
COMPILED_UP_TO = 64
COMPILED_UP_TO_BASELINE = 6
TRACE_LEVELS = 12  # candidate levels in the example batch the CPU step is traced (and warmed up) with
EXPLAIN_TOP = 3


class Runner:
    def __init__(
        self,
        model: PlayerModel,
        device: str = "cpu",
        max_slots: int = 4096,
        cuda_graphs: bool = True,
        dtype: torch.dtype = torch.float32,
        torchscript: bool = True,
        compiled: bool = True,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device, dtype).eval()
        self.dtype = dtype
        cfg = model.cfg
        # One extra scratch slot at the end absorbs the padding rows of CUDA-graph buckets.
        self.scratch_slot = max_slots
        self.pool = torch.zeros(cfg.layers, max_slots + 1, cfg.hidden, device=self.device, dtype=dtype)  # [L, S+1, H]
        self.use_graphs = cuda_graphs and self.device.type == "cuda"
        self._graphs: dict[tuple[int, int], _GraphStep] = {}
        self.fail_next: BaseException | None = None  # fault injection for tests
        use_script = torchscript and self.device.type == "cpu" and dtype == torch.float32
        # Two graphs on a CPU: every NPC slot scored (cheaper when most are hinted: a single-player
        # tick), or only the hinted ones (a multiplayer tick, where each NPC is hinted once).
        self._forward: torch.nn.Module = _traced(self.model, False) if use_script else _Outputs(self.model)
        self._forward_hinted: torch.nn.Module = _traced(self.model, True) if use_script else self._forward
        if use_script:
            self._warm_up()
        # Small CPU steps in C where it is built and covers this model (one layer: model_step.py); else torch.
        on_cpu = self.device.type == "cpu" and dtype == torch.float32
        self._compiled = compiled_step_for(self.model) if compiled and on_cpu else None
        # Rows a step may have to run in C, by the kernel this CPU runs (chosen when the module loads).
        self.compiled_up_to = (
            0 if self._compiled is None else COMPILED_UP_TO if compiled_kernel() == "avx2" else COMPILED_UP_TO_BASELINE
        )
        self._pool_rows = self.pool[0].numpy() if self._compiled is not None else None  # [S+1, H], shares memory

    def _warm_up(self) -> None:
        """TorchScript profiles its first calls (31 and 6 ms measured, against under 1 ms after): make
        them here, on the scratch slot, rather than on the first players' frames."""
        cfg = self.model.cfg
        for b in (1, 2, 1, 2):
            for pairs in (None, torch.arange(b)):
                self._eager(
                    torch.full((b,), self.scratch_slot, dtype=torch.int64),
                    torch.zeros(b, cfg.player_dim),
                    torch.zeros(b, cfg.max_npcs, cfg.npc_dim),
                    torch.ones(b, cfg.max_npcs, dtype=torch.bool),
                    torch.zeros(b, TRACE_LEVELS),
                    pairs,
                )
        self.pool[:, self.scratch_slot] = 0

    def _eager(
        self,
        slots: torch.Tensor,
        players: torch.Tensor,
        npcs: torch.Tensor,
        mask: torch.Tensor,
        levels: torch.Tensor,
        npc_pairs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """One step; the NPC tactics come out as [B, N, A], or [P, A] at npc_pairs (flat into [B, N])."""
        # inference_mode is ~10% cheaper than no_grad on a CPU; CUDA-graph capture keeps no_grad, whose
        # static output tensors stay ordinary tensors.
        grad_off = torch.inference_mode() if self.device.type == "cpu" else torch.no_grad()
        with grad_off:
            h = self.pool[:, slots]  # [L, B, H] gather
            args = (players[:, None], npcs[:, None], mask[:, None], h, levels[:, None])
            outs = self._forward(*args) if npc_pairs is None else self._forward_hinted(*args, npc_pairs)
            new_h, fail, quit_, frus, eng, skill, value, npc = outs
            self.pool[:, slots] = new_h  # scatter
            return (
                torch.sigmoid(fail[:, 0]),
                torch.sigmoid(quit_[:, 0]),
                frus[:, 0],
                eng[:, 0],
                skill[:, 0],
                torch.sigmoid(value[:, 0]),  # [B, K, M]
                torch.sigmoid(npc if npc_pairs is not None else npc[:, 0]),
            )

    def _eager_numpy(self, plan: StepPlan) -> tuple[np.ndarray, ...]:
        """The step outside CUDA graphs, in blocks of CPU_BLOCK rows on a CPU."""
        if self.device.type != "cpu":
            return self._rows(plan, 0, plan.batch)
        if plan.batch <= self.compiled_up_to:  # the C step uses no torch: no oneDNN flag to scope
            got = self._compiled_rows(plan, 0, plan.batch)
            if got is not None:
                return got
        if plan.batch > ONEDNN_OFF_UP_TO:
            return self._blocks(plan)
        # Scoped, not process-wide: larger steps and training keep oneDNN. (The attribute, not
        # mkldnn.flags(): that costs 20 us and warns on every call.)
        mkldnn = torch.backends.mkldnn
        was = bool(mkldnn.enabled)
        mkldnn.enabled = False  # type: ignore[assignment]  # a ContextProp: assigning sets the flag
        try:
            # One block (ONEDNN_OFF_UP_TO <= CPU_BLOCK), which the C step declined or does not cover.
            return self._torch_rows(plan, 0, plan.batch)
        finally:
            mkldnn.enabled = was  # type: ignore[assignment]

    def _blocks(self, plan: StepPlan) -> tuple[np.ndarray, ...]:
        if plan.batch <= CPU_BLOCK:
            return self._rows(plan, 0, plan.batch)
        parts = [self._rows(plan, a, min(a + CPU_BLOCK, plan.batch)) for a in range(0, plan.batch, CPU_BLOCK)]
        return tuple(np.concatenate(outs) for outs in zip(*parts, strict=True))

    def _hinted(self, plan: StepPlan, a: int, b: int) -> tuple[int, np.ndarray, np.ndarray]:
        """The NPC width of rows [a, b) (the featurizer puts present NPCs first) and their hinted NPCs'
        rows (from a) and slots."""
        n = npc_width(plan.npc_mask[a:b])
        h0, h1 = np.searchsorted(plan.hint_rows, (a, b)).tolist()  # hint rows are in row order
        return n, plan.hint_rows[h0:h1] - a, plan.hint_slots[h0:h1]

    def _compiled_rows(self, plan: StepPlan, a: int, b: int) -> tuple[np.ndarray, ...] | None:
        """Rows [a, b) stepped in C where it covers them (None: torch steps them)."""
        if self._compiled is None or b - a > self.compiled_up_to:
            return None
        assert self._pool_rows is not None
        n, rows, slots = self._hinted(plan, a, b)
        return self._compiled(
            self._pool_rows, plan.slots[a:b], plan.players[a:b], plan.npcs[a:b, :n], plan.npc_mask[a:b, :n],
            plan.levels[a:b], rows, slots,
        )  # fmt: skip

    def _rows(self, plan: StepPlan, a: int, b: int) -> tuple[np.ndarray, ...]:
        """Rows [a, b) of the plan, NPCs trimmed to the widest row in use; the tactics of the plan's
        hinted NPCs in these rows, [P, A]."""
        got = self._compiled_rows(plan, a, b)
        return got if got is not None else self._torch_rows(plan, a, b)

    def _torch_rows(self, plan: StepPlan, a: int, b: int) -> tuple[np.ndarray, ...]:
        """Rows [a, b) stepped by torch (see _rows)."""
        dev, dt = self.device, self.dtype
        n, rows, slots = self._hinted(plan, a, b)
        mask = plan.npc_mask[a:b]
        hinted_only = len(rows) < HINTED_ONLY_BELOW * (b - a) * n
        outs = self._eager(
            torch.as_tensor(plan.slots[a:b], device=dev),
            torch.as_tensor(plan.players[a:b], device=dev, dtype=dt),
            torch.as_tensor(plan.npcs[a:b, :n], device=dev, dtype=dt),
            torch.as_tensor(mask[:, :n], device=dev),
            torch.as_tensor(plan.levels[a:b], device=dev, dtype=dt),
            torch.as_tensor(rows * n + slots, device=dev) if hinted_only else None,
        )
        *preds, npc = (o.float().cpu().numpy() for o in outs)
        return (*preds, npc if hinted_only else npc[rows, slots])

    def memory_bytes(self) -> int:
        """Weights plus the state-slot pool, as held on the device."""
        if self.device.type == "cuda":
            return int(torch.cuda.memory_allocated(self.device))
        params = sum(p.numel() * p.element_size() for p in self.model.parameters())
        return int(params + self.pool.numel() * self.pool.element_size())

    def step(self, plan: StepPlan) -> StepResult:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        t0 = time.perf_counter()
        if plan.reset_slots.size:
            self.pool[:, torch.as_tensor(plan.reset_slots, device=self.device)] = 0
        explanations = self._explain(plan) if plan.explain_rows.size else {}
        outs = self._graph_step(plan) if self.use_graphs else self._eager_numpy(plan)
        p_fail, p_quit, frus, eng, skill, value, npc = outs
        cfg = self.model.cfg
        return StepResult(
            p_fail,
            p_quit,
            frus,
            eng,
            skill,
            npc,
            explanations,
            time.perf_counter() - t0,
            value=value,
            horizons=(cfg.fail_horizon_s, cfg.value_horizon_s),
        )

    # -- explanations: gradient x input of the current-level p_fail logit, on the rows that asked --
    def _explain(self, plan: StepPlan) -> dict[int, list[tuple[str, float]]]:
        rows = plan.explain_rows
        dev, dt = self.device, self.dtype
        x = torch.as_tensor(plan.players[rows], device=dev, dtype=dt).requires_grad_(True)
        h = self.pool[:, torch.as_tensor(plan.slots[rows], device=dev)].detach()
        with torch.enable_grad():
            out = self.model(
                x[:, None],
                torch.as_tensor(plan.npcs[rows], device=dev, dtype=dt)[:, None],
                torch.as_tensor(plan.npc_mask[rows], device=dev)[:, None],
                h,
                torch.as_tensor(plan.levels[rows][:, -1:], device=dev, dtype=dt)[:, None],
            )
            out.fail_logits.sum().backward()
        assert x.grad is not None
        # A signal that raises the failure risk pushes the difficulty down: the sign says which way.
        contrib = (-(x.grad * x)).detach().float().cpu().numpy()  # [X, Fp]
        result: dict[int, list[tuple[str, float]]] = {}
        for r, c in zip(rows, contrib, strict=True):
            top = np.argsort(-np.abs(c))[:EXPLAIN_TOP]
            result[int(r)] = [(PLAYER_COLUMNS[j], float(c[j])) for j in top]
        return result

    # -- CUDA graphs -----------------------------------------------------------------------------
    def _graph_step(self, plan: StepPlan) -> tuple[np.ndarray, ...]:
        b = plan.batch
        bucket = next((s for s in GRAPH_BUCKETS if s >= b), None)
        if bucket is None:  # larger than the largest bucket: eager
            return self._eager_numpy(plan)
        key = (bucket, plan.levels.shape[1])
        g = self._graphs.get(key)
        if g is None:
            g = self._graphs[key] = _GraphStep(self, bucket, plan)
        return g.run(plan)


class _GraphStep:
    """One captured step for a batch-size bucket: pinned host staging -> static inputs -> replay."""

    def __init__(self, runner: Runner, bucket: int, plan: StepPlan) -> None:
        dev, dt = runner.device, runner.dtype
        n, fn = plan.npcs.shape[1:]
        k = plan.levels.shape[1]
        fp = plan.players.shape[1]
        self.bucket = bucket
        self.runner = runner
        self.h_slots = torch.full((bucket,), runner.scratch_slot, dtype=torch.int64).pin_memory()
        self.h_players = torch.zeros(bucket, fp).pin_memory()
        self.h_npcs = torch.zeros(bucket, n, fn).pin_memory()
        self.h_mask = torch.zeros(bucket, n, dtype=torch.bool).pin_memory()
        self.h_levels = torch.zeros(bucket, k).pin_memory()
        self.slots = self.h_slots.to(dev)
        self.players = self.h_players.to(dev, dt)
        self.npcs = self.h_npcs.to(dev, dt)
        self.mask = self.h_mask.to(dev)
        self.levels = self.h_levels.to(dev, dt)
        stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm up outside the graph (allocations, cuBLAS handles)
                runner._eager(self.slots, self.players, self.npcs, self.mask, self.levels)
        torch.cuda.current_stream().wait_stream(stream)
        runner.pool[:, runner.scratch_slot] = 0
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outs = runner._eager(self.slots, self.players, self.npcs, self.mask, self.levels)
        self.h_outs = [torch.zeros(o.shape, dtype=torch.float32).pin_memory() for o in self.outs]

    def run(self, plan: StepPlan) -> tuple[np.ndarray, ...]:
        b = plan.batch
        self.h_slots.fill_(self.runner.scratch_slot)
        self.h_slots[:b] = torch.from_numpy(plan.slots)
        self.h_players[:b] = torch.from_numpy(plan.players)
        self.h_npcs[:b] = torch.from_numpy(plan.npcs)
        self.h_mask.zero_()
        self.h_mask[:b] = torch.from_numpy(plan.npc_mask)
        self.h_levels[:b] = torch.from_numpy(plan.levels)
        self.slots.copy_(self.h_slots, non_blocking=True)
        self.players.copy_(self.h_players, non_blocking=True)
        self.npcs.copy_(self.h_npcs, non_blocking=True)
        self.mask.copy_(self.h_mask, non_blocking=True)
        self.levels.copy_(self.h_levels, non_blocking=True)
        self.graph.replay()
        for h, o in zip(self.h_outs, self.outs, strict=True):
            h.copy_(o, non_blocking=True)
        torch.cuda.current_stream().synchronize()
        *outs, npc = (h[:b].numpy() for h in self.h_outs)
        return (*(o.copy() for o in outs), npc[plan.hint_rows, plan.hint_slots])  # [P, A]


class _Outputs(torch.nn.Module):
    """The model's step as a plain tuple (what TorchScript can trace)."""

    def __init__(self, model: PlayerModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        players: torch.Tensor,
        npcs: torch.Tensor,
        mask: torch.Tensor,
        h: torch.Tensor,
        levels: torch.Tensor,
        npc_pairs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        o = self.model(players, npcs, mask, h, levels, npc_pairs)
        return (o.h, o.fail_logits, o.quit_logits, o.frustration, o.engagement, o.skill, o.value_logits, o.npc_logits)


def _traced(model: PlayerModel, hinted_only: bool) -> torch.nn.Module:
    """Trace at a small batch (the graph is batch-size generic) and freeze the weights in.

    Not `optimize_for_inference`: its oneDNN ops build a primitive per new input shape, and a
    sidecar's batch size changes every tick (measured: 17.5 vs 14.2 us a row over batches of 1-160,
    and no faster at any fixed batch)."""
    from sidecar.features import MAX_MODEL_NPCS, NPC_DIM, PLAYER_DIM

    cfg, b = model.cfg, 4
    example: tuple[torch.Tensor, ...] = (
        torch.zeros(b, 1, PLAYER_DIM),
        torch.zeros(b, 1, MAX_MODEL_NPCS, NPC_DIM),
        torch.ones(b, 1, MAX_MODEL_NPCS, dtype=torch.bool),
        torch.zeros(cfg.layers, b, cfg.hidden),
        torch.zeros(b, 1, TRACE_LEVELS),
    )
    if hinted_only:
        example = (*example, torch.tensor([0, 3, 17, 40]))  # NPC slots: the graph scores tactics at these alone
    with torch.inference_mode(), warnings.catch_warnings():
        # The GRU's own shape checks become constants in the trace; our shapes are fixed by the plan.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(_Outputs(model).eval(), example, check_trace=False)  # type: ignore[no-untyped-call]
        return cast(torch.nn.Module, torch.jit.freeze(traced))


def local_runner(model: PlayerModel, cfg: EngineConfig, slots: int) -> Runner:
    """The model in this process, as the config asks (device, CPU threads, dtype, CUDA graphs)."""
    if cfg.device == "cpu":
        torch.set_num_threads(cfg.torch_threads)
    dtype = torch.bfloat16 if cfg.bf16 else torch.float32
    return Runner(model, cfg.device, slots, cfg.cuda_graphs, dtype, compiled=cfg.compiled)
