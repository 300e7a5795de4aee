"""The FastAPI app factory and its lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import anyio
import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector

from reelforge import __version__
from reelforge.api import (
    accounts,
    admin,
    errors,
    files,
    gateway,
    health,
    metrics,
    videos,
    webhooks,
)
from reelforge.api.direct import DirectRoutes
from reelforge.api.observability import HttpMetrics, ObservabilityMiddleware
from reelforge.bus.seats import seats_for
from reelforge.db import migrate
from reelforge.logs import configure_logging, get_logger
from reelforge.providers.base import Provider
from reelforge.providers.registry import build_providers
from reelforge.runtime import Runtime, open_runtime
from reelforge.services.engine_watch import EngineWatch
from reelforge.settings import ProviderName, Settings, load_settings
from reelforge.web import pages, security, sockets, streams
from reelforge.web.live import Live
from reelforge.web.shutdown import close_on_signals
from reelforge.worker.runner import engine_for

log = get_logger("reelforge.app")


def create_app(settings: Settings | None = None, *, serving: bool = False) -> FastAPI:
    """Build the app; the lifespan opens the adapters and, embedded, migrates the database.

    `serving`: this is the process `reelforge serve` runs, whose SIGINT/SIGTERM must end the
    live-update streams first (the server waits for open responses before the app's shutdown),
    and whose start-up objects live as long as it does.
    """
    settings = settings or load_settings()
    if not structlog.is_configured():
        # structlog's own default renders exceptions with rich, slowly; ours doesn't.
        configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            providers = providers_for(settings, stack)
            runtime = open_runtime(settings, providers=providers)
            stack.push_async_callback(runtime.close)
            if settings.is_embedded_database:
                await migrate.upgrade(settings.resolved_database_url)
            app.state.runtime = runtime
            await runtime.listen(stack)
            app.state.live = await _start_live(runtime, stack, on_signals=serving)
            if settings.embedded_worker:
                app.state.engine = await _start_engine(runtime, runtime.providers, stack)
            if serving:
                # What import and start-up made lives as long as the server: kept out of the
                # collector's full passes, which otherwise scan it again and again under load
                # (bench/api.md). Only there: an app made and dropped (as tests do) would
                # leave its cycles frozen for good.
                gc.freeze()
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
        # Served by the studio from packaged assets (web/docs.py), not from a CDN.
        docs_url=None,
        redoc_url=None,
        # Reelforge's telemetry is its own (Prometheus metrics and JSON access logs, in
        # observability.py). FastAPI's OpenTelemetry hooks, left on, ask the global tracer,
        # meter and logger providers on every request whether one was set up (bench/delivery.md).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.metrics_registry = registry
    errors.install(app)
    # Innermost: a signed file's request passes the access log, metrics and security headers
    # like any other, and is answered before FastAPI's router.
    app.add_middleware(
        DirectRoutes, routes=files.router.routes, handlers=errors.exception_handlers(app)
    )
    app.add_middleware(ObservabilityMiddleware, metrics=HttpMetrics(registry))
    # Matched in this order, one route after another: the routes clients poll most come first.
    routers = (
        videos.router,
        health.router,
        metrics.router,
        accounts.router,
        gateway.router,
        admin.router,
        webhooks.router,
        streams.router,
        # Answered by `DirectRoutes`; routed only to be documented and to answer other methods.
        files.router,
    )
    for router in routers:
        app.include_router(router)
    errors.answer_405_with_every_method(app, [route for r in routers for route in r.routes])
    app.mount(sockets.PATH, sockets.socket_app(app, settings.cors_origins))
    pages.install(app)
    security.install(app, settings.cors_origins)
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
        _hoist_definitions(schema)
        for path, operations in schema["paths"].items():
            if path.startswith(errors.GATEWAY_PREFIX):
                for operation in operations.values():
                    operation["responses"].pop("422", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _hoist_definitions(schema: dict[str, Any]) -> None:
    """Move the `$defs` of body schemas given by hand (`model_json_schema()` in openapi_extra)
    into `components/schemas`: their `#/$defs/…` references point at the document's root,
    where nothing is, so strict clients and generators could not resolve them."""
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            for name, definition in node.pop("$defs", {}).items():
                components.setdefault(name, visit(definition))
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + reference.removeprefix("#/$defs/")
            for key, value in node.items():
                node[key] = visit(value)
        elif isinstance(node, list):
            return [visit(item) for item in node]
        return node

    visit(schema)


def provider_for(settings: Settings, stack: AsyncExitStack) -> Provider:
    """The default provider; the emulator is built here, mounted in-process (DESIGN.md §2)."""
    return next(iter(providers_for(settings, stack).values()))


def providers_for(settings: Settings, stack: AsyncExitStack) -> dict[str, Provider]:
    """Every configured provider by name, the default first; the emulator, if one of them, is
    built here and mounted in-process (DESIGN.md §2)."""
    if ProviderName.EMULATOR not in settings.enabled_providers:
        return build_providers(settings)
    from reelforge.emulator.app import create_emulator_app
    from reelforge.emulator.settings import EmulatorSettings
    from reelforge.emulator.state import StateDirBusy

    emulator_settings = EmulatorSettings()
    if emulator_settings.state_dir is None:
        # Its jobs outlive this process, as a vendor's do: a restart resumes every video.
        emulator_settings.state_dir = settings.data_dir / "emulator"
    try:
        emulator = create_emulator_app(emulator_settings)
    except StateDirBusy as busy:
        # Another process on this data directory (`serve` beside `worker`) has it.
        log.warning("the in-process emulator keeps its state in memory", reason=str(busy))
        emulator_settings.state_dir = None
        emulator = create_emulator_app(emulator_settings)
    # A mounted app gets no lifespan of its own: its shutdown is ours.
    stack.callback(emulator.state.emulator.close)
    return build_providers(settings, emulator_app=emulator)


async def _start_live(runtime: Runtime, stack: AsyncExitStack, *, on_signals: bool) -> Live:
    """Push video changes to this process's SSE and socket.io clients while the app runs."""
    settings = runtime.settings
    live = Live(
        runtime.bus,
        runtime.videos,
        runtime.links,
        connections_per_user=settings.realtime_connections_per_user,
        horizon=timedelta(minutes=settings.job_deadline_minutes),
        seats=seats_for(runtime.redis, settings.redis_key_prefix),
    )
    tasks = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(tasks.cancel_scope.cancel)
    # Runs first on shutdown: open streams end, so the server need not wait them out.
    stack.push_async_callback(live.close)
    await tasks.start(live.run)
    if on_signals:
        stack.enter_context(close_on_signals(live))
    return live


async def _start_engine(
    runtime: Runtime, providers: Mapping[str, Provider], stack: AsyncExitStack
) -> EngineWatch:
    """Run the job engine inside this process (the embedded mode, DESIGN.md §1), watched by
    `/ready`'s `engine` entry."""
    engine = engine_for(runtime, providers)
    silence = runtime.settings.worker_silence_seconds
    watch = EngineWatch(engine, None if silence is None else timedelta(seconds=silence))
    runtime.checks["engine"] = watch.check
    stopping = anyio.Event()
    tasks = await stack.enter_async_context(anyio.create_task_group())
    # Runs before the task group exits: the engine stops claiming and drains its steps.
    stack.callback(stopping.set)
    stack.callback(engine.wake)
    tasks.start_soon(watch.run, stopping)
    return watch


def app_from_environment() -> FastAPI:
    """Entry point for ASGI servers started by `reelforge serve` (settings from the env)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, serving=True)
