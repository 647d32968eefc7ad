"""Deployment recipes: manifests valid against the Kubernetes schemas, and every command they run real.

Docker cannot run here, so the Dockerfile is checked for what can be checked: its command line is a
valid `metabrain serve` invocation. The Agones GameServer's pod template is validated as a Pod.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sidecar.cli import build_parser
from sidecar.serving.front_ends import free_port
from sidecar.serving.inprocess import RunningSidecar

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "sidecar" / "deploy"
K8S_VERSION = "1.30.0"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in _docs(path):
            if doc["kind"] in ("Deployment", "GameServer"):
                specs.append((f"{path.name}:{doc['kind']}", doc["spec"]["template"]["spec"]))
    return specs


def _metabrain_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "metabrain"]


@pytest.mark.parametrize("path", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_validate(path: Path) -> None:
    for doc in _docs(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_agones_gameserver_is_a_valid_pod_with_the_sidecar() -> None:
    (gs,) = _docs(DEPLOY / "agones" / "gameserver.yaml")
    assert gs["apiVersion"] == "agones.dev/v1" and gs["kind"] == "GameServer"
    template = gs["spec"]["template"]
    names = [c["name"] for c in template["spec"]["containers"]]
    assert gs["spec"]["container"] in names  # Agones' game container exists
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "arena", **template["metadata"]}}
    kubernetes_validate.validate({**pod, "spec": template["spec"]}, K8S_VERSION, strict=True)
    assert _metabrain_containers(template["spec"])


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


@pytest.mark.parametrize(("where", "spec"), _pod_specs(), ids=lambda x: x if isinstance(x, str) else "")
def test_sidecar_commands_and_probes_match_the_cli(where: str, spec: dict[str, Any]) -> None:
    parser = build_parser()
    for c in _metabrain_containers(spec):
        args = c["args"]
        parsed = parser.parse_args(["serve", *args])  # exits (fails the test) on an unknown flag
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        assert ports["metrics"] == parsed.metrics_port
        live = c["livenessProbe"]["httpGet"]
        assert live["path"] == "/metrics" and live["port"] in ("metrics", parsed.metrics_port)
        ready = c["readinessProbe"]
        if "exec" in ready:  # the health command, against this sidecar's gRPC port on loopback
            cmd = ready["exec"]["command"]
            assert cmd[0] == "metabrain"
            h = parser.parse_args(cmd[1:])
            assert h.func.__name__ == "cmd_health" and h.target == f"127.0.0.1:{parsed.grpc_port}"
            assert parsed.host == "127.0.0.1"  # per-pod sidecars keep the session API inside the pod
        else:  # a native gRPC probe: the sidecar listens beyond loopback, so tokens are required
            assert ready["grpc"]["port"] == parsed.grpc_port and parsed.token_file and parsed.tls_cert


def test_dockerfile_command_is_a_valid_serve() -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["metabrain", "serve"]
    parsed = build_parser().parse_args([*entry[1:], *cmd])
    exposed = {int(p) for p in re.search(r"^EXPOSE (.*)$", text, re.M).group(1).split()}  # type: ignore[union-attr]
    assert {parsed.grpc_port, parsed.ws_port, parsed.metrics_port} <= exposed


def test_health_command_reports_serving_and_down(sidecar: RunningSidecar, capsys: pytest.CaptureFixture[str]) -> None:
    def health(*args: str) -> int:  # the subcommand itself (main() would reconfigure logging)
        a = build_parser().parse_args(["health", *args])
        result: int = a.func(a)
        return result

    assert health("--target", sidecar.grpc_address) == 0
    assert "SERVING" in capsys.readouterr().out
    closed = free_port("127.0.0.1")
    assert health("--target", f"127.0.0.1:{closed}", "--timeout", "0.5") == 1
