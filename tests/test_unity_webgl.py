"""The Unity package's WebGL transport: its .jslib linked and called in headless Chromium as a Unity
WebGL player calls it (tests/webgl: the Emscripten surface a jslib sees, and the call sequence of
BrowserWebSocketTransport and MetaBrainClient), against a real sidecar that restricts origins and
wants a token, as a sidecar serving a web build would. The C# side is type-checked under the WebGL
define in tests/test_unity_core.py.

Needs Debian's chromium (installed by .ci/setup.sh); fails in CI when it is missing, skips elsewhere.
"""

from __future__ import annotations

import base64
import http.server
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.model.checkpoint import Checkpoint
from sidecar.serving.front_ends import free_port
from sidecar.wire.schema import pb
from sim.game import hello
from sim.loadgen import FrameStream
from tests.conftest import make_sidecar
from tests.test_dashboard import _need_chromium

ROOT = Path(__file__).resolve().parents[1]
UNITY = ROOT / "engine_plugins" / "unity"
JSLIB = UNITY / "Runtime" / "Plugins" / "WebGL" / "MetaBrainWebSocket.jslib"
HARNESS = ROOT / "tests" / "webgl"
TOKEN = "webgl-test-token"
FRAMES = 300

PAGE = b"""<!doctype html><meta charset="utf-8"><title>metabrain WebGL transport</title>
<script src="unity_runtime.js"></script><script src="MetaBrainWebSocket.jslib"></script>
<script src="session.js"></script>
"""


@pytest.fixture()
def page_server() -> Iterator[int]:
    """The page a WebGL build would be served from: the runtime surface, the jslib, the session."""
    files = {
        "/": (PAGE, "text/html"),
        "/unity_runtime.js": ((HARNESS / "unity_runtime.js").read_bytes(), "text/javascript"),
        "/MetaBrainWebSocket.jslib": (JSLIB.read_bytes(), "text/javascript"),
        "/session.js": ((HARNESS / "session.js").read_bytes(), "text/javascript"),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, kind = files.get(self.path, (b"not found", "text/plain"))
            self.send_response(200 if self.path in files else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port("127.0.0.1")), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_jslib_session_in_headless_chromium(bundled: Checkpoint, page_server: int, tmp_path: Path) -> None:
    chromium = _need_chromium()
    from playwright.sync_api import sync_playwright

    origin = f"http://127.0.0.1:{page_server}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    sc = make_sidecar(bundled, allowed_origins=(origin,), token_file=str(token_file))
    knobs = {k.name: k for k in hello().knobs}
    stream = FrameStream(11)
    frames = [_b64(stream.next((i + 1) / 60.0)) for i in range(FRAMES)]
    hello_bytes = _b64(pb.SessionRequest(hello=hello(tick_rate_hz=60.0)).SerializeToString())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(origin + "/")
            # The token travels in the URL: a browser cannot set headers on a WebSocket.
            url = f"{sc.ws_url}?token={TOKEN}"
            out = page.evaluate("([u, h, f]) => metabrainSession(u, h, f, 60)", [url, hello_bytes, frames])
            no_token = page.evaluate("([u, h]) => metabrainSession(u, h, [], 60)", [sc.ws_url, hello_bytes])
            gone = page.evaluate("u => metabrainUnreachable(u)", f"ws://127.0.0.1:{free_port('127.0.0.1')}/x")
            # Another origin (localhost is not 127.0.0.1 to a browser) is refused by the sidecar.
            other = browser.new_page()
            other.goto(f"http://localhost:{page_server}/")
            foreign = other.evaluate("([u, h]) => metabrainSession(u, h, [], 60)", [url, hello_bytes])
            browser.close()
    finally:
        sc.stop()

    assert out["opened"], out.get("reason")
    assert out["sent"] == FRAMES and out["held"] == 0
    responses = [pb.SessionResponse.FromString(base64.b64decode(m)) for m in out["received"]]
    assert responses[0].WhichOneof("kind") == "welcome" and responses[0].welcome.session_id
    guidance = [r.guidance for r in responses[1:] if r.WhichOneof("kind") == "guidance"]
    assert len(responses) == FRAMES + 1 and len(guidance) == FRAMES, [r.WhichOneof("kind") for r in responses]
    assert [g.sequence for g in guidance] == list(range(1, FRAMES + 1))
    for g in guidance:
        for k in g.knobs:
            spec = knobs[k.name]
            assert math.isfinite(k.value) and spec.min_value <= k.value <= spec.max_value, (k.name, k.value)
    assert any(g.insights for g in guidance) and any(g.npc_hints for g in guidance)
    # Closed by the client: the state says so, a reason is readable, a freed handle is closed and inert.
    assert out["stateBeforeClose"] == 1 and out["stateAfterClose"] == 3
    assert out["reason"] == "closed by the client (1000)"
    assert out["stateAfterFree"] == 3 and out["sendAfterFree"] == -1

    # Without the token the sidecar refuses the upgrade: the socket closes with a reason, nothing received.
    assert not no_token["opened"] and no_token["received"] == [] and re.search(r"\(1006\b", no_token["reason"])
    assert not foreign["opened"] and foreign["received"] == []
    assert gone["state"] == 3 and "1006" in gone["reason"] and gone["nextLength"] == -1


def test_the_jslib_exports_what_the_csharp_transport_imports() -> None:
    """BrowserWebSocketTransport's [DllImport("__Internal")] functions are the jslib's, by name and arity."""
    cs = (UNITY / "Runtime" / "Core" / "Transport" / "BrowserWebSocketTransport.cs").read_text()
    imports = {
        name: len([a for a in args.split(",") if a.strip()])
        for name, args in re.findall(r'DllImport\("__Internal"\)\]\s+static extern \w+ (\w+)\(([^)]*)\)', cs)
    }
    js = JSLIB.read_text()
    exports = {
        name: len([a for a in args.split(",") if a.strip()])
        for name, args in re.findall(r"^  (MetaBrainWs_\w+): function \(([^)]*)\)", js, re.M)
    }
    assert imports and imports == exports
    session = (HARNESS / "session.js").read_text()
    assert {name for name in exports if f"_{name}(" not in session} == set()  # the harness calls each one
