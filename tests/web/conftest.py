"""A live `reelforge serve` (embedded worker and emulator) shared by a module's realtime tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reelforge.domain.accounts import Role
from tests.support.loop import BACKEND
from tests.support.serving import (
    CONNECTIONS_PER_USER,
    HEARTBEAT_SECONDS,
    Served,
    User,
    serve_environment,
    serving,
)


@pytest.fixture(scope="module")
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return BACKEND


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("serve")
    environment = serve_environment(
        directory / "data",
        realtime_connections_per_user=str(CONNECTIONS_PER_USER),
        realtime_heartbeat_seconds=str(HEARTBEAT_SECONDS),
        default_video_quota="",
    )
    async with serving(environment, directory) as server:
        yield server


@pytest.fixture
async def ada(served: Served) -> User:
    return await served.user(f"ada-{uuid.uuid4().hex[:8]}@example.org")


@pytest.fixture
async def bob(served: Served) -> User:
    return await served.user(f"bob-{uuid.uuid4().hex[:8]}@example.org")


@pytest.fixture
async def root(served: Served) -> User:
    return await served.user(f"root-{uuid.uuid4().hex[:8]}@example.org", Role.ADMIN)
