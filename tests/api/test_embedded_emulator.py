"""The emulator `reelforge serve` mounts in-process keeps its state in the data directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from reelforge.api.app import create_app
from reelforge.emulator.state import StateDirBusy, StateFile
from tests.support.api import runtime_of

pytestmark = pytest.mark.anyio


async def test_the_embedded_emulator_owns_the_data_dirs_emulator_state(
    make_settings: Any, data_dir: Path
) -> None:
    app = create_app(make_settings(embedded_worker=False))
    async with LifespanManager(app):
        provider = runtime_of(app).provider
        assert provider is not None
        assert (await provider.list(after=None, limit=10, order="desc")).items == ()
        with pytest.raises(StateDirBusy):
            StateFile(data_dir / "emulator")
    StateFile(data_dir / "emulator").close()  # given back when the app stops


async def test_a_held_state_dir_leaves_the_embedded_emulator_in_memory(
    make_settings: Any, data_dir: Path
) -> None:
    held = StateFile(data_dir / "emulator")
    try:
        app = create_app(make_settings(embedded_worker=False))
        async with LifespanManager(app):
            provider = runtime_of(app).provider
            assert provider is not None
            assert (await provider.list(after=None, limit=10, order="desc")).items == ()
    finally:
        held.close()
