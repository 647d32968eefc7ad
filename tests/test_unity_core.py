"""The Unity package's Unity-free core: compiles alone with Mono's mcs, and runs against a real sidecar."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.front_ends import free_port
from tests.conftest import IN_CI
from tests.engine_tables import check_by_hand

ROOT = Path(__file__).resolve().parents[1]
UNITY = ROOT / "engine_plugins" / "unity"
CORE = sorted((UNITY / "Runtime" / "Core").rglob("*.cs"))


def _need_mono() -> None:
    if shutil.which("mcs") is None or shutil.which("mono") is None:
        if IN_CI:
            pytest.fail("Mono (mcs, mono) is missing; .ci/setup.sh installs it")
        pytest.skip("Mono is not installed (apt-get install mono-mcs mono-runtime)")


def test_core_compiles_without_unityengine(tmp_path: Path) -> None:
    _need_mono()
    for f in CORE:
        assert not re.search(r"using\s+UnityEngine|UnityEngine\.", f.read_text()), f"{f} references UnityEngine"
    asmdef = json.loads((UNITY / "Runtime/Core/MetaBrain.Core.asmdef").read_text())
    assert asmdef["noEngineReferences"] is True
    build = subprocess.run(
        ["mcs", "-langversion:7.2", "-target:library", f"-out:{tmp_path / 'core.dll'}", *map(str, CORE)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr


def test_unity_layer_type_checks(tmp_path: Path) -> None:
    """The MonoBehaviours and the sample against the UnityEngine API they use, as declared in
    tests/unity_api/ with Unity's signatures: catches our own type errors (a wrong argument, a missing
    member of the core), not differences from the real engine, which only a Unity editor can show."""
    _need_mono()
    layer = [*sorted((UNITY / "Runtime" / "Unity").glob("*.cs")), UNITY / "Samples~" / "Arena" / "ArenaSample.cs"]
    api = ROOT / "tests" / "unity_api" / "UnityEngineSurface.cs"
    build = subprocess.run(
        ["mcs", "-langversion:7.2", "-target:library", "-r:System.Core.dll", f"-out:{tmp_path / 'layer.dll'}"]
        + [str(f) for f in (*CORE, *layer, api)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr


def test_package_layout() -> None:
    pkg = json.loads((UNITY / "package.json").read_text())
    assert pkg["name"] == "com.metabrain.director" and pkg["unity"]
    for path in (UNITY / "Runtime").rglob("*"):
        if path.suffix != ".meta":
            assert path.with_name(path.name + ".meta").exists(), f"{path} has no .meta file"
    assert (UNITY / "Samples~" / "Arena" / "ArenaSample.cs").exists()
    assert (UNITY / "Documentation~" / "index.md").exists()


@pytest.mark.slow
def test_core_against_real_sidecar(tmp_path: Path) -> None:
    _need_mono()
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
    assert run.returncode == 0 and lines and lines[-1] == "4 passed, 0 failed", run.stdout[-3000:] + run.stderr[-3000:]
    assert check_by_hand((tmp_path / "state" / "csharp_tables.bin").read_bytes()) == ""
