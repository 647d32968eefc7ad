"""The Godot addon's Asset Library zip (engine_plugins/godot/package_addon.py), without Godot: layout,
committed .uid files, no symlinks, same bytes on every build. tests/test_godot.py installs it into an
empty project in real Godot."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

GODOT_DIR = Path(__file__).resolve().parents[1] / "engine_plugins" / "godot"
sys.path.insert(0, str(GODOT_DIR))

import package_addon  # noqa: E402


def test_the_zip_puts_the_addon_at_addons_metabrain_with_its_uids(tmp_path: Path) -> None:
    path = package_addon.build(tmp_path / "a")
    root = f"metabrain-godot-{package_addon.addon_version()}"
    names = zipfile.ZipFile(path).namelist()
    assert path.name == f"{root}.zip" and all(n.startswith(f"{root}/") for n in names)
    scripts = [n for n in names if n.endswith(".gd")]
    assert f"{root}/addons/metabrain/plugin.cfg" in names and f"{root}/LICENSE" in names
    assert f"{root}/addons/metabrain/proto/metabrain_proto.gd" in scripts
    assert all(n + ".uid" in names for n in scripts), "every script ships its .uid"
    # Same sources, same bytes (fixed timestamps, sorted entries).
    assert package_addon.build(tmp_path / "b").read_bytes() == path.read_bytes()


def test_installing_drops_the_top_folder_like_the_asset_library(tmp_path: Path) -> None:
    written = package_addon.install(package_addon.build(tmp_path), tmp_path / "proj")
    assert (tmp_path / "proj" / "addons" / "metabrain" / "plugin.cfg").is_file()
    assert all(p.relative_to(tmp_path / "proj").parts[0] == "addons" for p in written)


def test_the_project_has_no_symlinks_and_every_script_a_committed_uid() -> None:
    assert not [p for p in GODOT_DIR.rglob("*") if p.is_symlink()]
    scripts = [p for p in GODOT_DIR.rglob("*.gd") if ".godot" not in p.parts]
    assert scripts and not [p for p in scripts if not p.with_suffix(".gd.uid").is_file()]
    assert not package_addon.missing_uids()
