"""A real `reelforge serve` process (granian, embedded worker and emulator) for live-server tests,
and the users and API keys its callers need."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from reelforge.db.engine import Database
from reelforge.domain.accounts import Account, Role
from reelforge.emulator.server import free_port
from reelforge.services.accounts import Accounts
from reelforge.services.keys import ApiKeys
from tests.support.accounts import FAST_HASHER, PASSWORD
from tests.support.processes import START_SECONDS, WorkerProcess, Workers

ADMIN_PASSWORD = "an admin password for tests"
# Live-update settings small enough to reach in a test: the per-user cap, and pings often
# enough to see one without waiting long.
CONNECTIONS_PER_USER = 3
HEARTBEAT_SECONDS = 1


@dataclass
class User:
    account: Account
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Served:
    """A running server: its URL, its process and log, and its database for making users."""

    url: str
    process: WorkerProcess
    database: Database

    async def user(self, email: str, role: Role = Role.USER) -> User:
        account = await Accounts(self.database, FAST_HASHER).create(email, PASSWORD, role=role)
        _, key = await ApiKeys(self.database).create(account, "tests")
        return User(account, key)

    def client(self, user: User | None = None) -> httpx.AsyncClient:
        headers = user.headers if user is not None else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def create(self, user: User, prompt: str = "a fox") -> str:
        """A new video of `user`'s; the embedded worker takes it from there."""
        async with self.client(user) as client:
            response = await client.post("/api/videos", json={"prompt": prompt})
        assert response.status_code == 201, response.text
        video_id: str = response.json()["data"]["id"]
        return video_id

    async def video(self, user: User, video_id: str) -> dict[str, Any]:
        """The video as `GET /api/videos/{id}` has it in `data`."""
        async with self.client(user) as client:
            response = await client.get(f"/api/videos/{video_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    async def jwt(self, user: User) -> str:
        async with self.client() as client:
            response = await client.post(
                "/api/auth/token", json={"email": user.account.email, "password": PASSWORD}
            )
        assert response.status_code == 200, response.text
        token: str = response.json()["data"]["access_token"]
        return token


def serve_environment(data_dir: Path, **settings: str) -> dict[str, str]:
    """`reelforge serve`'s environment: a data dir of its own and `settings` (REELFORGE_ names
    without the prefix), none of the developer's."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REELFORGE_", "OPENAI_", "AWS_"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    return inherited | {
        "REELFORGE_DATA_DIR": str(data_dir),
        "REELFORGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "REELFORGE_LOG_FORMAT": "json",
        "REELFORGE_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
        **{f"REELFORGE_{name.upper()}": value for name, value in settings.items()},
    }


@asynccontextmanager
async def serving(environment: dict[str, str], directory: Path) -> AsyncIterator[Served]:
    """`reelforge serve` on a free port until the block ends (then SIGKILLed if still up)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    workers = Workers(environment, directory)  # for `eventually` and its log on failure
    log = directory / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "reelforge.cli.main", "serve", "--port", str(port)],
            env=environment,
            cwd=directory,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = WorkerProcess(process, log)
    workers.started.append(server)
    url = f"http://127.0.0.1:{port}"
    database_url = environment.get(
        "REELFORGE_DATABASE_URL",
        f"sqlite+aiosqlite:///{Path(environment['REELFORGE_DATA_DIR']).resolve()}/reelforge.db",
    )
    async with AsyncExitStack() as stack:
        stack.callback(_stop, server)
        probe = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=2))

        async def ready() -> bool:
            try:
                return (await probe.get("/ready")).status_code == 200
            except httpx.TransportError:
                return server.alive() is False and _raise(server)

        await workers.eventually(ready, f"reelforge serve on {url} ready", START_SECONDS)
        database = Database(database_url)
        stack.push_async_callback(database.close)
        yield Served(url, server, database)


def _stop(server: WorkerProcess) -> None:
    """SIGTERM, so granian stops its worker process too; SIGKILL of granian's main process alone
    would leave the worker running, orphaned."""
    if server.alive():
        server.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.process.wait(timeout=10)


def _raise(server: WorkerProcess) -> bool:
    raise AssertionError(f"reelforge serve exited {server.process.poll()}:\n{server.output()}")
