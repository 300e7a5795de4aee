"""The app with fal and Veo configured beside the emulator: /ready checks every provider, the
catalog's 400s name the field, and POST /api/videos/{id}/rerun runs a prompt on another model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from reelforge.emulator.server import running
from reelforge.settings import Settings
from tests.providers.fakes import fal as fal_fake
from tests.providers.fakes import veo as veo_fake
from tests.support.api import MakeCaller

pytestmark = pytest.mark.anyio


@pytest.fixture
def vendor_roots() -> Iterator[tuple[str, str]]:
    fal, veo = fal_fake.FalFake(), veo_fake.VeoFake()
    with running(fal.app()) as fal_server, running(veo.app()) as veo_server:
        fal.root = fal_server.root
        yield fal_server.root, veo_server.root


@pytest.fixture
def settings(make_settings: Any, vendor_roots: tuple[str, str]) -> Settings:
    fal_root, veo_root = vendor_roots
    settings: Settings = make_settings(
        embedded_worker=False,
        providers="fal,veo",
        fal_api_key=fal_fake.API_KEY,
        fal_base_url=fal_root,
        gemini_api_key=veo_fake.API_KEY,
        gemini_base_url=veo_root,
    )
    return settings


async def test_ready_checks_every_provider(make_caller: MakeCaller, app: FastAPI) -> None:
    caller = await make_caller("ada@example.org")
    response = await caller.client.get("/ready")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert {"provider", "provider:fal", "provider:veo"} <= set(checks)
    assert all(check["ok"] for check in checks.values())


async def test_rerun_on_another_model(make_caller: MakeCaller) -> None:
    caller = await make_caller("ada@example.org")
    first = await caller.client.post(
        "/api/videos", json={"prompt": "a harbour", "model": "veo-3.1", "seconds": "8"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["data"]["provider"] == "veo"
    video_id = first.json()["data"]["id"]

    again = await caller.client.post(
        f"/api/videos/{video_id}/rerun", json={"model": "fal-ai/veo3.1"}
    )

    assert again.status_code == 201, again.text
    data = again.json()["data"]
    assert (data["provider"], data["model"], data["prompt"]) == (
        "fal",
        "fal-ai/veo3.1",
        "a harbour",
    )
    assert data["seconds"] == "8"


async def test_rerun_on_a_model_that_cannot_names_the_field(make_caller: MakeCaller) -> None:
    caller = await make_caller("ada@example.org")
    first = await caller.client.post(
        "/api/videos", json={"prompt": "a harbour", "model": "veo-3.1", "seconds": "4"}
    )
    video_id = first.json()["data"]["id"]
    response = await caller.client.post(
        f"/api/videos/{video_id}/rerun",
        json={"model": "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"},
    )
    assert response.status_code == 400, response.text
    assert "seconds" in response.text
    missing = await caller.client.post(f"/api/videos/{video_id}/rerun", json={})
    assert missing.status_code in (400, 422)
    unknown = await caller.client.post("/api/videos/video_nope/rerun", json={"model": "veo-3.1"})
    assert unknown.status_code == 404
