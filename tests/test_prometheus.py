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
from typing import Any

import pytest

from sidecar.serving.front_ends import free_port
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
