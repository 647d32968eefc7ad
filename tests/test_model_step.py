"""The model step in C (sidecar/engine/_model_step.c): the model's predictions and states, to float32
rounding, for every input torch would take, with each kernel this CPU runs; declined, changing nothing,
for what it does not cover; and taken by a CPU runner for ticks up to COMPILED_UP_TO rows only."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from sidecar.engine.model_step import CompiledStep, compiled_step_available, compiled_step_for
from sidecar.engine.runner import COMPILED_UP_TO, COMPILED_UP_TO_BASELINE, Runner
from sidecar.engine.scheduler import Scheduler
from sidecar.model.checkpoint import load_checkpoint
from sidecar.model.player_model import ModelConfig, PlayerModel
from tests.ci import IN_CI
from tests.test_engine import LEVELS, feat

if not compiled_step_available():
    if IN_CI:
        pytest.fail("the compiled model step is not built (pip install -e . builds it with gcc)", pytrace=False)
    pytest.skip("the compiled model step is not built here (no C compiler)", allow_module_level=True)

from sidecar.engine import _model_step

ATOL = 2e-6  # float32 rounding: of the C's outputs and kept state, and of torch's float32 step (runner test)


def _models() -> list[PlayerModel]:
    torch.manual_seed(1)
    other = PlayerModel(ModelConfig(hidden=24, npc_embed=8, head_hidden=12, dropout=0.0)).eval()
    for p in other.parameters():  # weights of the size a trained model has, not init's small ones
        p.data.mul_(3.0)
    # Sizes that are not multiples of the kernel's four lanes or eight outputs: the left-over paths.
    odd = PlayerModel(ModelConfig(hidden=26, npc_embed=6, head_hidden=10, dropout=0.0)).eval()
    for p in odd.parameters():
        p.data.mul_(3.0)
    return [load_checkpoint(None).model.eval(), other, odd]


def _inputs(model: PlayerModel, rng: np.random.Generator, b: int, n: int, hostile: bool) -> dict[str, np.ndarray]:
    cfg = model.cfg
    scale = 50.0 if hostile else 1.0
    mask = rng.random((b, n)) < 0.6
    mask[0] = False  # a row with no NPC at all
    if b > 1:
        mask[1] = True  # and one with every slot
    players = (rng.normal(size=(b, cfg.player_dim)) * scale).astype(np.float32)
    grid = np.tile(np.linspace(0, 1, 11), (b, 1))
    scattered = rng.random((b, 12))  # 108 distinct levels at 9 rows; the last row repeats the first's
    scattered[-1] = scattered[0]
    if hostile:
        players[:, ::3] = 0.0
        players[:, 1::7] = 1e4
    return {
        "players": players,
        "npcs": (rng.normal(size=(b, n, cfg.npc_dim)) * scale).astype(np.float32),
        "mask": mask,
        "h": (rng.normal(size=(b, cfg.hidden)) * (3.0 if hostile else 0.5)).astype(np.float32),
        # A tick's rows share the candidate levels and each session adds its own: the C computes each
        # distinct level's part once. Past its cache of 64 (`scattered`) it computes them per use.
        "levels": (scattered if b == 9 else np.concatenate([grid, rng.random((b, 1))], 1)).astype(np.float32),
    }


def _torch(model: PlayerModel, x: dict[str, np.ndarray], rows: np.ndarray, slots: np.ndarray) -> list[np.ndarray]:
    """The model's own forward on x, in the model's dtype (float64 for the exact reference)."""
    n = x["mask"].shape[1]
    dtype = next(model.parameters()).dtype

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(dtype)

    with torch.inference_mode():
        out = model(
            t(x["players"])[:, None],
            t(x["npcs"])[:, None],
            torch.from_numpy(x["mask"])[:, None],
            t(x["h"])[None],
            t(x["levels"])[:, None],
            torch.from_numpy(rows * n + slots),
        )
    return [
        torch.sigmoid(out.fail_logits[:, 0]).numpy(),
        torch.sigmoid(out.quit_logits[:, 0]).numpy(),
        out.frustration[:, 0].numpy(),
        out.engagement[:, 0].numpy(),
        out.skill[:, 0].numpy(),
        torch.sigmoid(out.npc_logits).numpy(),
        out.h[0].numpy(),
    ]


def _compiled(step: CompiledStep, x: dict[str, np.ndarray], rows: np.ndarray, slots: np.ndarray) -> list[np.ndarray]:
    b, hidden = x["h"].shape
    pool = np.full((b + 5, hidden), 7.0, np.float32)
    where = np.arange(b, dtype=np.int64)[::-1] + 2  # slots out of row order
    pool[where] = x["h"]
    got = step(pool, where, x["players"], x["npcs"], x["mask"], x["levels"], rows, slots)
    assert got is not None
    fail, quit_, frus, eng, skill, value, npc = got
    assert value.shape == (b, x["levels"].shape[1], 0)
    untouched = np.ones(b + 5, bool)
    untouched[where] = False
    assert (pool[untouched] == 7.0).all()  # only the rows' own slots are written
    return [fail, quit_, frus, eng, skill, npc, pool[where]]


@pytest.fixture(params=_model_step.kernels())
def kernel(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each kernel this CPU runs (AVX2 and the baseline one on x86-64 with AVX2), in use for the test."""
    before = _model_step.use_kernel(request.param)
    yield request.param
    _model_step.use_kernel(before)


@pytest.mark.parametrize("hostile", [False, True])
def test_the_c_step_predicts_what_the_model_does(hostile: bool, kernel: str) -> None:
    """Random and hostile inputs (huge and zero features, no NPC, every slot an NPC), 1-33 rows (the
    kernel's blocks of four and what is left over), every present NPC's tactics: every output and the
    new state within float32 rounding of the model's."""
    rng = np.random.default_rng(7 + hostile)
    for model in _models():
        step = compiled_step_for(model)
        assert step is not None
        # The reference is the model's function itself, the float32 weights and inputs in float64: torch's
        # float32 forward carries its own rounding, up to 8e-6 on the hostile inputs of the third model,
        # where the C (double inside) is within 3e-8 of this.
        exact = copy.deepcopy(model).double()
        for b in (1, 2, 3, 4, 6, 9, 33):
            for n in (1, 5, 16):
                x = _inputs(model, rng, b, n, hostile)
                rows, slots = (a.astype(np.int64) for a in np.nonzero(x["mask"]))
                want = _torch(exact, x, rows, slots)
                got = _compiled(step, x, rows, slots)
                for name, g, w in zip(("fail", "quit", "frus", "eng", "skill", "npc", "h"), got, want, strict=True):
                    assert g.shape == w.shape, name
                    assert np.isfinite(g).all(), name
                    where = f"{name}: {b} rows, {n} NPCs, {kernel}"
                    np.testing.assert_allclose(g, w, atol=ATOL, rtol=1e-5, err_msg=where)


def test_it_declines_what_it_does_not_expect_and_changes_nothing() -> None:
    model = _models()[0]
    step = compiled_step_for(model)
    assert step is not None
    rng = np.random.default_rng(3)
    x = _inputs(model, rng, 3, 4, False)
    rows, slots = (a.astype(np.int64) for a in np.nonzero(x["mask"]))
    pool = rng.normal(size=(8, model.cfg.hidden)).astype(np.float32)
    before = pool.copy()
    at = np.array([1, 4, 6], np.int64)
    args: list[np.ndarray] = [pool, at, x["players"], x["npcs"], x["mask"], x["levels"], rows, slots]
    cases: dict[str, tuple[int, np.ndarray]] = {
        "float64 players": (2, x["players"].astype(np.float64)),
        "int32 slots": (1, at.astype(np.int32)),
        "a slot past the pool": (1, np.array([1, 4, 8], np.int64)),
        "a negative slot": (1, np.array([1, -1, 6], np.int64)),
        "an NPC slot past the width": (7, slots + 4),
        "a pair past the rows": (6, rows + 3),
        "fewer player features": (2, x["players"][:, :-1].copy()),
        "levels for fewer rows": (5, x["levels"][:2].copy()),
        "a Fortran-ordered pool": (0, np.asfortranarray(pool)),
    }
    for what, (i, bad) in cases.items():
        got = step(*[bad if j == i else a for j, a in enumerate(args)])
        assert got is None, what
        np.testing.assert_array_equal(pool, before, err_msg=what)
    short = CompiledStep(step.weights[:-1], step.dims)
    assert short(*args) is None  # weights of another length than the dimensions say
    np.testing.assert_array_equal(pool, before)
    assert step(*args) is not None  # and the same call with nothing wrong is done


def test_only_the_model_shape_it_covers_gets_it() -> None:
    cfg = ModelConfig(hidden=16, npc_embed=8, head_hidden=16, dropout=0.0)
    assert compiled_step_for(PlayerModel(cfg)) is not None
    assert compiled_step_for(PlayerModel(replace(cfg, layers=2))) is None
    assert compiled_step_for(PlayerModel(replace(cfg, value_members=3))) is None
    tanh = PlayerModel(cfg)
    tanh.risk_head[1] = nn.GELU(approximate="tanh")
    assert compiled_step_for(tanh) is None
    relu = PlayerModel(cfg)
    relu.npc_enc[1] = nn.ReLU()
    assert compiled_step_for(relu) is None


@pytest.mark.parametrize("kernel", _model_step.kernels())
def test_a_runner_takes_it_for_small_ticks_only(monkeypatch: pytest.MonkeyPatch, kernel: str) -> None:
    """A CPU runner steps up to COMPILED_UP_TO rows in C with the AVX2 kernel (COMPILED_UP_TO_BASELINE
    with the baseline one) and more in torch; both carry the state on, and a runner made with
    compiled=False (serve --pure-python) never takes it: same predictions, tick after tick, at every size."""
    before = _model_step.use_kernel(kernel)
    try:
        _runner_takes_it(monkeypatch, COMPILED_UP_TO if kernel == "avx2" else COMPILED_UP_TO_BASELINE)
    finally:
        _model_step.use_kernel(before)


def _runner_takes_it(monkeypatch: pytest.MonkeyPatch, up_to: int) -> None:
    calls: list[int] = []
    real = CompiledStep.__call__

    def counted(self: CompiledStep, *args: np.ndarray) -> tuple[np.ndarray, ...] | None:
        calls.append(len(args[1]))
        return real(self, *args)

    monkeypatch.setattr(CompiledStep, "__call__", counted)
    torch.manual_seed(0)
    model = PlayerModel(ModelConfig(hidden=32, npc_embed=8, head_hidden=16, dropout=0.0)).eval()
    slots = up_to + 8
    fast, plain = Runner(model, "cpu", max_slots=slots), Runner(model, "cpu", max_slots=slots, compiled=False)
    assert fast.compiled_up_to == up_to and plain.compiled_up_to == 0
    schedulers = {r: Scheduler(slots, LEVELS) for r in (fast, plain)}
    sizes = [1, 3, up_to, up_to + 3, 2, 8, 1]
    for t, size in enumerate(sizes, start=1):
        got = []
        for runner, s in schedulers.items():
            for i in range(size):
                if s.slot_of(f"s{i}", "p1") is None:
                    s.join(f"s{i}")
                s.submit(f"s{i}", feat(t, seed=i), i, 0.0)
            plan = s.plan(100)
            assert plan is not None and plan.batch == size
            got.append(runner.step(plan))
        a, b = got
        for name in ("p_fail", "p_quit", "frustration", "engagement", "skill", "npc_tactic_p"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=ATOL, err_msg=f"{name}, tick {t}")
    assert calls == [n for n in sizes if n <= up_to]
