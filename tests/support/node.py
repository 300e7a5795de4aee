"""The official Node SDK for tests: tests/node, installed from its lockfile when it is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parents[1] / "node"
# npm ci downloads one package; a slow registry gets minutes, not forever.
INSTALL_SECONDS = 300


def node_sdk() -> Path:
    """tests/node with the `openai` version its package.json pins installed, by `npm ci` from
    the committed lockfile when it isn't (a fresh clone, a new pin)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the Node SDK tests")
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["openai"]
    installed = NODE_DIR / "node_modules" / "openai" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
            capture_output=True,
            text=True,
            timeout=INSTALL_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {NODE_DIR} failed:\n{done.stdout}\n{done.stderr}")
    return NODE_DIR
