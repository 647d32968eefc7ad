"""The Unity package's NUnit tests (Tests/Runtime, Tests/Editor: what Unity's Test Runner lists), compiled
with Mono's mcs against the package's Unity-free assemblies and run by tests/unity_nunit (a small runner
over the part of NUnit's API the tests use; no NUnit assembly can be had here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import need_mono

ROOT = Path(__file__).resolve().parents[1]
UNITY = ROOT / "engine_plugins" / "unity"


def test_the_package_tests_pass_under_mono(tmp_path: Path) -> None:
    need_mono()
    sources = [
        *sorted((UNITY / "Runtime" / "Core").rglob("*.cs")),
        *sorted((UNITY / "Tests").rglob("*.cs")),
        *sorted((ROOT / "tests" / "unity_nunit").glob("*.cs")),
    ]
    exe = tmp_path / "unity_tests.exe"
    build = subprocess.run(
        ["mcs", "-langversion:7.2", "-r:System.Core.dll", f"-out:{exe}", *map(str, sources)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run(["mono", str(exe)], capture_output=True, text=True, timeout=120)
    print(run.stdout)
    lines = run.stdout.strip().splitlines()
    tests = len(list((UNITY / "Tests").rglob("*Tests.cs")))
    assert run.returncode == 0 and lines[-1].endswith(" passed, 0 failed") and tests == 3, run.stdout + run.stderr
    assert sum(line.startswith("PASS ") for line in lines) >= 11
