"""The real `socket.io-client` npm package driven by Node, as the guide's front end uses it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

NODE_DIR = Path(__file__).with_name("node")
CLIENT = NODE_DIR / "client.mjs"
# A guard against a hang, not a timing assertion: what we wait for normally comes in well under.
WAIT_SECONDS = 60.0

Message = dict[str, Any]


def install_client() -> Path:
    """Install the pinned socket.io-client (package-lock.json) on first use; CI on a fresh
    machine needs only Node 20 and npm on the PATH."""
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to install socket.io-client for these tests")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True)
    return CLIENT


@dataclass
class Sockets:
    """One Node process holding any number of named sockets; what each receives, in order."""

    process: Process
    received: dict[str, list[Message]] = field(default_factory=dict)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    async def _send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((json.dumps(command) + "\n").encode())

    async def connect(self, name: str, url: str, **options: Any) -> Message:
        """Open socket `name` with socket.io-client `options`; its connect or connect_error."""
        self.received.setdefault(name, [])
        await self._send({"op": "connect", "name": name, "url": url, "options": options})
        return await self.next(name, lambda m: m["event"] in ("connect", "connect_error"))

    async def subscribe(self, name: str, video_id: str) -> None:
        await self._send({"op": "subscribe", "name": name, "id": video_id})

    async def unsubscribe(self, name: str, video_id: str) -> None:
        await self._send({"op": "unsubscribe", "name": name, "id": video_id})

    async def close(self, name: str) -> None:
        await self._send({"op": "close", "name": name})

    def updates(self, name: str, video_id: str | None = None) -> list[Message]:
        """The `video:update` payloads socket `name` got so far (of one video, if given)."""
        return [
            m["data"]
            for m in self.received.get(name, [])
            if m["event"] == "video:update" and video_id in (None, m["data"]["videoId"])
        ]

    async def next(self, name: str, matches: Callable[[Message], bool]) -> Message:
        """The first message of socket `name`'s that matches, waiting for it if need be."""
        with anyio.fail_after(WAIT_SECONDS):
            while True:
                for message in self.received.get(name, []):
                    if matches(message):
                        return message
                changed = self._changed
                await changed.wait()

    async def update_where(self, name: str, matches: Callable[[Message], bool]) -> Message:
        found = await self.next(name, lambda m: m["event"] == "video:update" and matches(m["data"]))
        data: Message = found["data"]
        return data

    async def _read(self) -> None:
        assert self.process.stdout is not None
        buffered = b""
        async for chunk in self.process.stdout:
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if message["name"] is not None:
                    self.received.setdefault(message["name"], []).append(message)
            self._changed.set()
            self._changed = anyio.Event()


@asynccontextmanager
async def node_sockets() -> AsyncIterator[Sockets]:
    """A Node process of socket.io clients for the block; it is closed (and killed) after."""
    script = install_client()
    node = shutil.which("node")
    assert node is not None, "Node 20 is needed for the socket.io client tests"
    async with await anyio.open_process([node, str(script)], cwd=NODE_DIR) as process:
        sockets = Sockets(process)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sockets._read)
            try:
                yield sockets
            finally:
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                tasks.cancel_scope.cancel()
