"""A live `reelforge serve` and Debian's chromium for the studio's browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.browser import (
    ADMIN_PASSWORD,
    CHROMIUM_ARGS,
    Inspector,
    axe_script,
    chromium,
)
from tests.support.processes import ServerProcess, served, server_environment


@pytest.fixture(scope="session")
def axe_source() -> str:
    return axe_script()


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("studio")
    environment = server_environment(
        directory / "data",
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        CREATE_RATE_LIMIT="100/minute",
        # Every test signs the admin in to make its users, and signs someone in itself.
        LOGIN_RATE_LIMIT="100/minute",
    )
    with served(environment, directory) as server, ThreadPoolExecutor(1) as thread:
        # A loop of its own: this synchronous fixture may run while the tests' loop does.
        thread.submit(anyio.run, server.ready).result()
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def inspector(axe_source: str) -> Inspector:
    return Inspector(axe_source)
