"""`/metrics`: the installation's figures, read from the database, the same from any process."""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from reelforge.api.app import create_app
from tests.api.test_end_to_end import wait_until_finished
from tests.support.api import MakeCaller, archive, callers, runtime_of

pytestmark = pytest.mark.anyio

ASSETS = {"video": b"v" * 1000, "thumbnail": b"t" * 100, "spritesheet": b"s" * 10}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(app: FastAPI) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


async def test_videos_queue_archive_and_spend(app: FastAPI, make_caller: MakeCaller) -> None:
    caller = await make_caller("ada@example.com")
    body = {"prompt": "a fox", "size": "1280x720", "seconds": "4"}
    first = (await caller.client.post("/api/videos", json=body)).json()["data"]
    await caller.client.post("/api/videos", json=body | {"prompt": "a hare"})
    await archive(runtime_of(app), first["id"], ASSETS)

    figures = await scrape(app)

    states = {
        dict(labels)["state"]: value
        for (name, labels), value in figures.items()
        if name == "reelforge_videos"
    }
    assert states.pop("completed") == 1
    assert sum(states.values()) == 1
    assert figures[("reelforge_archive_bytes", ())] == 1110
    assert figures[("reelforge_queue_lag_seconds", ())] >= 0
    reserved = figures[("reelforge_ledger_usd", (("kind", "reserve"),))]
    assert Decimal(str(reserved)) == 2 * Decimal(first["cost"]["estimate"])
    assert figures[("reelforge_spend_usd", ())] == reserved
    for gauge in ("reelforge_video_polls", "reelforge_archive_retries"):
        assert figures[(gauge, (("provider", "emulator"),))] == 0


async def test_every_process_reports_the_same_installation(
    app: FastAPI, make_caller: MakeCaller, make_settings: Any
) -> None:
    caller = await make_caller("ada@example.com")
    await caller.client.post("/api/videos", json={"prompt": "a fox", "size": "1280x720"})
    other = create_app(make_settings(embedded_worker=False))

    async with LifespanManager(other):
        here = await scrape(app)
        there = await scrape(other)

    def installation(figures: dict[Any, float]) -> dict[Any, float]:
        # HTTP metrics are each process's own; the queue's lag grows between the two
        # scrapes; everything else must be equal.
        return {
            key: value
            for key, value in figures.items()
            if key[0].startswith("reelforge_")
            and not key[0].startswith("reelforge_http_")
            and key[0] != "reelforge_queue_lag_seconds"
        }

    assert installation(here) == installation(there)
    assert installation(here)


async def test_a_run_counts_upstream_calls_by_outcome_and_times_each_step(
    working_app: FastAPI,
) -> None:
    async with AsyncExitStack() as stack:
        ada = await (await callers(working_app, stack))("ada@example.com")
        # The emulator answers this create's first attempt 429: the engine tries again. Its
        # job takes 2 s, past the whole second upstream reports `completed_at` in.
        body = {"prompt": "a fox [[429=1]] [[latency=2]]", "size": "1280x720", "seconds": "4"}
        made = (await ada.client.post("/api/videos", json=body)).json()["data"]
        video = await wait_until_finished(ada, made["id"])
        figures = await scrape(working_app)

    assert video["status"] == "completed", video

    def calls(name: str, operation: str, code: str) -> float:
        labels = (("code", code), ("operation", operation), ("provider", "emulator"))
        return figures.get((name, labels), 0.0)

    assert calls("reelforge_upstream_calls_total", "create", "429") == 1
    assert calls("reelforge_upstream_errors_total", "create", "429") == 1
    assert calls("reelforge_upstream_calls_total", "create", "ok") == 1
    assert calls("reelforge_upstream_errors_total", "create", "ok") == 0
    assert calls("reelforge_upstream_calls_total", "retrieve", "ok") >= 1
    assert calls("reelforge_upstream_calls_total", "download", "ok") >= 1
    for step in ("queue", "generation", "archive"):
        labels = (("provider", "emulator"), ("step", step))
        assert figures[("reelforge_job_step_seconds_count", labels)] == 1
        buckets = [
            value
            for (name, found), value in figures.items()
            if name == "reelforge_job_step_seconds_bucket" and dict(found)["step"] == step
        ]
        assert max(buckets) == 1
        assert figures[("reelforge_job_step_seconds_bucket", (("le", "+Inf"), *labels))] == 1
        assert figures[("reelforge_job_step_seconds_sum", labels)] >= 0
    generation = figures[
        ("reelforge_job_step_seconds_sum", (("provider", "emulator"), ("step", "generation")))
    ]
    # The emulator takes a while to render: the step's time is measured, not zero.
    assert generation > 0
