"""Fixtures shared by the job engine tests: the emulator upstream, storage and engines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from reelforge.db.engine import Database
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.settings import EmulatorSettings
from reelforge.providers.registry import emulator_provider
from reelforge.services.jobs import Jobs
from reelforge.storage import Storage, open_storage
from reelforge.worker.engine import Engine, EngineConfig, Every
from tests.support.engine import steps_for


@pytest.fixture
async def upstream() -> AsyncIterator[FastAPI]:
    app = create_emulator_app(EmulatorSettings(poll_after_ms=0))
    yield app
    app.state.emulator.close()


@pytest.fixture
def storage() -> Storage:
    return open_storage("memory://")


@pytest.fixture
async def make_engine(
    database: Database, storage: Storage, upstream: FastAPI
) -> AsyncIterator[Any]:
    providers = []

    def make(
        timeout: float = 10.0,
        lease: timedelta = timedelta(seconds=30),
        concurrency: int = 4,
        idle_seconds: float = 0.05,
        periodic: list[Every] | None = None,
    ) -> Engine:
        provider = emulator_provider(upstream, timeout=timeout)
        providers.append(provider)
        steps = steps_for(database, storage, provider)
        config = EngineConfig(concurrency=concurrency, lease=lease, idle_seconds=idle_seconds)
        return Engine(
            Jobs(database), steps, config=config, provider_name=provider.name, periodic=periodic
        )

    yield make
    for provider in providers:
        await provider.aclose()
