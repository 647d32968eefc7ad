"""A real Prometheus server scrapes a sidecar under simulated load, and has every series we promise.

Needs Debian's `prometheus` (installed by .ci/setup.sh); fails in CI when it is missing, skips elsewhere.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest

from sidecar.engine.config import EngineConfig
from sidecar.engine.engine import Engine
from sidecar.limits import Limits
from sidecar.model.checkpoint import Checkpoint
from sidecar.operations.metrics import SidecarMetrics
from sidecar.serving.front_ends import free_port
from sidecar.session import SessionRegistry
from sidecar.wire.schema import pb
from sim.loadgen import LoadSpec, run_load
from tests.conftest import IN_CI
from tests.processes import SidecarProcess, wait_for

PROMETHEUS = shutil.which("prometheus")


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _value(port: int, expr: str) -> float:
    result = _query(port, expr)
    return float(result[0]["value"][1]) if result else float("nan")


def test_prometheus_scrapes_the_sidecar_under_load(tmp_path: Path) -> None:
    if PROMETHEUS is None:
        if IN_CI:
            pytest.fail("prometheus is not installed; .ci/setup.sh installs Debian's prometheus package")
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    with SidecarProcess(tmp_path) as sc:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: metabrain\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{sc.ports['metrics']}']\n"
        )
        port = free_port("127.0.0.1")
        prom = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("w"),
        )
        try:
            wait_for(lambda: _ready(port), timeout=60, what="prometheus to start")
            wait_for(lambda: _value(port, 'up{job="metabrain"}') == 1, timeout=30, what="the first scrape")
            result = run_load(LoadSpec(target=sc.ws_url, transport="ws", sessions=6, rate_hz=30, duration_s=5))
            assert result.guidance > 0
            time.sleep(2.5)  # two more scrapes after the load
            frames = _value(port, 'metabrain_frames_in_total{transport="websocket"}')
            guidance = _value(port, 'metabrain_guidance_out_total{transport="websocket"}')
            assert frames >= result.sent and guidance > 0
            assert _value(port, "metabrain_tick_batch_size_count") > 0
            assert _value(port, "metabrain_model_step_seconds_count") > 0
            assert _value(port, "metabrain_frame_latency_seconds_count") == pytest.approx(guidance)
            p99 = _value(port, "histogram_quantile(0.99, rate(metabrain_frame_latency_seconds_bucket[1m]))")
            assert 0 < p99 < 1.0
            assert _value(port, 'metabrain_sessions_active{state="detached"}') == 6
            assert _value(port, 'metabrain_device_memory_bytes{device="cpu"}') > 0
            info = _query(port, "metabrain_model_info")
            assert info and info[0]["metric"]["version"].startswith("metabrain-gru")
            assert _value(port, "metabrain_frames_superseded_total") >= 0
            # The default director, the portfolio: what it has learned, per game and candidate.
            assert _value(port, "sum(metabrain_portfolio_sessions_total)") == 6
            assert _value(port, "sum(metabrain_portfolio_play_seconds_total)") > 0
            assert _value(port, "min(metabrain_portfolio_mean_life_seconds)") > 0
            assert _value(port, 'metabrain_portfolio_start_offset{candidate="adaptive"}') == 0  # no session ended
            assert _value(port, "process_resident_memory_bytes") > 0  # prometheus_client's process collector
        finally:
            prom.terminate()
            prom.wait(30)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_per_frame_series_count_each_frame_once_in_the_right_bucket(tiny_checkpoint: Checkpoint) -> None:
    """The per-frame series are plain numbers exported at scrape time (metrics._FrameCounts): what a
    scrape reads is what prometheus_client's own Counter and Histogram would have said."""
    engine = Engine(tiny_checkpoint, EngineConfig(device="cpu", max_slots=8))
    metrics = SidecarMetrics(SessionRegistry(Limits()), engine, "static")
    ws, rpc = SimpleNamespace(session_id="a", arm=""), SimpleNamespace(session_id="b", arm="")
    metrics.on_open(ws, "websocket")  # type: ignore[arg-type]
    metrics.on_open(rpc, "grpc")  # type: ignore[arg-type]
    frame = pb.SessionRequest(frame=pb.Frame(sequence=1))
    for us in (0, 500, 501, 16_700, 2_000_000):  # on a bound counts in its bucket (le: less or equal)
        metrics.on_request(ws, frame, None)  # type: ignore[arg-type]
        metrics.on_response(ws, pb.SessionResponse(guidance=pb.Guidance(sequence=1, processing_us=us)))  # type: ignore[arg-type]
    metrics.on_request(rpc, frame, None)  # type: ignore[arg-type]
    metrics.on_response(rpc, pb.SessionResponse(superseded=pb.Superseded(sequence=1, by_sequence=2)))  # type: ignore[arg-type]
    get = metrics.registry.get_sample_value
    assert get("metabrain_frames_in_total", {"transport": "websocket"}) == 5
    assert get("metabrain_frames_in_total", {"transport": "grpc"}) == 1
    assert get("metabrain_guidance_out_total", {"transport": "websocket"}) == 5
    assert get("metabrain_guidance_out_total", {"transport": "grpc"}) == 0
    assert get("metabrain_frames_superseded_total") == 1
    bucket = "metabrain_frame_latency_seconds_bucket"
    assert get(bucket, {"le": "0.0005"}) == 2
    assert get(bucket, {"le": "0.001"}) == 3
    assert get(bucket, {"le": "0.0167"}) == 4
    assert get(bucket, {"le": "1.0"}) == 4
    assert get(bucket, {"le": "+Inf"}) == get("metabrain_frame_latency_seconds_count") == 5
    assert get("metabrain_frame_latency_seconds_sum") == pytest.approx(2.017701)
    assert b"# TYPE metabrain_frame_latency_seconds histogram" in generate_latest(metrics.registry)
