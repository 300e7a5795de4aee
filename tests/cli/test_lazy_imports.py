"""`reelforge --help` and the client commands load none of the server: they start quickly."""

from __future__ import annotations

import subprocess
import sys

# What a server command needs and a client command must not pay for.
HEAVY = (
    "alembic",
    "av",
    "fastapi",
    "limits",
    "numpy",
    "openai",
    "pydantic_settings",
    "redis",
    "sqlalchemy",
    "reelforge.runtime",
    "reelforge.settings",
)


def test_loading_the_command_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from reelforge.cli.main import app\n"
        "import reelforge.cli.remote, reelforge.cli.watch\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )

    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == "[]"
