"""Liveness, readiness, metrics, request ids and structured logs of the app."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from reelforge.api.app import create_app
from reelforge.logs import configure_logging
from reelforge.settings import LogFormat, LogLevel, Settings

pytestmark = pytest.mark.anyio

UNREACHABLE_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


async def _get(settings: Settings, path: str) -> httpx.Response:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path)


async def test_app_starts_on_an_empty_data_directory(
    data_dir: Path, client: httpx.AsyncClient
) -> None:
    health = await client.get("/health")
    ready = await client.get("/ready")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "storage", "provider"}
    assert all(check["ok"] for check in body["checks"].values())
    assert (data_dir / "reelforge.db").is_file()


async def test_ready_names_the_database_when_it_is_unreachable(make_settings: Any) -> None:
    response = await _get(make_settings(database_url=UNREACHABLE_POSTGRES), "/ready")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["database"]["error"]
    assert checks["storage"]["ok"] is True


async def test_ready_names_the_provider_when_it_is_unreachable(make_settings: Any) -> None:
    settings = make_settings(
        provider="openai", openai_api_key="sk-test", openai_base_url="http://127.0.0.1:1/v1"
    )

    response = await _get(settings, "/ready")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["provider"]["ok"] is False
    assert checks["database"]["ok"] is True


async def test_ready_names_redis_when_it_is_unreachable(make_settings: Any) -> None:
    response = await _get(make_settings(redis_url=UNREACHABLE_REDIS), "/ready")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is False
    assert checks["database"]["ok"] is True


@pytest.mark.redis
async def test_ready_checks_a_configured_redis(make_settings: Any, redis_url: str) -> None:
    response = await _get(make_settings(redis_url=redis_url), "/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["ok"] is True


@pytest.mark.postgres
async def test_ready_on_postgresql(make_settings: Any, postgres_url: str) -> None:
    response = await _get(make_settings(database_url=postgres_url), "/ready")

    assert response.status_code == 200
    assert response.json()["checks"]["database"]["ok"] is True


async def test_request_id_is_generated_or_echoed_when_safe(client: httpx.AsyncClient) -> None:
    generated = await client.get("/health")
    echoed = await client.get("/health", headers={"x-request-id": "abc-123"})
    hostile = await client.get("/health", headers={"x-request-id": 'x" injected=1'})

    assert len(generated.headers["x-request-id"]) == 32
    assert echoed.headers["x-request-id"] == "abc-123"
    assert hostile.headers["x-request-id"] not in ('x" injected=1', "")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    await client.get("/health")
    await client.get("/no/such/page")

    text = (await client.get("/metrics")).text

    assert 'reelforge_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
    assert 'route="unmatched",status="404"' in text
    assert "reelforge_http_request_duration_seconds_bucket" in text


async def test_log_lines_are_json_with_the_request_id(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(LogLevel.INFO, LogFormat.JSON)
    try:
        response = await client.get("/health", headers={"x-request-id": "trace-me"})
    finally:
        logging.getLogger().handlers.clear()

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert response.status_code == 200
    assert request_lines
    assert request_lines[-1]["request_id"] == "trace-me"
    assert request_lines[-1]["status"] == 200
    assert request_lines[-1]["route"] == "/health"


async def test_ready_reports_the_embedded_engine_by_its_loop(make_settings: Any) -> None:
    app = create_app(make_settings(worker_silence_seconds=60))
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/ready")
        watch = app.state.engine

    assert response.status_code == 200
    assert response.json()["checks"]["engine"]["ok"] is True
    assert "workers" not in response.json()["checks"]
    assert watch.engine.turned_at is not None
    # The lifespan's end asked the loop to stop: from then on /ready would say so.
    assert watch.ended == "stopped"
