"""The runtime builds its adapters from the settings."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.pool import QueuePool

from reelforge.runtime import open_runtime

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("size", [3, 40])
async def test_the_database_pool_keeps_the_configured_connections(
    make_settings: Any, size: int
) -> None:
    runtime = open_runtime(make_settings(database_pool_size=size))
    try:
        pool = runtime.database.engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.size() == size
    finally:
        await runtime.close()
