"""Where the CPU of `GET /api/videos/{id}` goes, in-process (httpx's ASGI transport, no server).

`uv run python bench/api_profile.py [N]`: the route as is (API key), then with the key lookup and
the video read replaced by constants, `/health`, and FastAPI's hello-world; microseconds of CPU
per request at 64 concurrent (client included).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

PASSWORD = "bench-password-123"


def hello_app() -> Any:
    """FastAPI's hello-world (a factory, so the load generator's process never imports FastAPI)."""
    from fastapi import FastAPI

    hello = FastAPI()

    @hello.get("/")
    async def hello_world() -> dict[str, str]:
        return {"message": "Hello World"}

    return hello


def profile(requests: int) -> None:
    """CPU per request of the route as is, then with its database work replaced by constants."""
    import httpx
    from asgi_lifespan import LifespanManager

    from reelforge.api.app import create_app
    from reelforge.logs import configure_logging
    from reelforge.services.videos import NewVideo
    from reelforge.settings import Settings

    async def cpu_per_request(
        client: httpx.AsyncClient, path: str, headers: dict[str, str]
    ) -> float:
        remaining = requests

        async def loop() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                (await client.get(path, headers=headers)).raise_for_status()

        started = time.process_time()
        await asyncio.gather(*(loop() for _ in range(64)))
        return (time.process_time() - started) / requests * 1e6

    async def main(data_dir: Path) -> list[tuple[str, float]]:
        settings = Settings(_env_file=None, data_dir=data_dir, embedded_worker=False)
        configure_logging(settings.log_level, settings.log_format)
        app = create_app(settings)
        rows: list[tuple[str, float]] = []
        async with LifespanManager(app):
            runtime = app.state.runtime
            account = await runtime.accounts.create("profile@example.org", PASSWORD)
            _, key = await runtime.keys.create(account, "profile")
            view, _ = await runtime.videos.create(account, NewVideo(prompt="a fox"))
            path, auth = f"/api/videos/{view.id}", {"Authorization": f"Bearer {key}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await cpu_per_request(client, path, auth)  # warm-up
                rows.append(("GET /api/videos/{id}", await cpu_per_request(client, path, auth)))
                signed_in = await runtime.keys.authenticate(key)
                runtime.keys.authenticate = _constant(signed_in)
                rows.append(("  key lookup replaced", await cpu_per_request(client, path, auth)))
                found = await runtime.videos.get(account, view.id)
                runtime.videos.get = _constant(found)
                rows.append(
                    ("  and video read replaced", await cpu_per_request(client, path, auth))
                )
                rows.append(("GET /health", await cpu_per_request(client, "/health", {})))
            transport = httpx.ASGITransport(app=hello_app())
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                await cpu_per_request(client, "/", {})
                rows.append(("hello-world", await cpu_per_request(client, "/", {})))
        return rows

    with (
        tempfile.TemporaryDirectory(prefix="reelforge-profile-") as tmp,
        open(os.devnull, "w") as sink,
        contextlib.redirect_stderr(sink),
    ):
        rows = asyncio.run(main(Path(tmp)))
    print(f"CPU per request in-process, 64 concurrent, {requests} requests (client included):")
    for name, micros in rows:
        print(f"  {name:<28}{micros:>8.0f} µs")


def _constant(value: object) -> Callable[..., Awaitable[object]]:
    async def constant(*_: object) -> object:
        return value

    return constant


if __name__ == "__main__":
    profile(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
