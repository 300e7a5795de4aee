"""The FastAPI app factory and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector

from reelforge import __version__
from reelforge.api import accounts, admin, errors, gateway, health, videos, webhooks
from reelforge.api.observability import HttpMetrics, ObservabilityMiddleware
from reelforge.db import migrate
from reelforge.logs import configure_logging, get_logger
from reelforge.providers.base import Provider
from reelforge.providers.registry import build_provider
from reelforge.runtime import Runtime, open_runtime
from reelforge.settings import ProviderName, Settings, load_settings
from reelforge.web import sockets, streams
from reelforge.web.live import Live
from reelforge.web.shutdown import close_on_signals
from reelforge.worker.runner import engine_for

log = get_logger("reelforge.app")


def create_app(settings: Settings | None = None, *, serving: bool = False) -> FastAPI:
    """Build the app; the lifespan opens the adapters and, embedded, migrates the database.

    `serving`: this is the process `reelforge serve` runs, whose SIGINT/SIGTERM must end the
    live-update streams first (the server waits for open responses before the app's shutdown).
    """
    settings = settings or load_settings()
    if not structlog.is_configured():
        # structlog's own default renders exceptions with rich, slowly; ours doesn't.
        configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            provider = provider_for(settings, stack)
            runtime = open_runtime(settings, provider=provider)
            stack.push_async_callback(runtime.close)
            if settings.is_embedded_database:
                await migrate.upgrade(settings.resolved_database_url)
            app.state.runtime = runtime
            await _listen(runtime, stack)
            app.state.live = await _start_live(runtime, stack, on_signals=serving)
            if settings.embedded_worker:
                await _start_engine(runtime, provider, stack)
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
    app.include_router(gateway.router)
    app.include_router(admin.router)
    app.include_router(webhooks.router)
    app.include_router(streams.router)
    app.mount(sockets.PATH, sockets.socket_app(app))
    _gateway_answers_400_not_422(app)
    return app


def _gateway_answers_400_not_422(app: FastAPI) -> None:
    """Drop the 422 FastAPI documents on every route with parameters from the /v1 routes: there,
    as in the protocol, an invalid parameter is a 400 (see `errors.install`)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()  # FastAPI keeps it as app.openapi_schema: this runs once
        for path, operations in schema["paths"].items():
            if path.startswith(errors.GATEWAY_PREFIX):
                for operation in operations.values():
                    operation["responses"].pop("422", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def provider_for(settings: Settings, stack: AsyncExitStack) -> Provider:
    """The configured provider; the emulator is built here, mounted in-process (DESIGN.md §2)."""
    if settings.provider is not ProviderName.EMULATOR:
        return build_provider(settings)
    from reelforge.emulator.app import create_emulator_app

    emulator = create_emulator_app()
    # A mounted app gets no lifespan of its own: its shutdown is ours.
    stack.callback(emulator.state.emulator.close)
    return build_provider(settings, emulator_app=emulator)


async def _listen(runtime: Runtime, stack: AsyncExitStack) -> None:
    """Carry other processes' bus notices to this one's subscribers while the app runs."""
    tasks = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(tasks.cancel_scope.cancel)
    tasks.start_soon(runtime.bus.listen)


async def _start_live(runtime: Runtime, stack: AsyncExitStack, *, on_signals: bool) -> Live:
    """Push video changes to this process's SSE and socket.io clients while the app runs."""
    settings = runtime.settings
    live = Live(
        runtime.bus,
        runtime.videos,
        connections_per_user=settings.realtime_connections_per_user,
        horizon=timedelta(minutes=settings.job_deadline_minutes),
    )
    tasks = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(tasks.cancel_scope.cancel)
    # Runs first on shutdown: open streams end, so the server need not wait them out.
    stack.push_async_callback(live.close)
    await tasks.start(live.run)
    if on_signals:
        stack.enter_context(close_on_signals(live))
    return live


async def _start_engine(runtime: Runtime, provider: Provider, stack: AsyncExitStack) -> None:
    """Run the job engine inside this process (the embedded mode, DESIGN.md §1)."""
    engine = engine_for(runtime, provider)
    stopping = anyio.Event()
    tasks = await stack.enter_async_context(anyio.create_task_group())
    # Runs before the task group exits: the engine stops claiming and drains its steps.
    stack.callback(stopping.set)
    stack.callback(engine.wake)

    async def accepted(_video_id: str) -> None:
        engine.wake()

    runtime.videos.on_accepted = accepted
    runtime.inbound.on_nudge = accepted
    tasks.start_soon(engine.run, stopping)


def app_from_environment() -> FastAPI:
    """Entry point for ASGI servers started by `reelforge serve` (settings from the env)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, serving=True)
