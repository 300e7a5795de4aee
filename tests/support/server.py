"""A real `reelforge serve` process on a free port, for tests that talk to it as clients do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from reelforge.emulator.server import free_port

ADMIN_EMAIL = "admin@localhost"
ADMIN_PASSWORD = "correct horse battery staple"
START_SECONDS = 60.0


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def clean_environment() -> dict[str, str]:
    """This process's environment without any Reelforge, OpenAI or AWS setting."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REELFORGE_", "OPENAI_", "AWS_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }


@contextmanager
def serving(directory: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`reelforge serve` with the embedded emulator and a known admin, until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = clean_environment() | {
        "REELFORGE_DATA_DIR": str(directory / "data"),
        "REELFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "REELFORGE_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    log = directory / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelforge.cli.main", "serve", "--port", str(port)],
            cwd=directory,
            env=env | (extra_env or {}),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", directory / "data", log)
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve not ready within {START_SECONDS} s:\n{server.output()}")
