"""`/metrics`: the installation's figures, read from the database, the same from any process."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from reelforge.api.app import create_app
from tests.support.api import MakeCaller, archive, runtime_of

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
    assert ("reelforge_upstream_polls_total", (("provider", "emulator"),)) in figures


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
