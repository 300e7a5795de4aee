"""A real `reelforge serve` (granian) over loopback HTTP: refusals the client gets whole, bodies
refused unread, and a worker process killed under it."""

from __future__ import annotations

import io
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from PIL import Image

from reelforge.db import migrate
from reelforge.db.engine import Database
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import RunningServer, running
from reelforge.emulator.settings import EmulatorSettings
from reelforge.providers.registry import EMULATOR_API_KEY
from reelforge.services.accounts import Accounts
from reelforge.services.keys import ApiKeys
from tests.support.accounts import FAST_HASHER, PASSWORD
from tests.support.processes import ServerProcess, served, server_environment

pytestmark = [
    pytest.mark.anyio,
    # The SDK marks every Videos method deprecated (the Sora API's shutdown), warning on each call.
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]


@dataclass
class Live:
    server: ServerProcess
    key: str


async def _user_with_key(database_url: str) -> str:
    await migrate.upgrade(database_url)
    database = Database(database_url)
    try:
        account = await Accounts(database, FAST_HASHER).create("ada@example.org", PASSWORD)
        _, key = await ApiKeys(database).create(account, "live")
    finally:
        await database.close()
    return key


@pytest.fixture
def upstream() -> Iterator[RunningServer]:
    """The emulator as the server's provider, outside the server: the built-in one keeps its
    jobs in the worker process's memory, and a killed worker would take them along."""
    app = create_emulator_app(EmulatorSettings(poll_after_ms=0))
    with running(app) as serving:
        yield serving
    app.state.emulator.close()


@pytest.fixture
async def live(tmp_path: Path, upstream: RunningServer) -> AsyncIterator[Live]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite+aiosqlite:///{data_dir / 'reelforge.db'}"
    key = await _user_with_key(url)
    environment = server_environment(
        database_url=url,
        data_dir=data_dir,
        provider="openai",
        openai_base_url=upstream.base_url,
        openai_api_key=EMULATOR_API_KEY,
        create_rate_limit="2/minute",
        lease_seconds="10",
        admin_password="not-used-here-1",
    )
    with served(environment, tmp_path / "serve") as server:
        await server.ready()
        yield Live(server, key)


def noise_png(width: int, height: int) -> bytes:
    """A PNG that doesn't compress: megabytes still on the wire when a refusal is answered."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_rate_limited_multipart_creates_deliver_their_429_to_the_sdk(live: Live) -> None:
    image = noise_png(1280, 720)
    client = openai.AsyncOpenAI(base_url=f"{live.server.url}/v1", api_key=live.key, max_retries=0)
    outcomes: list[str] = []

    async def create() -> None:
        try:
            await client.videos.create(
                prompt="a fox", size="1280x720", input_reference=("first.png", image, "image/png")
            )
            outcomes.append("created")
        except openai.RateLimitError:
            outcomes.append("429")
        except openai.APIConnectionError as exc:
            outcomes.append(f"connection error: {exc!r}")

    async with client:
        for _ in range(2):
            await create()
        async with anyio.create_task_group() as tasks:
            for _ in range(12):
                tasks.start_soon(create)

    assert outcomes == ["created"] * 2 + ["429"] * 12, live.server.output()


def _raw_request(url: str, head: bytes) -> bytes:
    """Send only a request's head (its body never follows) and read the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
    return answer


async def test_an_anonymous_300_mb_body_is_answered_413_before_it_is_sent(live: Live) -> None:
    head = (
        b"POST /api/webhooks/endpoints HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 314572800\r\n\r\n"
    )

    answer = await anyio.to_thread.run_sync(_raw_request, live.server.url, head)

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_a_sigkilled_worker_is_restarted_and_its_video_still_completes(live: Live) -> None:
    headers = {"Authorization": f"Bearer {live.key}"}
    async with httpx.AsyncClient(base_url=live.server.url, headers=headers, timeout=10) as client:
        created = await client.post("/api/videos", json={"prompt": "a fox [[latency=3]]"})
        assert created.status_code == 201, created.text
        video_id = created.json()["data"]["id"]
        (worker,) = live.server.workers()

        os.kill(worker, signal.SIGKILL)
        await _eventually(lambda: _restarted(live.server, worker), live.server, "a new worker")
        await live.server.ready()

        async def completed() -> bool:
            answer = await client.get(f"/api/videos/{video_id}")
            return answer.status_code == 200 and answer.json()["data"]["status"] == "completed"

        await _eventually(completed, live.server, f"{video_id} completed", seconds=90)
    assert live.server.process.poll() is None


async def _restarted(server: ServerProcess, killed: int) -> bool:
    workers = server.workers()
    return bool(workers) and killed not in workers


async def _eventually(
    condition: Any, server: ServerProcess, what: str, seconds: float = 45
) -> None:
    with anyio.move_on_after(seconds):
        while not await condition():
            assert server.process.poll() is None, f"the server exited:\n{server.output()}"
            await anyio.sleep(0.2)
        return
    raise AssertionError(f"not within {seconds} s: {what}\n{_unusual(server.output(200_000))}")


def _unusual(log: str) -> str:
    """The server's log without its access lines, which would bury the rest."""
    return "\n".join(line for line in log.splitlines() if '"reelforge.http"' not in line)[-6000:]
