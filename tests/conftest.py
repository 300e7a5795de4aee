"""Shared fixtures: settings on a throwaway data dir, real databases, the app and its client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from moto.server import ThreadedMotoServer

from reelforge.api.app import create_app
from reelforge.bus import LocalBus
from reelforge.db import migrate
from reelforge.db.engine import Database
from reelforge.domain.accounts import Account, Role
from reelforge.domain.catalog import provider
from reelforge.services.accounts import Accounts
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.quotas import Quotas
from reelforge.services.videos import Videos
from reelforge.settings import Settings
from reelforge.storage import open_storage
from tests.support.accounts import FAST_HASHER, PASSWORD
from tests.support.api import MakeCaller, callers
from tests.support.databases import create_database, drop_database
from tests.support.loop import BACKEND
from tests.support.s3 import S3Bucket, create_bucket

POSTGRES_ENV = "REELFORGE_TEST_POSTGRES_URL"
REDIS_ENV = "REELFORGE_TEST_REDIS_URL"
NO_SKIPS_ENV = "REELFORGE_TEST_NO_SKIPS"

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # An expected failure reports as skipped; only a real skip counts.
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # CI runs everything (PostgreSQL, Redis …); a skip there means a test silently didn't run.
    if os.environ.get(NO_SKIPS_ENV) and _skipped and exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{NO_SKIPS_ENV} is set but {len(_skipped)} tests were skipped:")
            for nodeid in _skipped:
                reporter.write_line(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return BACKEND


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's environment or `.env`."""
    for name in list(os.environ):
        if name.startswith(("REELFORGE_", "OPENAI_", "AWS_")) and name not in (
            POSTGRES_ENV,
            REDIS_ENV,
            NO_SKIPS_ENV,
        ):
            monkeypatch.delenv(name)
    for name in ("DATABASE_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    return url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    admin = _postgres_admin_url()
    url = await create_database(admin)
    try:
        yield url
    finally:
        await drop_database(admin, url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each dialect."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await migrate.upgrade(database_url)
    return database_url


@pytest.fixture
async def database(migrated_url: str) -> AsyncIterator[Database]:
    """A migrated database of each dialect, opened."""
    handle = Database(migrated_url)
    yield handle
    await handle.close()


@pytest.fixture
def accounts(database: Database) -> Accounts:
    return Accounts(database, FAST_HASHER)


@pytest.fixture
async def ada(accounts: Accounts) -> Account:
    return await accounts.create("ada@example.org", PASSWORD, display_name="Ada")


@pytest.fixture
async def bob(accounts: Accounts) -> Account:
    return await accounts.create("bob@example.org", PASSWORD, display_name="Bob")


@pytest.fixture
async def admin(accounts: Accounts) -> Account:
    return await accounts.create("root@example.org", PASSWORD, role=Role.ADMIN)


@pytest.fixture
def videos(database: Database) -> Videos:
    storage, spec = open_storage("memory://"), provider("emulator")
    return Videos(database, storage, spec, Lifecycle(database, LocalBus()), max_prompt_length=1000)


@pytest.fixture
def quotas(database: Database) -> Quotas:
    return Quotas(database)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set")
    return url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a loopback port, for the whole run."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> S3Bucket:
    return create_bucket(s3_endpoint)


@pytest.fixture
def make_settings(data_dir: Path) -> Any:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", data_dir)
        # Tests' webhook receivers listen on loopback; tests of the guard pass False.
        overrides.setdefault("webhook_allow_private_addresses", True)
        # Tests run no worker process; tests of the workers' readiness entry set it.
        overrides.setdefault("worker_silence_seconds", None)
        return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    """The embedded defaults, minus the worker: tests drive a video's life themselves (see
    `tests.support.api.archive`) unless they ask for `working_app`."""
    settings: Settings = make_settings(embedded_worker=False)
    return settings


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def working_app(make_settings: Any) -> AsyncIterator[FastAPI]:
    """The app exactly as `reelforge serve` runs it: the worker drives videos through the
    built-in emulator."""
    application = create_app(make_settings())
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def make_caller(app: FastAPI) -> AsyncIterator[MakeCaller]:
    """Make users with API keys, each with its own authenticated client."""
    async with AsyncExitStack() as stack:
        yield await callers(app, stack)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://reelforge.test") as c:
        yield c
