"""The engine `engine_for` builds (for `reelforge serve` and `reelforge worker`) is woken by the
bus when a video is accepted, not only by its idle poll."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from reelforge.db import migrate
from reelforge.providers.registry import emulator_provider
from reelforge.runtime import open_runtime
from reelforge.services.videos import NewVideo
from reelforge.worker.runner import engine_for

pytestmark = pytest.mark.anyio


async def test_an_accepted_video_wakes_the_engine_for_it(
    make_settings: Any, upstream: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(embedded_worker=False)
    await migrate.upgrade(settings.resolved_database_url)
    runtime = open_runtime(settings)
    provider = emulator_provider(upstream, timeout=10.0)
    try:
        engine = engine_for(runtime, provider)
        woken: list[str | None] = []
        monkeypatch.setattr(engine, "wake", woken.append)
        ada = await runtime.accounts.create("ada@example.org", "a-long-password-1")

        view, _ = await runtime.videos.create(ada, NewVideo(prompt="a paper boat"))

        assert woken == [view.id]
    finally:
        await provider.aclose()
        await runtime.close()
