"""One model runner process for several front-end processes (`metabrain serve --front-ends N`).

Each front end is a whole sidecar (transports, protocol, featurizer, scheduler, directors) except
for the model: it sends the plain-data part of its step plan (arrays, no Python objects) to the
runner over a Unix socket. The runner steps every plan that has arrived in one model call (one
batch across all front ends) and answers each front end with its own rows. Each front end owns a
block of the runner's state slots, so recurrent state stays on the device and never crosses a
process boundary; only features go in and predictions come out.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener, wait
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sidecar.engine.plan import StepPlan, StepResult, npc_width
from sidecar.features import MAX_MODEL_NPCS, NPC_DIM

if TYPE_CHECKING:
    from sidecar.engine.config import EngineConfig

log = logging.getLogger("metabrain.runner")


@dataclass
class RunnerRequest:
    """What a front end sends per tick: its plan's arrays, slots numbered within its own block."""

    slots: np.ndarray  # [B] int64
    reset_slots: np.ndarray  # [R] int64
    players: np.ndarray  # [B, PLAYER_DIM] float32
    npcs: np.ndarray  # [B, n, NPC_DIM] float32, n <= N: the slots up to the widest row in use
    npc_mask: np.ndarray  # [B, n] bool
    levels: np.ndarray  # [B, K] float32
    explain_rows: np.ndarray  # [X] int64
    hint_rows: np.ndarray  # [P] int64
    hint_slots: np.ndarray  # [P] int64

    @classmethod
    def of(cls, plan: StepPlan) -> RunnerRequest:
        # NPC slots past the widest row in use are padding: not sent (16 -> 3 columns in a typical
        # single-player tick, most of the bytes).
        n = npc_width(plan.npc_mask)
        return cls(
            plan.slots,
            plan.reset_slots,
            plan.players,
            plan.npcs[:, :n],
            plan.npc_mask[:, :n],
            plan.levels,
            plan.explain_rows,
            plan.hint_rows,
            plan.hint_slots,
        )


@dataclass
class RunnerFailure:
    """The runner's step raised: the front ends answer with their fallback (designer defaults)."""

    error: str


@dataclass
class Part:
    """One request's share of a merged step: its batch rows and its hinted NPCs."""

    rows: slice
    hinted: slice


def merge(requests: list[tuple[int, RunnerRequest]]) -> tuple[StepPlan, list[Part]]:
    """[(slot offset, request)] -> one plan for the whole batch, and each request's part of it."""
    parts: list[Part] = []
    row = hint = 0
    for _, r in requests:
        parts.append(Part(slice(row, row + len(r.slots)), slice(hint, hint + len(r.hint_rows))))
        row += len(r.slots)
        hint += len(r.hint_rows)
    pairs = list(zip(requests, parts, strict=True))
    # Back to the plan's full NPC width (CUDA graphs keep fixed shapes; a CPU step trims it again).
    npcs = np.zeros((row, MAX_MODEL_NPCS, NPC_DIM), np.float32)
    npc_mask = np.zeros((row, MAX_MODEL_NPCS), bool)
    for (_, r), p in pairs:
        npcs[p.rows, : r.npcs.shape[1]] = r.npcs
        npc_mask[p.rows, : r.npc_mask.shape[1]] = r.npc_mask
    plan = StepPlan(
        tick=0,
        entries=[],
        slots=np.concatenate([r.slots + off for off, r in requests]),
        reset_slots=np.concatenate([r.reset_slots + off for off, r in requests]),
        players=np.concatenate([r.players for _, r in requests]),
        npcs=npcs,
        npc_mask=npc_mask,
        levels=np.concatenate([r.levels for _, r in requests]),
        explain_rows=np.concatenate([r.explain_rows + p.rows.start for (_, r), p in pairs]),
        hint_rows=np.concatenate([r.hint_rows + p.rows.start for (_, r), p in pairs]),
        hint_slots=np.concatenate([r.hint_slots for _, r in requests]),
        hint_ids=np.zeros(hint, np.int64),  # the runner does not need them
    )
    return plan, parts


def split(result: StepResult, part: Part) -> StepResult:
    """One front end's part of a merged step's result (explanations re-keyed to its own rows)."""
    rows = part.rows
    return StepResult(
        p_fail=result.p_fail[rows],
        p_quit=result.p_quit[rows],
        frustration=result.frustration[rows],
        engagement=result.engagement[rows],
        skill=result.skill[rows],
        npc_tactic_p=result.npc_tactic_p[part.hinted],
        explanations={r - rows.start: e for r, e in result.explanations.items() if rows.start <= r < rows.stop},
        model_seconds=result.model_seconds,
        value=result.value[rows] if len(result.value) else result.value,
        horizons=result.horizons,
    )


def serve_runner(
    address: str,
    authkey: bytes,
    checkpoint: str | None,
    engine: EngineConfig,
    front_ends: int,
    ready: Any,
) -> None:
    """The runner process: accept `front_ends` connections, then step whatever they send until all close."""
    import signal

    from sidecar.engine.runner import local_runner
    from sidecar.model.checkpoint import load_checkpoint

    # Ctrl-C reaches the whole process group: the front ends drain, and the runner must keep
    # answering them until they have gone (it exits when the last one disconnects).
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    block = engine.max_slots  # each front end's slots: [i * block, (i + 1) * block)
    runner = local_runner(load_checkpoint(checkpoint).model, engine, block * front_ends)
    with Listener(address, family="AF_UNIX", authkey=authkey) as listener:
        ready.set()
        offsets: dict[Connection, int] = {}
        for _ in range(front_ends):
            conn = listener.accept()
            index = int(conn.recv())
            offsets[conn] = index * block
            conn.send((str(runner.device), runner.memory_bytes()))
    while offsets:
        requests: list[tuple[Connection, RunnerRequest]] = []
        for ready_conn in wait(list(offsets)):
            assert isinstance(ready_conn, Connection)
            try:
                requests.append((ready_conn, ready_conn.recv()))
            except (EOFError, OSError):
                del offsets[ready_conn]  # that front end has stopped
        if not requests:
            continue
        plan, parts = merge([(offsets[c], r) for c, r in requests])
        try:
            result = runner.step(plan)
        except Exception as exc:  # the device failing must not take the runner down
            if isinstance(exc, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()
            failure = RunnerFailure(f"{type(exc).__name__}: {exc}")
            log.error("model step failed (%d rows from %d front ends): %s", plan.batch, len(requests), failure.error)
            for conn, _ in requests:
                conn.send(failure)
            continue
        for (conn, _), part in zip(requests, parts, strict=True):
            conn.send(split(result, part))


class RemoteRunner:
    """A front end's handle on the runner process; a drop-in for Runner in the Engine."""

    def __init__(self, address: str, authkey: bytes, index: int, connect_timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + connect_timeout_s
        while True:
            try:
                self._conn = Client(address, family="AF_UNIX", authkey=authkey)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise OSError(f"the model runner at {address} did not answer in {connect_timeout_s:g} s") from None
                time.sleep(0.05)
        self._conn.send(index)
        device, self._memory = self._conn.recv()
        self.device = torch.device(device)
        self.fail_next: BaseException | None = None  # fault injection, as on Runner
        self._lock = threading.Lock()  # one request in flight per front end

    def step(self, plan: StepPlan) -> StepResult:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        with self._lock:
            self._conn.send(RunnerRequest.of(plan))
            reply = self._conn.recv()
        if isinstance(reply, RunnerFailure):
            raise RuntimeError(f"model runner: {reply.error}")
        assert isinstance(reply, StepResult)
        return reply

    def memory_bytes(self) -> int:
        return int(self._memory)

    def close(self) -> None:
        self._conn.close()
