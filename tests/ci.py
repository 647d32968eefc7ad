"""Whether this run is CI, where a missing engine or tool fails its test instead of skipping it. Light on
purpose: engine_plugins/godot/run_tests.py reads it without pulling in the test fixtures."""

from __future__ import annotations

import os

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
