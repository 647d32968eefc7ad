"""The command line as a new user meets it: every README command runs, and every mistake a user makes
gets one clear line (what is wrong and what to do) and an exit code that means something, never a
traceback. Exit codes: 0 done, 1 the run failed (a sidecar unreachable or lost), 2 the command was wrong.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import SidecarProcess

ROOT = Path(__file__).resolve().parents[1]


def metabrain(*args: str, timeout: float = 120.0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("METABRAIN_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env=env,
    )


def _clean(run: subprocess.CompletedProcess[str], code: int) -> str:
    """Asserts the exit code and that no traceback was printed; returns stderr's last line."""
    text = run.stdout + run.stderr
    assert "Traceback" not in text, text[-3000:]
    assert run.returncode == code, (run.returncode, text[-3000:])
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("sim", "--target", "127.0.0.1:1", "--sessions", "1", "--seconds", "2"), 1, "cannot reach a sidecar"),
        (("sim", "--target", "localhost", "--sessions", "1"), 2, "give host:port"),
        (("sim", "--population", "wizard=2", "--sessions", "1"), 2, "'wizard' is not a population"),
        (("sim", "--population", "novice=abc", "--sessions", "1"), 2, "is not a number"),
        (("sim", "--population", "nofile.py:X", "--sessions", "1"), 2, "does not exist"),
        (("demo", "--population", "wizard"), 2, "'wizard' is not a population"),
        (("replay", "nosuchdir/"), 2, "no such file or directory"),
        (("serve", "--grpc-port", "abc"), 2, "'abc' is not a port"),
        (("evaluate-directors", "--policies", "static:0.4,bogus", "--players", "1"), 2, "bogus"),
        (("evaluate-directors", "--seeds", "1,two", "--players", "1"), 2, "--seeds must be comma-separated"),
        (("sim", "--policy", "static", "--param", "level=high", "--sessions", "1"), 2, "level"),
        (("serve", "--port", "0"), 2, "unrecognized arguments: --port"),  # not taken for --ports-file
        (("sim", "--sess", "1"), 2, "unrecognized arguments: --sess"),
    ],
    ids=[
        "unreachable",
        "no-port",
        "archetype",
        "weight",
        "factory-file",
        "demo-population",
        "replay",
        "port",
        "policy",
        "seeds",
        "param",
        "prefix-of-an-option",
        "prefix-in-a-subcommand",
    ],
)
def test_mistakes_get_one_clear_line(args: tuple[str, ...], code: int, words: str) -> None:
    t0 = time.monotonic()
    run = metabrain(*args, timeout=60)
    last = _clean(run, code)
    assert words in last, run.stderr[-2000:]
    if args[0] == "demo":
        assert time.monotonic() - t0 < 15, "the demo checked its population before starting a sidecar"


@pytest.mark.parametrize(
    "module,args",
    [
        ("sidecar.training.switch_points", ("compare", "--train", "a.npz", "--test", "b.npz", "--design", "0.5")),
        ("sim.bench.model_step", ("--row", "1")),
        ("sim.bench.servers", ("echo", "--ports", "p.txt")),
    ],
    ids=["switch-points", "bench-model-step", "bench-servers"],
)
def test_module_commands_take_whole_option_names_too(module: str, args: tuple[str, ...]) -> None:
    """The `python -m` commands the docs name refuse a prefix of an option, as `metabrain` does."""
    run = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and f"unrecognized arguments: {args[-2]}" in run.stderr, run.stderr[-2000:]


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path) as sc:
        port = sc.ports["grpc"]
        run = metabrain("serve", "--grpc-port", str(port), "--ws-port", "0", timeout=60)
        last = _clean(run, 2)
        assert f"{port}: the port is already in use" in last
        assert "add_port" not in run.stderr and "E1" not in run.stderr.split("metabrain serve:")[0]


def test_sim_against_a_sidecar_that_dies_exits_1(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path) as sc:
        sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sidecar.cli",
                "sim",
                "--target",
                sc.target("grpc"),
                "--sessions",
                "2",
                "--seconds",
                "8",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        time.sleep(4.0)
        sc.proc.send_signal(signal.SIGKILL)
        out, err = sim.communicate(timeout=60)
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert sim.returncode == 1, (out + err)[-3000:]
    assert "lost the sidecar" in err and "unanswered" in out


def test_readme_commands_run(tmp_path: Path) -> None:
    """The README's commands, at a small size."""
    run = metabrain("demo", "--players", "2", "--seconds", "4", "--out", str(tmp_path / "demo"), timeout=180)
    _clean(run, 0)
    assert (tmp_path / "demo" / "demo.png").stat().st_size > 10_000 and ", unanswered 0" in run.stdout
    recs = tmp_path / "recs"
    run = metabrain("sim", "--sessions", "3", "--seconds", "30", "--record-dir", str(recs), timeout=180)
    _clean(run, 0)
    assert "mean s" in run.stdout and "capped" in run.stdout and len(list(recs.glob("*.mbrec"))) == 3
    run = metabrain("replay", str(recs), "--png", str(tmp_path / "replay.png"), timeout=180)
    _clean(run, 0)
    assert "identical" in run.stdout and "knob units" in run.stdout and "INFO" not in run.stderr
    run = metabrain(
        "evaluate-directors",
        "--players",
        "2",
        "--max-seconds",
        "20",
        "--policies",
        "static:0.4,learned",
        "--population",
        str(ROOT / "tests" / "populations" / "custom.py") + ":Factory",
        "--out",
        str(tmp_path / "eval"),
        timeout=300,
    )
    _clean(run, 0)
    assert sorted(p.name for p in (tmp_path / "eval").glob("*.png")) == [
        "difficulty_vs_skill_custom.py-Factory.png",
        "session_length_custom.py-Factory.png",
    ]
    run = metabrain("proto")
    assert _clean(run, 0) == "" and run.stdout.strip().endswith("metabrain/v1/metabrain.proto")
    run = metabrain("bench-model", "--batches", "1", "--repeats", "2", timeout=180)
    _clean(run, 0)
    for command in ("serve", "sim", "replay", "evaluate-directors", "bench", "train", "health"):
        help_text = metabrain(command, "--help").stdout
        assert "usage: metabrain" in help_text
    assert "(default: 50051)" in metabrain("serve", "--help").stdout


def _health(target: str, after: str) -> subprocess.CompletedProcess[str]:
    """`metabrain health --target TARGET` in a fresh interpreter, then the Python statement `after`."""
    code = f"import sys; from sidecar.cli import main; code = main(); {after}"
    return subprocess.run(
        [sys.executable, "-c", code, "health", "--target", target],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_health_is_a_light_probe(tmp_path: Path) -> None:
    """A Kubernetes exec probe runs every few seconds with a 3 s timeout: it must not load torch (or the
    model code), so it costs a fraction of what a probe that imports torch would, whatever the load."""
    with SidecarProcess(tmp_path) as sc:
        target = sc.target("grpc")
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            run = _health(target, "sys.exit(code)")
            timings.append(time.perf_counter() - t0)
            assert run.returncode == 0 and "SERVING" in run.stdout
        modules = _health(target, "print(sorted(sys.modules))").stdout
        assert "'torch'" not in modules and "'sidecar.model'" not in modules
        heavy = []  # the baseline, in the same test: a fresh interpreter that only imports torch
        for _ in range(2):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            heavy.append(time.perf_counter() - t0)
    print(f"metabrain health: {min(timings):.3f}-{max(timings):.3f} s wall; importing torch: {min(heavy):.3f} s")
    assert min(timings) < min(heavy) / 2
