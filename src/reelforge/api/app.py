"""The FastAPI app factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector

from reelforge import __version__
from reelforge.api import accounts, admin, errors, health, videos
from reelforge.api.observability import HttpMetrics, ObservabilityMiddleware
from reelforge.db import migrate
from reelforge.logs import configure_logging, get_logger
from reelforge.runtime import open_runtime
from reelforge.settings import Settings, load_settings

log = get_logger("reelforge.app")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the lifespan opens the adapters and, embedded, migrates the database."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = open_runtime(settings)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(runtime.close)
            if settings.is_embedded_database:
                await migrate.upgrade(settings.resolved_database_url)
            app.state.runtime = runtime
            # The in-process job engine enters `stack` here once it exists (DESIGN.md §1).
            log.info("started", database=runtime.database.dialect, provider=settings.provider)
            yield

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    app = FastAPI(
        title="Reelforge",
        version=__version__,
        summary="Self-hosted video generation speaking the OpenAI Videos protocol.",
        lifespan=lifespan,
    )
    app.state.metrics_registry = registry
    app.add_middleware(ObservabilityMiddleware, metrics=HttpMetrics(registry))
    errors.install(app)
    app.include_router(health.router)
    app.include_router(accounts.router)
    app.include_router(videos.router)
    app.include_router(admin.router)
    return app


def app_from_environment() -> FastAPI:
    """Entry point for ASGI servers started by `reelforge serve` (settings from the env)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
