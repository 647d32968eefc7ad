"""Scheduler on plain data; runner batched vs one-at-a-time; no state leaks between slots."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sidecar.engine.plan import StepPlan
from sidecar.engine.runner import Runner
from sidecar.engine.scheduler import Scheduler
from sidecar.features import MAX_MODEL_NPCS, NPC_DIM, PLAYER_DIM, FrameFeatures, P
from sidecar.model.player_model import ModelConfig, PlayerModel

LEVELS = np.linspace(0, 1, 5, dtype=np.float32)


def feat(seq: int, players: tuple[str, ...] = ("p1",), seed: int = 0, kills: float = 0.0) -> FrameFeatures:
    rng = np.random.default_rng(seed * 1000 + seq)
    n = len(players)
    x = rng.normal(size=(n, PLAYER_DIM)).astype(np.float32)
    x[:, P["kills"]] = kills
    x[:, P["difficulty"]] = 0.5
    npcs = rng.normal(size=(n, MAX_MODEL_NPCS, NPC_DIM)).astype(np.float32)
    mask = np.zeros((n, MAX_MODEL_NPCS), bool)
    mask[:, : 3 + seq % 5] = True
    return FrameFeatures(seq, float(seq), list(players), x, npcs, mask, np.where(mask, 7, -1))


def test_latest_wins_and_events_carry_over() -> None:
    s = Scheduler(8, LEVELS)
    s.join("a")
    assert s.submit("a", feat(1, kills=1), "t1", 0.0) == []
    assert s.submit("a", feat(2, kills=2), "t2", 0.1) == [(1, "t1")]
    overtaken = s.submit("a", feat(3, kills=0), "t3", 0.2)
    assert overtaken == [(2, "t2")]
    plan = s.plan(100)
    assert plan is not None and [e.ticket for e in plan.entries] == ["t3"]
    # Kills of the superseded frames still reach the model.
    assert plan.players[0, P["kills"]] == 3.0
    assert s.plan(100) is None


def test_slots_join_leave_reuse_and_reset() -> None:
    s = Scheduler(3, LEVELS)
    s.join("a")
    s.join("b")
    s.submit("a", feat(1, players=("p1", "p2")), "ta", 0.0)
    s.submit("b", feat(1), "tb", 0.0)
    plan = s.plan(100)
    assert plan is not None
    assert sorted(plan.slots.tolist()) == [0, 1, 2] and sorted(plan.reset_slots.tolist()) == [0, 1, 2]
    assert s.slots_in_use == 3
    # Full: a new session's frame is rejected by name, not crashed on.
    s.join("c")
    s.submit("c", feat(1), "tc", 0.0)
    plan = s.plan(100)
    assert plan is not None and plan.batch == 0 and plan.rejected and "max_slots" in plan.rejected[0][1]
    # b leaves: its slot is reused by c and zeroed first.
    b_slot = s.slot_of("b", "p1")
    s.leave("b")
    s.submit("c", feat(2), "tc2", 0.0)
    plan = s.plan(100)
    assert plan is not None and plan.slots.tolist() == [b_slot] and plan.reset_slots.tolist() == [b_slot]
    # a's next frame keeps its slots and is not reset.
    s.submit("a", feat(2, players=("p1", "p2")), "ta2", 0.0)
    plan = s.plan(100)
    assert plan is not None and plan.reset_slots.size == 0


def test_plan_respects_max_batch_fifo() -> None:
    s = Scheduler(64, LEVELS)
    for i in range(10):
        s.join(f"s{i}")
        s.submit(f"s{i}", feat(1), i, 0.0)
    first = s.plan(4)
    second = s.plan(100)
    assert first is not None and second is not None
    assert [e.ticket for e in first.entries] == [0, 1, 2, 3]
    assert [e.ticket for e in second.entries] == list(range(4, 10))
    assert first.levels.shape == (4, len(LEVELS) + 1)
    assert np.allclose(first.levels[:, -1], 0.5)  # the current level is the last column


def _runner(torchscript: bool = True) -> Runner:
    torch.manual_seed(0)
    model = PlayerModel(ModelConfig(hidden=32, npc_embed=8, head_hidden=16, dropout=0.0))
    return Runner(model, "cpu", max_slots=16, torchscript=torchscript)


def _drive(runner: Runner, batches: list[list[tuple[str, int]]]) -> dict[tuple[str, int], np.ndarray]:
    """Step sessions through a scheduler in the given groupings; returns p_fail per (session, seq)."""
    s = Scheduler(16, LEVELS)
    out = {}
    for group in batches:
        for sid, seq in group:
            if s.slot_of(sid, "p1") is None:
                s.join(sid)
            s.submit(sid, feat(seq, seed=hash(sid) % 97), (sid, seq), 0.0)
        plan = s.plan(100)
        assert plan is not None
        res = runner.step(plan)
        for e in plan.entries:
            out[e.ticket] = res.p_fail[e.row]
    return out


def test_batched_equals_one_at_a_time() -> None:
    sessions = ["a", "b", "c", "d"]
    one = _drive(_runner(), [[(sid, t)] for t in range(1, 8) for sid in sessions])
    batched = _drive(_runner(), [[(sid, t) for sid in sessions] for t in range(1, 8)])
    assert one.keys() == batched.keys()
    for k in one:
        np.testing.assert_allclose(one[k], batched[k], atol=1e-5)


def _mixed_plan() -> StepPlan:
    """Sessions of one to three players with 0-8 NPCs each, NPC ids shared and repeated among them."""
    rng = np.random.default_rng(3)
    s = Scheduler(16, LEVELS)
    for i, players in enumerate([("p1",), ("p1", "p2", "p3"), ("p1",), ("p1", "p2")]):
        f = feat(1, players, seed=i)
        k = rng.integers(0, 9, len(players))
        f.npc_mask[:] = np.arange(MAX_MODEL_NPCS) < k[:, None]  # present ones first, as featurized
        f.npcs[~f.npc_mask] = 0.0
        f.npc_ids[:] = np.where(f.npc_mask, rng.integers(0, 5, f.npc_mask.shape), -1)
        s.join(f"s{i}")
        s.submit(f"s{i}", f, i, 0.0)
    plan = s.plan(100)
    assert plan is not None and 0 < len(plan.hint_rows) < int(plan.npc_mask.sum())
    return plan


@pytest.mark.parametrize("torchscript", [True, False])  # the traced graphs, and the eager model (bf16, CUDA)
@pytest.mark.parametrize(("block", "hinted_only"), [(512, 0.0), (512, 2.0), (3, 0.0), (3, 2.0)])
def test_the_cpu_step_predicts_what_the_whole_model_does(
    block: int, hinted_only: float, torchscript: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a CPU the step trims NPC padding, scores tactics for every slot or only for the NPCs the
    director hints, and runs large batches in blocks of rows; its predictions must be the full
    model's (every NPC slot scored, one call) at the hinted NPCs. (The step runs with oneDNN off, the
    whole model here with it on, as training does: the same predictions, and the flag is restored.)"""
    monkeypatch.setattr("sidecar.engine.runner.CPU_BLOCK", block)
    monkeypatch.setattr("sidecar.engine.runner.HINTED_ONLY_BELOW", hinted_only)
    plan = _mixed_plan()
    runner = _runner(torchscript)
    onednn = bool(torch.backends.mkldnn.enabled)
    got = runner.step(plan)
    assert bool(torch.backends.mkldnn.enabled) == onednn
    model = runner.model
    with torch.inference_mode():
        full = model(
            torch.from_numpy(plan.players)[:, None],
            torch.from_numpy(plan.npcs)[:, None],
            torch.from_numpy(plan.npc_mask)[:, None],
            model.initial_state(plan.batch),
            torch.from_numpy(plan.levels)[:, None],
        )
    tactics = torch.sigmoid(full.npc_logits[:, 0]).numpy()[plan.hint_rows, plan.hint_slots]
    np.testing.assert_allclose(got.npc_tactic_p, tactics, atol=1e-5)
    np.testing.assert_allclose(got.p_fail, torch.sigmoid(full.fail_logits[:, 0]).numpy(), atol=1e-5)
    np.testing.assert_allclose(got.skill, full.skill[:, 0].numpy(), atol=1e-5)


def test_state_does_not_leak_between_slots() -> None:
    """a's outputs are the same whether or not b runs beside it (catches a wrong gather/scatter index)."""
    alone = _drive(_runner(), [[("a", t)] for t in range(1, 8)])
    mixed = _drive(_runner(), [[("a", t), ("b", t)] for t in range(1, 8)])
    for t in range(1, 8):
        np.testing.assert_allclose(alone[("a", t)], mixed[("a", t)], atol=1e-5)
    # And the state matters at all (otherwise the test above proves nothing).
    r = _runner()
    first = _drive(r, [[("a", 1)]])
    np.testing.assert_raises(AssertionError, np.testing.assert_allclose, first[("a", 1)], alone[("a", 7)], 1e-6)


def test_runner_failure_is_reported_and_recovers() -> None:
    runner = _runner()
    s = Scheduler(16, LEVELS)
    s.join("a")
    s.submit("a", feat(1), "t", 0.0)
    plan = s.plan(10)
    assert isinstance(plan, StepPlan)
    runner.fail_next = RuntimeError("CUDA out of memory (injected)")
    with pytest.raises(RuntimeError):
        runner.step(plan)
    assert runner.step(plan).p_fail.shape == (1, len(LEVELS) + 1)


def test_explanations_name_features() -> None:
    runner = _runner()
    s = Scheduler(16, LEVELS)
    s.join("a", explain=True)
    s.join("b")
    s.submit("a", feat(1), "ta", 0.0)
    s.submit("b", feat(1, seed=3), "tb", 0.0)
    plan = s.plan(10)
    assert plan is not None
    res = runner.step(plan)
    assert set(res.explanations) == {0}
    from sidecar.features import PLAYER_COLUMNS

    names = [n for n, _ in res.explanations[0]]
    assert len(names) == 3 and all(n in PLAYER_COLUMNS for n in names)


def test_runner_process_merge_equals_separate_steps() -> None:
    """What the runner process does with two front ends' plans: one step, the same answers as two."""
    from sidecar.engine.remote_runner import RunnerRequest, merge, split

    def plan_for(sids: list[str], explain: set[str]) -> StepPlan:
        s = Scheduler(8, LEVELS)
        for i, sid in enumerate(sids):
            s.join(sid, explain=sid in explain)
            s.submit(sid, feat(5 + i + len(sids), seed=i + 5 * len(sids)), sid, 0.0)  # 3-7 NPCs each
        plan = s.plan(100)
        assert plan is not None
        return plan

    first, second = plan_for(["a", "b"], set()), plan_for(["c", "d", "e"], {"d"})
    alone = [_runner().step(first), _runner().step(second)]
    requests = [RunnerRequest.of(first), RunnerRequest.of(second)]
    assert [r.npcs.shape[1] for r in requests] == [6, 7]  # NPC padding stays home: each its own width
    merged_plan, rows = merge([(0, requests[0]), (8, requests[1])])
    assert list(merged_plan.slots) == [*first.slots, *(second.slots + 8)]
    merged = _runner().step(merged_plan)  # a runner with 16 slots: two blocks of 8
    for want, r in zip(alone, rows, strict=True):
        got = split(merged, r)
        for name in ("p_fail", "p_quit", "frustration", "engagement", "skill", "npc_tactic_p"):
            assert np.allclose(getattr(got, name), getattr(want, name), atol=1e-5), name
        assert set(got.explanations) == set(want.explanations)
    assert set(split(merged, rows[1]).explanations) == {1}  # "d" is the second front end's row 1


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine (run .ci/gpu_check.sh on one)"
)
def test_cuda_graphs_match_eager() -> None:
    torch.manual_seed(0)
    model = PlayerModel(ModelConfig(hidden=32, npc_embed=8, head_hidden=16, dropout=0.0))
    eager = Runner(model, "cpu", max_slots=16)
    graphs = Runner(PlayerModel(model.cfg).eval(), "cuda", max_slots=16, cuda_graphs=True)
    graphs.model.load_state_dict(model.state_dict())
    a = _drive(eager, [[(sid, t) for sid in "abc"] for t in range(1, 6)])
    b = _drive(graphs, [[(sid, t) for sid in "abc"] for t in range(1, 6)])
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine (run .ci/gpu_check.sh on one)"
)
def test_cuda_graphs_score_the_hinted_npcs_as_the_cpu_step() -> None:
    """The CUDA-graph step scores every NPC slot and picks the hinted ones out afterwards; the CPU step
    scores only those. Same plan, same weights: same predictions."""
    plan = _mixed_plan()
    cpu = _runner()
    graphs = Runner(PlayerModel(cpu.model.cfg).eval(), "cuda", max_slots=16, cuda_graphs=True)
    graphs.model.load_state_dict(cpu.model.state_dict())
    a, b = cpu.step(plan), graphs.step(plan)
    assert b.npc_tactic_p.shape == (len(plan.hint_rows), 6)
    for name in ("p_fail", "p_quit", "skill", "npc_tactic_p"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-4, err_msg=name)
