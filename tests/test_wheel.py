"""The package stands on its own: the built wheel holds LICENSE, the .proto and the trained checkpoint,
and installed into a clean virtualenv it runs `metabrain demo` from a folder outside the repository;
README line one works from a copy holding only what git tracks."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _venv(path: Path) -> Path:
    """A fresh virtualenv; dependencies (torch alone is gigabytes) come from this interpreter's
    site-packages, the package itself only from what the test installs (each test checks where
    `sidecar` is imported from)."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)], check=True, timeout=300)
    return path / "bin" / "python"


def _sidecar_file(py: Path, cwd: Path, env: dict[str, str]) -> str:
    where = subprocess.run(
        [str(py), "-c", "import sidecar; print(sidecar.__file__)"], cwd=cwd, env=env, capture_output=True, text=True
    )
    return where.stdout.strip() + where.stderr


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # With build isolation, as a user's `pip wheel` runs: pip fetches the build backend pyproject asks for.
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob("metabrain-*.whl")
    return path


def test_the_wheel_holds_license_proto_and_checkpoint(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert "sidecar/gen/proto/metabrain/v1/metabrain.proto" in names
    assert "sidecar/checkpoints/default.pt" in names and "sidecar/checkpoints/MODEL_CARD.md" in names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    # The compiled per-frame code is built into it (this machine has gcc; where none is, the build skips it).
    compiled = ("sidecar/wire/_frame_reader", "sidecar/engine/_between", "sidecar/features/_frame_kernel")
    for module in (*compiled, "sidecar/engine/_model_step"):
        assert [n for n in names if n.startswith(module) and n.endswith(".so")], (module, names)
        assert f"{module}.pyi" in names


def test_a_clean_venv_runs_the_demo_outside_the_repo(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    py, exe = _venv(venv), venv / "bin" / "metabrain"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = _clean_env()
    assert _sidecar_file(py, away, env).startswith(str(venv))
    proto = subprocess.run([str(exe), "proto"], cwd=away, env=env, capture_output=True, text=True, timeout=60)
    assert proto.returncode == 0 and Path(proto.stdout.strip().splitlines()[-1]).is_file(), proto.stderr
    demo = subprocess.run(
        [str(exe), "demo", "--players", "2", "--seconds", "8", "--out", str(away / "out")],
        cwd=away,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "Traceback" not in demo.stderr and (away / "out" / "demo.png").stat().st_size > 10_000


def test_the_readme_demo_command_from_a_fresh_copy_in_a_fresh_venv(tmp_path: Path) -> None:
    """README line one, `bash .ci/setup.sh && metabrain demo`, in a copy holding only the files git
    tracks (what a fresh clone has) and a fresh virtualenv: nothing the repo forgot to commit is used."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    clone = tmp_path / "clone"
    for name in tracked.decode().split("\0"):
        src = ROOT / name
        if name and src.is_file():  # a file deleted in the working tree is not in a clone either
            dest = clone / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read_bytes())
            dest.chmod(src.stat().st_mode)
    venv = tmp_path / "venv"
    py = _venv(venv)
    env = _clean_env()
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    env["PYTHON"] = str(py)
    proc = subprocess.run(
        ["bash", "-c", "bash .ci/setup.sh && metabrain demo --players 2 --seconds 8"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (clone / "demo-out" / "demo.png").stat().st_size > 10_000
    assert _sidecar_file(py, tmp_path, env).startswith(str(clone))
