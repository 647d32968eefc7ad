"""The Unity package's Unity-free core: compiles alone with Mono's mcs, and runs against a real sidecar."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.operations.portfolio_store import PortfolioStore
from sidecar.serving.front_ends import free_port
from tests.conftest import need_mono
from tests.engine_tables import check_by_hand

ROOT = Path(__file__).resolve().parents[1]
UNITY = ROOT / "engine_plugins" / "unity"
CORE = sorted((UNITY / "Runtime" / "Core").rglob("*.cs"))


def test_core_compiles_without_unityengine(tmp_path: Path) -> None:
    need_mono()
    for f in CORE:
        assert not re.search(r"using\s+UnityEngine|UnityEngine\.", f.read_text()), f"{f} references UnityEngine"
    asmdef = json.loads((UNITY / "Runtime/Core/MetaBrain.Core.asmdef").read_text())
    assert asmdef["noEngineReferences"] is True
    # Once as for desktop, mobile and the editor; once as for a WebGL player (the jslib transport).
    for defines in ([], ["-define:UNITY_WEBGL"]):
        build = subprocess.run(
            ["mcs", "-langversion:7.2", "-target:library", *defines, f"-out:{tmp_path / 'core.dll'}", *map(str, CORE)],
            capture_output=True,
            text=True,
        )
        assert build.returncode == 0, [*defines, build.stdout + build.stderr]
        names = (tmp_path / "core.dll").read_bytes()  # type names sit in the assembly's metadata strings
        assert (b"BrowserWebSocketTransport\0" in names) == bool(defines)
        assert (b"ClientWebSocketTransport\0" in names) != bool(defines)


def test_unity_layer_type_checks(tmp_path: Path) -> None:
    """The MonoBehaviours and the sample against the UnityEngine API they use, as declared in
    tests/unity_api/ with Unity's signatures: catches our own type errors (a wrong argument, a missing
    member of the core), not differences from the real engine, which only a Unity editor can show."""
    need_mono()
    layer = [*sorted((UNITY / "Runtime" / "Unity").glob("*.cs")), UNITY / "Samples~" / "Arena" / "ArenaSample.cs"]
    api = ROOT / "tests" / "unity_api" / "UnityEngineSurface.cs"
    build = subprocess.run(
        ["mcs", "-langversion:7.2", "-target:library", "-r:System.Core.dll", f"-out:{tmp_path / 'layer.dll'}"]
        + [str(f) for f in (*CORE, *layer, api)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr


UNITY_ASSEMBLIES = {"UnityEngine.TestRunner", "UnityEditor.TestRunner"}  # what Unity itself provides


def test_package_validates() -> None:
    """What Unity's Package Manager and its package validation check: the manifest, an asmdef per
    assembly with references that resolve, a .meta with a unique GUID beside every file and folder
    Unity imports (not the ~ folders), no .meta left without its file, README/CHANGELOG/LICENSE."""
    pkg = json.loads((UNITY / "package.json").read_text())
    assert pkg["name"] == "com.metabrain.director" and re.fullmatch(r"\d+\.\d+\.\d+", pkg["version"])
    assert pkg["unity"] and pkg["displayName"] and pkg["description"] and pkg["license"]
    for name in ("README.md", "CHANGELOG.md", "LICENSE.md"):
        assert (UNITY / name).is_file(), name
    assert f"[{pkg['version']}]" in (UNITY / "CHANGELOG.md").read_text()
    for sample in pkg.get("samples", []):
        assert (UNITY / sample["path"]).is_dir(), sample
    imported = [p for p in UNITY.rglob("*") if not any(part.endswith("~") for part in p.relative_to(UNITY).parts)]
    guids: dict[str, Path] = {}
    for path in imported:
        if path.suffix == ".meta":
            assert path.with_suffix("").exists(), f"{path} has no file"
            guid = re.search(r"^guid: ([0-9a-f]{32})$", path.read_text(), re.M)
            assert guid, f"{path} has no GUID"
            assert guid[1] not in guids, f"{path} and {guids.get(guid[1])} share a GUID"
            guids[guid[1]] = path
        else:
            assert path.with_name(path.name + ".meta").exists(), f"{path} has no .meta file"
    asmdefs = {json.loads(p.read_text())["name"]: json.loads(p.read_text()) for p in UNITY.rglob("*.asmdef")}
    assert {
        "MetaBrain.Proto",
        "MetaBrain.Core",
        "MetaBrain.Unity",
        "MetaBrain.Tests.Runtime",
        "MetaBrain.Tests.Editor",
    } <= set(asmdefs)
    for name, a in asmdefs.items():
        assert set(a["references"]) <= set(asmdefs) | UNITY_ASSEMBLIES, (name, a["references"])
    assert (
        asmdefs["MetaBrain.Core"]["references"] == ["MetaBrain.Proto"]
        and asmdefs["MetaBrain.Proto"]["noEngineReferences"]
    )
    for tests in ("MetaBrain.Tests.Runtime", "MetaBrain.Tests.Editor"):
        a = asmdefs[tests]  # what Unity's Test Runner needs to list them
        assert "nunit.framework.dll" in a["precompiledReferences"] and "UNITY_INCLUDE_TESTS" in a["defineConstraints"]
        assert "UnityEngine.TestRunner" in a["references"] and not a["autoReferenced"]
    assert asmdefs["MetaBrain.Tests.Editor"]["includePlatforms"] == ["Editor"]
    assert (UNITY / "Samples~" / "Arena" / "ArenaSample.cs").exists()
    assert (UNITY / "Documentation~" / "index.md").exists()


@pytest.mark.slow
def test_core_against_real_sidecar(tmp_path: Path) -> None:
    need_mono()
    exe = tmp_path / "SessionTests.exe"
    sources = [*CORE, UNITY / "Tests~" / "ConsoleTests" / "SessionTests.cs"]
    build = subprocess.run(
        ["mcs", "-langversion:7.2", "-debug", "-r:System.Core.dll", f"-out:{exe}", *map(str, sources)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    port = free_port("127.0.0.1")
    run = subprocess.run(
        ["mono", "--debug", str(exe), sys.executable, str(ROOT), str(port), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout)
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert run.returncode == 0 and lines and lines[-1] == "7 passed, 0 failed", run.stdout[-3000:] + run.stderr[-3000:]
    assert check_by_hand((tmp_path / "state" / "csharp_tables.bin").read_bytes()) == ""
    # EndSession(cutShort: true): the sidecar's portfolio kept that session as ended, not as a quit (every
    # other way a session of this run ends counts as the player leaving).
    games = PortfolioStore(tmp_path / "state").games()
    evidence = games["metabrain.csharp.test"].values()
    assert sum(e.finished - e.quits for e in evidence) >= 1, evidence
    # EndSessionAndWait(false), as on quitting the app: that game's one session ended as the player's quit
    # (without the goodbye it would still be in its resume window when the sidecar was killed: not ended).
    quit_ = games["metabrain.csharp.quit"].values()
    assert sum(e.quits for e in quit_) == sum(e.finished for e in quit_) == 1, quit_
    # SetPaused(true) past the idle timeout: one session of that game, not ended as idle (it ends when the
    # client is disposed, without a goodbye: in its resume window when the sidecar is killed, so not ended).
    paused = games["metabrain.csharp.pause"].values()
    assert sum(e.assigned for e in paused) == 1 and sum(e.quits for e in paused) == 0, paused
