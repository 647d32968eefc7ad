"""The wire seam: the plain enums the core uses are the schema's, and the core never imports protobuf."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sidecar.columns import Capability, EventType, NpcState, NpcTactic
from sidecar.wire.schema import pb

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("plain", "prefix", "enum"),
    [
        (EventType, "EVENT_TYPE_", pb.EventType),
        (NpcState, "NPC_STATE_", pb.NpcState),
        (NpcTactic, "NPC_TACTIC_", pb.NpcTactic),
        (Capability, "CAPABILITY_", pb.Capability),
    ],
)
def test_plain_enums_match_the_schema(plain: type, prefix: str, enum: object) -> None:
    generated = {name.removeprefix(prefix): value for name, value in enum.items()}  # type: ignore[attr-defined]
    assert {m.name: int(m) for m in plain} == generated  # type: ignore[attr-defined]


def _imports_protobuf(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(("sidecar.wire.schema", "sidecar.gen", "google.protobuf")):
                return True
            if node.module == "sidecar.wire" and any(a.name == "schema" for a in node.names):
                return True
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if any(n.startswith(("sidecar.gen", "google.protobuf")) for n in names):
            return True
    return False


# The core: plain types in, plain types out (sidecar/wire converts at the edge).
CORE = ["sidecar/features", "sidecar/engine", "sidecar/policies", "sidecar/model", "sidecar/columns.py"]


@pytest.mark.parametrize("part", CORE)
def test_the_core_does_not_import_protobuf(part: str) -> None:
    path = ROOT / part
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    offenders = [str(f.relative_to(ROOT)) for f in files if _imports_protobuf(f)]
    assert not offenders, f"{offenders} import protobuf; convert in sidecar/wire instead"


def test_a_director_note_leaves_finite_and_in_its_schema_range() -> None:
    """Learned state (a portfolio's evidence, value heads) feeds the note: whatever it held, the game gets
    numbers that are finite and inside the ranges the schema gives them."""
    import math

    from sidecar.policies.difficulty import DirectorNote
    from sidecar.wire import responses

    nan, inf = math.nan, math.inf
    bad = DirectorNote("boredom", nan, 1.7, inf, -inf, nan, 5.0, 2.0, "harder")
    huge = DirectorNote(expected_gain_s=1e30, confidence=-3.0)
    d = responses.guidance(1, "m", "portfolio", ((), []), note=bad).guidance.director
    got = (d.target_level, d.designer_level, d.expected_gain_s, d.confidence, d.calibration_shift)
    assert got == (0.0, 1.0, 0.0, 0.0, 0.0)  # not a number: no claim
    assert (d.exploration_offset, d.propensity, d.managing, d.candidate) == (1.0, 1.0, "boredom", "harder")
    d = responses.guidance(1, "m", "portfolio", ((), []), note=huge).guidance.director
    assert (d.expected_gain_s, d.confidence) == (86_400.0, 0.0)
    good = DirectorNote("frustration", 0.35, 0.5, -12.5, 0.75, -0.1, 0.05, 0.25, "easier")
    d = responses.guidance(1, "m", "portfolio", ((), []), note=good).guidance.director
    assert d.target_level == pytest.approx(0.35) and d.expected_gain_s == pytest.approx(-12.5)
    assert d.calibration_shift == pytest.approx(-0.1) and d.propensity == pytest.approx(0.25)
