"""The live dashboard in headless Chromium, with simulated players streaming to the sidecar.

Needs Debian's chromium (installed by .ci/setup.sh); fails in CI when it is missing, skips elsewhere.
The screenshot is kept under build/test-artifacts/ (gitignored).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path

import pytest

from sidecar.model.checkpoint import Checkpoint
from sidecar.policies.portfolio import DEFAULT_ARMS
from sim.client import ClientConfig, play_many
from sim.populations import load_population
from tests.conftest import IN_CI, make_sidecar

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"


def _need_chromium() -> str:
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("chromium is not installed; .ci/setup.sh installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def test_dashboard_shows_sessions_and_live_curves(bundled: Checkpoint) -> None:
    chromium = _need_chromium()
    from playwright.sync_api import sync_playwright

    sc = make_sidecar(bundled, dashboard_port=0)
    players = load_population("default", 5).players(3)
    # The players start once the page is live: a browser slow to start (CI's first launch) must not
    # find their sessions already over.
    cfg = ClientConfig(target=sc.ws_url, transport="websocket", realtime=True, max_seconds=40.0, seed=5)
    play = threading.Thread(target=lambda: asyncio.run(play_many(players, cfg)), daemon=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{sc.sidecar.dashboard_port}/")
            page.wait_for_function("document.getElementById('status').textContent === 'live'", timeout=20_000)
            play.start()
            page.wait_for_function(
                "document.querySelectorAll('#sessions tbody tr:not(.closed)').length >= 3", timeout=20_000
            )
            assert page.inner_text("#session-count") == "3"
            assert page.inner_text("#model") == bundled.version
            policies = page.eval_on_selector_all(
                "#sessions tbody tr td:nth-child(3)", "els => els.map(e => e.textContent)"
            )
            # The default director: each session shows the candidate the portfolio gave it.
            arms = {f"portfolio: {a.label}" for a in DEFAULT_ARMS}
            assert policies and set(policies) <= arms, policies
            points = "Math.min(...[...document.querySelectorAll('canvas')].map(c => +(c.dataset.points || 0)))"
            page.wait_for_function(f"{points} >= 5", timeout=20_000)
            first = page.evaluate(points)
            updates = int(page.inner_text("#updates"))
            time.sleep(2.0)
            assert page.evaluate(points) > first  # the curves grow while the players play
            assert int(page.inner_text("#updates")) > updates
            difficulty = page.inner_text("#sessions tbody tr td:nth-child(5)")
            assert 0.0 <= float(difficulty) <= 1.0
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            browser.close()
    finally:
        sc.stop()
        if play.is_alive():
            play.join(30)
