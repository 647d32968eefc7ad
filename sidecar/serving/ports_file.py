"""The file `--ports-file` names: one `name=port` line per listening socket (grpc, ws, metrics, ...).

Written to a temporary name and renamed into place, so a reader polling for it never sees half a file.
"""

from __future__ import annotations

from pathlib import Path


def write_ports_file(path: str | Path, ports: dict[str, int | None]) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{name}={port}\n" for name, port in ports.items() if port is not None))
    tmp.replace(path)


def read_ports_file(path: str | Path) -> dict[str, int]:
    return {name: int(port) for name, port in (line.split("=") for line in Path(path).read_text().split())}
