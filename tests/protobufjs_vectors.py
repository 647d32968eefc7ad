"""Messages from an independent protobuf implementation (protobufjs, from npm) for the engine codecs'
cross-check: random and edge-case messages of the schema, encoded by protobufjs, each with the bytes
Python's protobuf (upb) writes for it (`canonical`), which both engine codecs must write too.
Used by tests/test_csharp_codec.py (Mono) and engine_plugins/godot/run_tests.py (real Godot)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent / "protobufjs"
ROOT = HERE.parents[1]
COUNT = 3000


def missing_tools() -> str:
    """Why the cross-check cannot run here ("" when it can)."""
    absent = [t for t in ("node", "npm") if shutil.which(t) is None]
    return f"{' and '.join(absent)} not installed (.ci/setup.sh installs nodejs and npm)" if absent else ""


def make_vectors(out: Path, count: int = COUNT, seed: int = 1) -> Path:
    """Writes the vectors (JSON, the shared vectors' format) to `out` and returns it."""
    from sidecar.wire.schema import pb
    from tests.gen import codec_test_pb2

    if not (HERE / "node_modules" / "protobufjs").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True, timeout=300)
    raw = out.with_suffix(".pbjs.json")
    subprocess.run(
        ["node", str(HERE / "generate.js"), str(ROOT / "proto"), str(count), str(seed), str(raw)],
        check=True,
        timeout=300,
    )
    types = {
        "metabrain.testdata.AllTypes": codec_test_pb2.AllTypes,
        "metabrain.v1.SessionRequest": pb.SessionRequest,
        "metabrain.v1.SessionResponse": pb.SessionResponse,
    }
    vectors = json.loads(raw.read_text())
    for v in vectors:
        message = types[v["type"]].FromString(bytes.fromhex(v["hex"]))
        v["canonical"] = message.SerializeToString(deterministic=True).hex()
    out.write_text(json.dumps(vectors))
    return out
