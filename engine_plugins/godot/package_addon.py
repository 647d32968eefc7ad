#!/usr/bin/env python3
"""Builds the Godot Asset Library zip of the MetaBrain addon.

    python engine_plugins/godot/package_addon.py            # -> dist/metabrain-godot-<version>.zip

The zip holds one folder, `metabrain-godot-<version>/`, with `addons/metabrain/` inside (scripts, their
committed `.uid` files, plugin.cfg, the generated codec) plus LICENSE and README.md, the layout the
Asset Library installer and a hand-unzip into a project both expect. Entries are sorted and stamped with
a fixed time, so the same sources always give the same bytes.
"""

from __future__ import annotations

import argparse
import configparser
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ADDON = HERE / "addons" / "metabrain"
FIXED_TIME = (2026, 1, 1, 0, 0, 0)

README = """# MetaBrain for Godot 4

Streams player and NPC telemetry to a metabrain sidecar and applies its adaptive difficulty and NPC hints;
never blocks the game. Copy `addons/metabrain` into your project (the Asset Library does this for you),
enable **MetaBrain** in Project Settings > Plugins, add a `MetaBrain` node, and run a sidecar beside the
game (`pip install metabrain && metabrain serve`). Settings live under `metabrain/` in Project Settings;
disabling the plugin removes them.

Documentation and source: the metabrain repository, `engine_plugins/godot/`.
"""


def addon_version() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(ADDON / "plugin.cfg")
    return cfg["plugin"]["version"].strip('"')


def missing_uids() -> list[str]:
    """Scripts without a committed .uid (Godot 4.4+ would mint a new one on every install)."""
    return [str(p.relative_to(HERE)) for p in sorted(ADDON.rglob("*.gd")) if not p.with_suffix(".gd.uid").exists()]


def build(out_dir: Path) -> Path:
    missing = missing_uids()
    if missing:
        raise SystemExit(f"scripts without .uid files (open the project in Godot 4.4+ once): {missing}")
    root = f"metabrain-godot-{addon_version()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{root}.zip"
    entries: list[tuple[str, bytes]] = [
        (f"{root}/addons/metabrain/{p.relative_to(ADDON).as_posix()}", p.read_bytes())
        for p in sorted(ADDON.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.suffix != ".import"
    ]
    entries += [(f"{root}/LICENSE", (REPO / "LICENSE").read_bytes()), (f"{root}/README.md", README.encode())]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return path


def install(zip_path: Path, project: Path) -> list[Path]:
    """Unpacks the addon into a project as the Asset Library does (the zip's top folder dropped)."""
    written = []
    with zipfile.ZipFile(zip_path) as z:
        for name in z.namelist():
            inner = Path(*Path(name).parts[1:])
            if inner.parts and inner.parts[0] == "addons":
                dest = project / inner
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(z.read(name))
                written.append(dest)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "dist", help="folder for the zip (default: dist/)")
    path = build(ap.parse_args().out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
