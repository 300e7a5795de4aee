"""Emulator fixtures: the app, the official SDK against it (sync over HTTP, async in-process)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx2
import openai
import pytest
from fastapi import FastAPI

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.server import RunningServer, running
from reelforge.emulator.service import Emulator
from reelforge.emulator.settings import EmulatorSettings
from tests.emulator.helpers import API_KEY, SDK, cached_render, make_settings


@pytest.fixture
def emulator_settings() -> EmulatorSettings:
    return make_settings()


@pytest.fixture
def emulator_app(emulator_settings: EmulatorSettings) -> Iterator[FastAPI]:
    app = create_emulator_app(emulator_settings, renderer=cached_render)
    yield app
    app.state.emulator.close()


@pytest.fixture
def emulator(emulator_app: FastAPI) -> Emulator:
    state: Emulator = emulator_app.state.emulator
    return state


@pytest.fixture
def live(emulator_app: FastAPI) -> Iterator[RunningServer]:
    """The same app on a real loopback socket (granian, embedded)."""
    with running(emulator_app) as server:
        yield server


@pytest.fixture
async def raw(emulator_app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    """Plain HTTP to the app in-process, for what the SDK never sends."""
    transport = httpx2.ASGITransport(app=emulator_app)
    async with httpx2.AsyncClient(
        transport=transport,
        base_url="http://emulator.test",
        headers={"authorization": f"Bearer {API_KEY}"},
    ) as client:
        yield client


@pytest.fixture
async def async_client(emulator_app: FastAPI) -> AsyncIterator[openai.AsyncOpenAI]:
    http = openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=emulator_app))
    async with openai.AsyncOpenAI(
        base_url="http://emulator.test/v1", api_key=API_KEY, http_client=http
    ) as client:
        yield client


@pytest.fixture
def sync_client(live: RunningServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=live.base_url, api_key=API_KEY) as client:
        yield client


@pytest.fixture(params=["sync", "async"])
def sdk(request: pytest.FixtureRequest) -> SDK:
    """Each test using it runs twice: the sync client over HTTP, the async one in-process."""
    name = "sync_client" if request.param == "sync" else "async_client"
    return SDK(request.getfixturevalue(name))
