"""Emulator test helpers: fast settings, a memoised real renderer and a sync/async SDK facade."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import anyio
import openai

from reelforge.emulator.render import RenderedAssets, RenderSpec, render
from reelforge.emulator.settings import EmulatorSettings

API_KEY = "sk-emulator-test"
# Every create in the suite uses the smallest size and length, so renders stay short.
SIZE = "720x1280"
SECONDS = "4"

_render_cache: dict[RenderSpec, RenderedAssets] = {}
_render_lock = threading.Lock()


def cached_render(
    spec: RenderSpec, progress: Callable[[float], None] | None = None
) -> RenderedAssets:
    """The real renderer, memoised for the session: it is deterministic, so a repeated spec
    (the same prompt in many tests) need not be encoded twice."""
    with _render_lock:
        hit = _render_cache.get(spec)
    if hit is not None:
        if progress is not None:
            progress(1.0)
        return hit
    assets = render(spec, progress)
    with _render_lock:
        _render_cache[spec] = assets
    return assets


def make_settings(**overrides: Any) -> EmulatorSettings:
    """Fast settings: short polls and retry hints, no env file."""
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "poll_after_ms": 10,
        "retry_after_ms": 10,
        "webhook_retry_delays": [0.05, 0.05],
    }
    values.update(overrides)
    return EmulatorSettings(_env_file=None, **values)


class SDK:
    """Calls `client.<path>` on a sync or async official client with one awaitable interface.

    Sync calls run on a worker thread against the live server, so both flavours drive real
    SDK code paths; `flavour` says which one a test got.
    """

    def __init__(self, client: openai.OpenAI | openai.AsyncOpenAI) -> None:
        self.client = client
        self.flavour = "async" if isinstance(client, openai.AsyncOpenAI) else "sync"

    def _resolve(self, path: str) -> Any:
        target: Any = self.client
        for part in path.split("."):
            target = getattr(target, part)
        return target

    async def __call__(self, path: str, *args: Any, **kwargs: Any) -> Any:
        method = self._resolve(path)
        if self.flavour == "async":
            return await method(*args, **kwargs)
        return await anyio.to_thread.run_sync(functools.partial(method, *args, **kwargs))

    async def collect(self, path: str, **kwargs: Any) -> list[Any]:
        """Everything an auto-paginating list yields."""
        method = self._resolve(path)
        if self.flavour == "async":
            return [item async for item in method(**kwargs)]
        return await anyio.to_thread.run_sync(lambda: list(method(**kwargs)))

    async def download(self, video_id: str, **kwargs: Any) -> bytes:
        response = await self("videos.download_content", video_id, **kwargs)
        if self.flavour == "async":
            data: bytes = await response.aread()
            return data
        return bytes(response.content)

    def with_options(self, **options: Any) -> SDK:
        return SDK(self.client.with_options(**options))
