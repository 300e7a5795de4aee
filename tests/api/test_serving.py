"""The app as `reelforge serve` runs it, beside the app as tests and embedders make it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from reelforge.api.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("_unfrozen")
@pytest.mark.parametrize("serving", [True, False])
async def test_only_the_served_app_freezes_what_start_up_made(
    make_settings: Any, serving: bool
) -> None:
    app = create_app(make_settings(embedded_worker=False), serving=serving)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        frozen = gc.get_freeze_count()

    assert (frozen > 0) is serving
