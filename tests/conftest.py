"""Shared fixtures: a real sidecar in this process on free ports, and clients for both transports."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator

import grpc
import pytest
import torch

from sidecar.engine.engine import EngineConfig
from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint, load_checkpoint
from sidecar.model.player_model import ModelConfig, PlayerModel
from sidecar.serving.inprocess import RunningSidecar, start_in_thread
from sidecar.serving.server import ServeConfig
from tests.ci import IN_CI

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A test that runs `metabrain ...` in-process (main() configures logging) leaves the root logger
    as it found it: later tests' sidecar threads do not print INFO lines through its handler."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def need_tool(missing: str) -> None:
    """A test that needs an engine runtime or tool: fails in CI when it is missing, skips elsewhere."""
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)


def need_mono() -> None:
    if shutil.which("mcs") is None or shutil.which("mono") is None:
        need_tool("Mono (mcs, mono) is missing: apt-get install mono-mcs mono-runtime (.ci/setup.sh does)")


@pytest.fixture(scope="session")
def bundled() -> Checkpoint:
    return load_checkpoint()


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Checkpoint:
    torch.manual_seed(0)
    model = PlayerModel(ModelConfig(hidden=16, npc_embed=8, head_hidden=16, dropout=0.0)).eval()
    return Checkpoint(model, "tiny-test-model (untrained)", trained=False)


def make_sidecar(checkpoint: Checkpoint, **overrides: object) -> RunningSidecar:
    limits = overrides.pop(
        "limits", Limits(max_npcs_per_frame=32, max_message_bytes=16 * 1024, max_frames_per_second=1e6)
    )
    engine = overrides.pop("engine", EngineConfig(device="cpu", max_slots=512))
    cfg = ServeConfig(grpc_port=0, ws_port=0, limits=limits, engine=engine, **overrides)  # type: ignore[arg-type]
    return start_in_thread(cfg, checkpoint)


@pytest.fixture()
def sidecar(tiny_checkpoint: Checkpoint) -> Iterator[RunningSidecar]:
    sc = make_sidecar(tiny_checkpoint)
    yield sc
    sc.stop()


@pytest.fixture()
def channel(sidecar: RunningSidecar) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(sidecar.grpc_address)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()
