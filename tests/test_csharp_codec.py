"""The generated C# codec (Unity package core) against the shared vectors, compiled with Mono's mcs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sidecar.wire.schema import pb
from tests.conftest import need_mono, need_tool
from tests.gen import codec_test_pb2
from tests.protobufjs_vectors import make_vectors, missing_tools

ROOT = Path(__file__).resolve().parents[1]
UNITY = ROOT / "engine_plugins" / "unity"
TYPES = {
    "metabrain.testdata.AllTypes": codec_test_pb2.AllTypes,
    "metabrain.v1.SessionRequest": pb.SessionRequest,
    "metabrain.v1.SessionResponse": pb.SessionResponse,
}


def _roundtrip(vectors: list[dict[str, str]], tmp_path: Path, *flags: str) -> tuple[str, dict[str, str]]:
    """Compiles the C# codec with its vector program, has it decode and re-encode each vector and check it
    against `canonical`; returns its summary line and what it wrote."""
    need_mono()
    tsv = tmp_path / "vectors.tsv"
    tsv.write_text("".join(f"{v['name']}\t{v['type']}\t{v['hex']}\t{v.get('canonical', v['hex'])}\n" for v in vectors))
    exe = tmp_path / "vectors.exe"
    sources = [
        UNITY / "Runtime/Core/Generated/MetabrainProto.cs",
        UNITY / "Tests~/CodecTestProto.cs",
        UNITY / "Tests~/CodecVectorTests.cs",
    ]
    build = subprocess.run(
        ["mcs", "-langversion:7.2", "-debug", f"-out:{exe}", *map(str, sources)], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stdout + build.stderr
    out = tmp_path / "out.tsv"
    run = subprocess.run(
        ["mono", "--debug", str(exe), str(tsv), str(out), *flags], capture_output=True, text=True, timeout=300
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0 and summary.endswith(" 0 failed"), run.stdout[-3000:] + run.stderr[-2000:]
    return summary, dict(line.split("\t") for line in out.read_text().splitlines())


def test_csharp_codec_vectors_both_ways(tmp_path: Path) -> None:
    vectors = json.loads((ROOT / "proto" / "testdata" / "vectors.json").read_text())
    _, produced = _roundtrip(vectors, tmp_path)
    # The other way: C#'s bytes parse with Python's protobuf to the same messages.
    for v in vectors:
        cls = TYPES[v["type"]]
        ours, theirs = cls.FromString(bytes.fromhex(v["hex"])), cls.FromString(bytes.fromhex(produced[v["name"]]))
        assert ours == theirs or ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
            deterministic=True
        )


def test_csharp_codec_against_protobufjs(tmp_path: Path) -> None:
    """3,000 random and edge-case messages made by protobufjs: the C# codec decodes each and writes the
    bytes Python's protobuf writes for it (0 mismatches)."""
    need_mono()
    need_tool(missing_tools())
    vectors = json.loads(make_vectors(tmp_path / "pbjs.json").read_text())
    summary, _ = _roundtrip(vectors, tmp_path, "--roundtrip-only")
    print(f"C# codec against protobufjs: {summary}")
    assert len(vectors) >= 3000 and summary == f"{len(vectors)} passed, 0 failed"
