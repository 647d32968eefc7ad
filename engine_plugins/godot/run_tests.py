#!/usr/bin/env python3
"""Headless Godot 4 tests of the MetaBrain addon against a real sidecar.

Uses $GODOT, else `godot` on PATH, else /tmp/godot4/godot, else installs Godot 4.6 with
install-godot4.sh (beside this file). Builds a scratch copy of this folder's project (demo + addon +
tests), runs the import pass, starts a real sidecar on free ports, runs each GDScript test under a
timeout (each also has its own watchdog), then installs the addon from its Asset Library zip
(package_addon.py) into an empty project, enables and disables it in the editor, and runs it there.
Prints a closing `N passed, N failed` line. Exit code 0 only when all passed; 77 when Godot cannot be
had (a developer machine may skip; CI treats it as failure).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))  # the sidecar's own ports-file reader, without needing it installed

from sidecar.serving.ports_file import read_ports_file  # noqa: E402

INSTALL = HERE / "install-godot4.sh"
CLOSED_GAME = "metabrain.godot.closed"  # test_close.gd's game: the one session in it is the window closed
SCENE_GAME = "metabrain.godot.scene"  # test_scene_change.gd's game: its one session left with its scene
PAUSE_GAME = "metabrain.godot.pause"  # test_pause.gd's game: one session, paused past the idle timeout


def find_godot(install: bool) -> str | None:
    for cand in (os.environ.get("GODOT"), shutil.which("godot"), "/tmp/godot4/godot"):
        if cand and Path(cand).exists():
            return cand
    if install and INSTALL.exists():
        print(f"installing Godot 4 with {INSTALL}", flush=True)
        subprocess.run(["bash", str(INSTALL)], check=False, stdout=sys.stderr)
        if Path("/tmp/godot4/godot").exists():
            return "/tmp/godot4/godot"
    return None


class Sidecar:
    def __init__(self, workdir: Path, port: int = 0, extra: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.port = port
        self.extra = extra  # more `metabrain serve` options
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> int:
        ports = self.workdir / "ports.txt"
        ports.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "sidecar.cli",
            "serve",
            "--grpc-port",
            "off",
            "--ws-port",
            str(self.port),
            "--ports-file",
            str(ports),
            "--state-dir",
            str(self.workdir / "state"),
            "--max-fps",
            "100000",
            "--log-level",
            "WARNING",
            *self.extra,
        ]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while not ports.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the sidecar did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            time.sleep(0.05)
        self.port = read_ports_file(ports)["ws"]  # written whole (renamed into place): no half-read
        return self.port

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def make_project(root: Path) -> Path:
    """A scratch copy of this folder's project: demo, addon and tests, as a developer opens it."""
    proj = root / "project"
    proj.mkdir(parents=True)
    shutil.copy(HERE / "project.godot", proj / "project.godot")
    for sub in ("addons", "demo", "tests"):
        shutil.copytree(HERE / sub, proj / sub)
    shutil.copy(REPO / "proto" / "testdata" / "vectors.json", proj / "vectors.json")
    return proj


def make_empty_project(root: Path) -> Path:
    """An empty project with the addon installed from the Asset Library zip, the test harness, and a
    test-only plugin that enables and disables MetaBrain in the editor as a user would."""
    from package_addon import build, install

    proj = root / "empty"
    proj.mkdir(parents=True)
    (proj / "project.godot").write_text(
        'config_version=5\n\n[application]\n\nconfig/name="empty"\n\n[editor_plugins]\n\n'
        'enabled=PackedStringArray("res://addons/metabrain_toggle/plugin.cfg")\n'
    )
    install(build(root / "dist"), proj)
    shutil.copytree(HERE / "tests" / "toggle_plugin", proj / "addons" / "metabrain_toggle")
    (proj / "tests").mkdir()
    for name in ("harness.gd", "test_addon_loads.gd"):
        shutil.copy(HERE / "tests" / name, proj / "tests" / name)
    return proj


def check_toggle(proj: Path) -> str:
    """What the toggle plugin saw: enabling saved the settings, disabling took them out again."""
    path = proj / "toggle.json"
    if not path.exists():
        return "the toggle plugin wrote nothing"
    seen = json.loads(path.read_text())
    on, off = seen["enabled"], seen["disabled"]
    wrong = []
    if not on["plugin_enabled"] or "network/port" not in on["saved_keys"] or not on["port_setting"]:
        wrong.append(f"after enabling: {on}")
    if off["plugin_enabled"] or off["saved_keys"] or off["port_setting"]:
        wrong.append(f"after disabling: {off}")
    return "; ".join(wrong)


class Runner:
    def __init__(self, godot: str, scratch: Path) -> None:
        self.godot = godot
        self.scratch = scratch
        self.env = {
            **os.environ,
            "HOME": str(scratch / "home"),
            "XDG_DATA_HOME": str(scratch / "xdg-data"),
            "XDG_CONFIG_HOME": str(scratch / "xdg-config"),
            "XDG_CACHE_HOME": str(scratch / "xdg-cache"),
        }
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.results: dict[str, object] = {}

    def godot_run(self, proj: Path, args: list[str], timeout: float, on_line: object = None) -> tuple[int, str]:
        cmd = [self.godot, "--headless", "--path", str(proj), *args]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line)  # type: ignore[operator]

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = 124
        reader.join(5)
        return code, "".join(lines)

    def import_pass(self, proj: Path, editor: bool = False) -> None:
        # With editor=True the editor starts once (plugins run their _enter_tree), then quits.
        args = ["--editor", "--quit-after", "600"] if editor else ["--import"]
        code, out = self.godot_run(proj, args, 180)
        bad = [
            line
            for line in out.splitlines()
            if "SCRIPT ERROR" in line or "Parse Error" in line or ("ERROR" in line and "metabrain" in line.lower())
        ]
        self.record(f"import {proj.name}", code == 0 and not bad, "\n".join(bad[:10]) or out[-1500:])

    def record(self, name: str, ok: bool, detail: str = "") -> None:
        (self.passed if ok else self.failed).append(name)
        print(f"{'PASS' if ok else 'FAIL'} {name}", flush=True)
        if not ok and detail:
            print("    " + detail.replace("\n", "\n    "), flush=True)

    def script_test(
        self, proj: Path, name: str, script: str, args: list[str], timeout: float, on_line: object = None
    ) -> dict[str, object] | None:
        code, out = self.godot_run(proj, ["--script", f"res://tests/{script}", "--", *args], timeout, on_line)
        result = None
        for line in out.splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
        ok = code == 0 and result is not None and not result.get("failures")
        self.results[name] = result
        errors = [line for line in out.splitlines() if "SCRIPT ERROR" in line or line.startswith("FAIL")]
        self.record(name, ok, f"exit {code}; " + "\n".join(errors[:12]) + ("\n" + out[-1200:] if not errors else ""))
        return result


def main() -> int:
    godot = find_godot(install=True)
    if godot is None:
        print("Godot 4 not found ($GODOT, godot on PATH) and could not be installed", flush=True)
        print("0 passed, 0 failed")
        return 77
    scratch = Path(tempfile.mkdtemp(prefix="metabrain-godot-"))
    runner = Runner(godot, scratch)
    version = subprocess.run([godot, "--headless", "--version"], capture_output=True, text=True, env=runner.env)
    print(f"Godot {version.stdout.strip()} at {godot}; scratch {scratch}", flush=True)
    proj = make_project(scratch)
    runner.import_pass(proj)
    side = Sidecar(scratch)
    try:
        port = side.start()
        out_file = scratch / "gd_vectors.json"
        runner.script_test(
            proj,
            "codec vectors (Python -> GDScript -> bytes)",
            "test_codec.gd",
            [f"--vectors={proj / 'vectors.json'}", f"--out={out_file}"],
            120,
        )
        runner.record("codec vectors (GDScript bytes -> Python)", check_python_side(proj / "vectors.json", out_file))
        protobufjs_crosscheck(runner, proj, scratch)
        tables_file = scratch / "gd_tables.json"
        runner.script_test(proj, "table form built in GDScript", "test_tables.gd", [f"--out={tables_file}"], 60)
        wrong = check_tables(tables_file)
        runner.record("table form from GDScript read by the sidecar", not wrong, wrong)
        runner.script_test(
            proj,
            "demo: 600 physics frames with guidance",
            "test_demo.gd",
            [f"--metabrain-port={port}", "--frames=600"],
            120,
        )
        runner.script_test(proj, "benchmark", "bench.gd", [f"--port={port}"], 120)
        runner.script_test(
            proj,
            "the player closes the window: a goodbye before the app quits",
            "test_close.gd",
            [f"--metabrain-port={port}", f"--metabrain-game={CLOSED_GAME}"],
            60,
        )
        runner.script_test(
            proj,
            "the game changes scenes: a goodbye as the node leaves the tree",
            "test_scene_change.gd",
            [f"--metabrain-port={port}", f"--metabrain-game={SCENE_GAME}"],
            60,
        )
        # Judged before the next test kills the sidecar: a SIGKILL loses what it learned since its last
        # sync to the state dir (every 5 s), so wait for that sync rather than race it.
        wrong = settled(check_cut_short, scratch / "state")
        runner.record("a session the game cut short is not counted as a quit", not wrong, wrong)
        wrong = settled(lambda state: check_one_session(state, CLOSED_GAME, by_player=True), scratch / "state")
        runner.record("a session whose window the player closed is counted as a quit at once", not wrong, wrong)
        wrong = settled(lambda state: check_one_session(state, SCENE_GAME, by_player=True), scratch / "state")
        runner.record("a session whose scene was left is counted as a quit at once", not wrong, wrong)

        def on_line(line: str) -> None:
            if line.startswith("CONNECTED"):

                def bounce() -> None:
                    time.sleep(3.0)
                    side.kill()
                    time.sleep(2.5)
                    side.start()

                threading.Thread(target=bounce, daemon=True).start()

        runner.script_test(
            proj,
            "sidecar killed and restarted mid-run",
            "test_reconnect.gd",
            [f"--metabrain-port={port}", "--seconds=16", "--metabrain-policy=static", "--metabrain-param=level=1.0"],
            120,
            on_line,
        )
    finally:
        side.stop()
    pause_test(runner, proj, scratch)
    empty = make_empty_project(scratch)
    runner.import_pass(empty)
    runner.import_pass(empty, editor=True)
    wrong = check_toggle(empty)
    runner.record("plugin enabled then disabled in the editor: settings saved, then removed", not wrong, wrong)
    runner.script_test(empty, "addon copied into an empty project and enabled", "test_addon_loads.gd", [], 60)
    lint(runner)
    (scratch / "results.json").write_text(json.dumps(runner.results, indent=1))
    print(f"results: {scratch / 'results.json'}")
    print(f"{len(runner.passed)} passed, {len(runner.failed)} failed")
    return 0 if runner.passed and not runner.failed else 1


def pause_test(runner: Runner, proj: Path, scratch: Path) -> None:
    """The game paused for longer than the sidecar's idle timeout (a sidecar of its own, with a 2 s one):
    the same session goes on afterwards, and the sidecar counted one session of the game, not a quit."""
    side = Sidecar(scratch / "pause", extra=("--idle-timeout", "2"))
    side.workdir.mkdir()
    try:
        port = side.start()
        runner.script_test(
            proj,
            "the game paused past the idle timeout: the same session goes on",
            "test_pause.gd",
            [f"--metabrain-port={port}", f"--metabrain-game={PAUSE_GAME}"],
            60,
        )
        wrong = settled(lambda state: check_one_session(state, PAUSE_GAME, by_player=False), side.workdir / "state")
        runner.record("a paused session is not counted as the player leaving", not wrong, wrong)
    finally:
        side.stop()


def protobufjs_crosscheck(runner: Runner, proj: Path, scratch: Path) -> None:
    """3,000 random and edge-case messages made by protobufjs (an independent implementation, from npm):
    the GDScript codec decodes each and writes what Python's protobuf writes for it."""
    from tests.ci import IN_CI
    from tests.protobufjs_vectors import make_vectors, missing_tools

    name = "3,000 protobufjs messages: GDScript writes what Python writes"
    why = missing_tools()
    if why:
        if IN_CI:
            runner.record(name, False, why)
        else:
            print(f"SKIP {name}: {why}", flush=True)
        return
    vectors = make_vectors(scratch / "pbjs.json")
    args = [f"--vectors={vectors}", f"--out={scratch / 'gd_pbjs.json'}", "--roundtrip-only=1"]
    result = runner.script_test(proj, name, "test_codec.gd", args, 300)
    if result is not None:
        failures = result.get("failures")
        failed = len(failures) if isinstance(failures, list) else "?"
        n = result.get("vectors")
        print(f"    GDScript against protobufjs: {n} messages, {result.get('checks')} checks, {failed} failed")


def settled(check: Callable[[Path], str], state_dir: Path, timeout_s: float = 15.0) -> str:
    """Runs `check` on the sidecar's state dir until it finds nothing wrong or `timeout_s` (three of the
    sidecar's 5 s syncs) has passed; returns what is still wrong, or ""."""
    deadline = time.monotonic() + timeout_s
    while True:
        wrong = check(state_dir)
        if not wrong or time.monotonic() > deadline:
            return wrong
        time.sleep(0.25)


def check_cut_short(state_dir: Path) -> str:
    """The demo test ended its session with stop(true): the sidecar's portfolio (kept in --state-dir,
    synced there every 5 s) counted a session of the demo game as ended but not quit; every other way a
    session of this run ends counts as the player leaving. Returns what is wrong, or ""."""
    from sidecar.operations.portfolio_store import PortfolioStore

    evidence = PortfolioStore(state_dir).games().get("metabrain.godot.demo", {})
    cut_short = sum(e.finished - e.quits for e in evidence.values())
    return "" if cut_short >= 1 else f"no session of metabrain.godot.demo ended without a quit: {evidence}"


def check_one_session(state_dir: Path, game: str, by_player: bool) -> str:
    """The game had one session, ended already, by the player (a quit: test_close.gd closed its window,
    test_scene_change.gd left its scene; without the goodbye it would still be waiting in its 30 s resume
    window when we look, not ended at all) or not (test_pause.gd: ended by the game's stop(true), not by
    an idle timeout). Returns what is wrong, or ""."""
    from sidecar.operations.portfolio_store import PortfolioStore

    evidence = PortfolioStore(state_dir).games().get(game, {})
    quits = sum(e.quits for e in evidence.values())
    finished = sum(e.finished for e in evidence.values())
    how = "ended by the player" if by_player else "not quit"
    return "" if (finished, quits) == (1, int(by_player)) else f"expected one session of {game}, {how}: {evidence}"


def check_tables(gd_out: Path) -> str:
    """Frames in the table form built by GDScript, read by the sidecar's own code: every number where
    the game put it. Returns what is wrong ("" when all is right)."""
    sys.path.insert(0, str(REPO))
    from sidecar.features import RAW_NPC_FIELDS, RP
    from tests.engine_tables import check_by_hand, read_frame

    if not gd_out.exists():
        return "test_tables.gd wrote nothing"
    cases = json.loads(gd_out.read_text())
    if any("hex" not in cases.get(name, {}) for name in ("by_hand", "scene")):
        return f"test_tables.gd wrote no frame: {cases}"
    wrong = check_by_hand(bytes.fromhex(cases["by_hand"]["hex"]))
    if wrong:
        return "by hand: " + wrong
    scene = read_frame(bytes.fromhex(cases["scene"]["hex"]))
    if isinstance(scene, str):
        return "scene: " + scene
    ncol, t = RAW_NPC_FIELDS.index("npc_id"), RAW_NPC_FIELDS.index("target")
    checks = [
        (scene.player_ids == ["alice", "bob"], f"ids: {scene.player_ids}"),
        (
            scene.players[:, [RP[f"position.{a}"] for a in "xyz"]].tolist() == [[1, 2, 3], [-4, 0, 8]],
            f"positions: {scene.players.tolist()}",
        ),
        (
            scene.players[:, [RP["health"], RP["max_health"], RP["dead"]]].tolist() == [[75, 100, 0], [0, 50, 1]],
            f"health: {scene.players.tolist()}",
        ),
        (scene.players[0, RP["velocity.z"]] == -1.0, f"velocity: {scene.players.tolist()}"),
        (scene.npcs[0, ncol] == 7 and scene.npcs[0, t] == 1.0, f"NPC 7 targets bob: {scene.npcs[0].tolist()}"),
        (scene.npcs[1, t] == -1.0 and scene.npcs[1, ncol] > 0, f"the unnamed NPC: {scene.npcs[1].tolist()}"),
    ]
    return "; ".join("scene, " + why for ok, why in checks if not ok)


def check_python_side(vectors: Path, gd_out: Path) -> bool:
    """GDScript's re-encodings parse with Python's protobuf to the same messages as the originals."""
    sys.path.insert(0, str(REPO))
    from google.protobuf import symbol_database  # noqa: F401

    from sidecar.wire.schema import pb
    from tests.gen import codec_test_pb2

    if not gd_out.exists():
        return False
    types = {
        "metabrain.testdata.AllTypes": codec_test_pb2.AllTypes,
        "metabrain.v1.SessionRequest": pb.SessionRequest,
        "metabrain.v1.SessionResponse": pb.SessionResponse,
    }
    produced = json.loads(gd_out.read_text())
    ok = True
    for v in json.loads(vectors.read_text()):
        cls = types[v["type"]]
        if v["name"] not in produced:
            return False
        want = v.get("canonical_godot", v["hex"])  # U+0000 read as U+FFFD: a Godot String cannot hold it
        a, b = cls.FromString(bytes.fromhex(want)), cls.FromString(bytes.fromhex(produced[v["name"]]))
        ok &= a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
    return ok


def lint(runner: Runner) -> None:
    gdlint = shutil.which("gdlint")
    if gdlint is None:
        runner.record("gdlint (gdtoolkit not installed)", False)
        return
    files = [
        str(p)
        for p in [*(HERE / "addons").rglob("*.gd"), *(HERE / "demo").glob("*.gd"), *(HERE / "tests").rglob("*.gd")]
        if "proto" not in p.parts and p.name != "codec_test_proto.gd"
    ]
    proc = subprocess.run([gdlint, *files], capture_output=True, text=True, cwd=HERE)  # reads HERE/gdlintrc
    runner.record("gdlint", proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:])


if __name__ == "__main__":
    sys.exit(main())
