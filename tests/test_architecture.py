"""The layout's rules: no import circles, the served runtime never loads the developer tools, and the
public modules say what they export (`__all__`), as httpx checks its own."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, type_checking: bool = False) -> set[str]:
    """Modules a file imports, function-level ones included (not those under `if TYPE_CHECKING`)."""
    found: set[str] = set()
    for child in ast.iter_child_nodes(tree):
        guarded = isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
        if not type_checking and isinstance(child, ast.Import):
            found.update(a.name for a in child.names)
        elif not type_checking and isinstance(child, ast.ImportFrom) and child.module:
            found.add(child.module)
            found.update(f"{child.module}.{a.name}" for a in child.names)
        found |= _imports(child, type_checking or guarded)
    return found


def _graph() -> dict[str, set[str]]:
    """Every import between the project's modules (sidecar, sim, and the codegen scripts in proto/)."""
    files = [p for d in ("sidecar", "sim") for p in (ROOT / d).rglob("*.py") if "gen" not in p.parts]
    files += list((ROOT / "proto").glob("*.py"))
    names = {_module_name(p) if p.parent.name != "proto" else p.stem: p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found = _imports(ast.parse(path.read_text()))
        # A package importing its own modules (to re-export them) is not a circle.
        graph[name] = {m for m in found if m in names and m != name and not m.startswith(name + ".")}
    return graph


def test_no_import_circles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                circles.append([*stack[stack.index(n) :], n])
            elif n not in state:
                walk(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_sidecar_package_never_imports_the_simulator() -> None:
    """The simulator, its benchmarks and data generation drive the sidecar from outside (sim/ imports
    sidecar/, never the reverse): a wheel without sim/ is a whole sidecar, and no package circle."""
    offenders = {}
    for path in (ROOT / "sidecar").rglob("*.py"):
        found = _imports(ast.parse(path.read_text()), type_checking=False)
        bad = sorted(m for m in found if m == "sim" or m.startswith("sim."))
        if bad:
            offenders[_module_name(path)] = bad
    assert not offenders, offenders


def test_serving_never_loads_the_developer_tools() -> None:
    """`metabrain serve` (server, transports, engine, model) imports no benchmark, training, simulator or codegen."""
    code = (
        "import sys, sidecar.serving.server, sidecar.serving.inprocess, sidecar.serving.front_ends;"
        "print(' '.join(m for m in sys.modules if m.startswith(('sidecar.training', 'sim',"
        " 'engine_codegen', 'csharp_codegen', 'generate'))))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"the serving path imports {run.stdout.strip()}"


PUBLIC = [
    "sidecar.columns",
    "sidecar.errors",
    "sidecar.policies.experiments",
    "sidecar.features",
    "sidecar.features.featurizer",
    "sidecar.features.knobs",
    "sidecar.features.layout",
    "sidecar.features.raw",
    "sidecar.features.tracks",
    "sidecar.engine.engine",
    "sidecar.engine.config",
    "sidecar.serving.inprocess",
    "sidecar.limits",
    "sidecar.protocol",
    "sidecar.session",
    "sidecar.wire.checks",
    "sidecar.wire.frames",
    "sidecar.wire.hello",
    "sidecar.wire.requests",
    "sidecar.wire.responses",
    "sidecar.wire.schema",
    "sidecar.wire.table_reader",
    "sidecar.versions",
    "sidecar.policies.guarded",
    "sidecar.policies.portfolio",
]


# Where the generated protobuf code may be imported in the sidecar package (training included): the
# wire seam, the transports that move its bytes, and the recorder that writes them to disk. (The
# simulator and the benchmarks in sim/ play the game's side and build messages as a game does.)
PROTOBUF_ALLOWED = ("sidecar.wire", "sidecar.serving.transports", "sidecar.operations.recording")
DEV_TOOLS = ("sidecar.gen",)  # the generated code itself


def test_only_the_wire_seam_imports_protobuf() -> None:
    offenders = []
    for path in (ROOT / "sidecar").rglob("*.py"):
        name = _module_name(path)
        if name.startswith(PROTOBUF_ALLOWED + DEV_TOOLS):
            continue
        found = _imports(ast.parse(path.read_text()))
        if any(m.startswith(("sidecar.gen", "sidecar.wire.schema", "google.protobuf")) for m in found):
            offenders.append(name)
    assert not offenders, f"{offenders} import protobuf: go through sidecar.wire (requests, responses)"


CORE = (
    "sidecar.protocol",
    "sidecar.session",
    "sidecar.errors",
    "sidecar.limits",
    "sidecar.validation",
    "sidecar.columns",
    "sidecar.versions",
    "sidecar.token_bucket",
    "sidecar.wire",
    "sidecar.engine",
    "sidecar.policies",
    "sidecar.features",
    "sidecar.model",
)


_OUTER = ("sidecar.serving", "sidecar.operations", "sidecar.training", "sim")


def test_the_core_never_imports_serving_or_operations() -> None:
    """The layers point one way: serving and operations use the core, never the reverse."""
    upward = {}
    for path in (ROOT / "sidecar").rglob("*.py"):
        name = _module_name(path)
        if name.startswith(CORE):
            found = _imports(ast.parse(path.read_text()))
            bad = sorted(m for m in found if m.startswith(_OUTER))
            if bad:
                upward[name] = bad
    assert not upward, upward


@pytest.mark.parametrize("name", PUBLIC)
def test_public_modules_declare_their_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names {missing}, which it does not define"
    # Every public class and function defined here is exported (helpers start with an underscore).
    defined = [
        n
        for n, obj in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == name
    ]
    unlisted = sorted(set(defined) - set(exported))
    assert not unlisted, f"{name} defines {unlisted} without exporting them (add to __all__ or prefix with _)"
