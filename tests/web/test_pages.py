"""The studio over plain HTTP: sign-in redirects, headers, offline docs, CORS, the manifest,
the service worker and its offline page."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import update

from reelforge.api.app import create_app
from reelforge.db.models import Video
from reelforge.services.videos import NewVideo
from reelforge.settings import SettingsError, load_settings
from reelforge.web.pages import PAGE_SIZE
from tests.support.accounts import PASSWORD
from tests.support.api import BASE_URL, MakeCaller, runtime_of

pytestmark = pytest.mark.anyio

PAGES = ("/", "/create", "/account", "/admin")


@asynccontextmanager
async def _session(app: FastAPI, email: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        answer = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        yield client


async def test_pages_send_anonymous_callers_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in (*PAGES, "/videos/video_abc", "/compare?a=x&b=y"):
        answer = await client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=/"), path
    assert (await client.get("/login")).status_code == 200


async def test_sign_in_is_inert_until_its_script_runs(client: httpx.AsyncClient) -> None:
    """Submitted natively (before login.js takes the form), the form would be a GET with the
    password in its URL: its button is served disabled, for the script to enable."""
    page = (await client.get("/login")).text

    button = re.search(r"<button[^>]*type=\"submit\"[^>]*>", page)

    assert button is not None
    assert " disabled" in button.group()
    assert "data-needs-script" in button.group()


async def test_sign_in_only_returns_to_this_site(app: FastAPI, make_caller: MakeCaller) -> None:
    await make_caller("ada@example.org")
    async with _session(app, "ada@example.org") as ada:
        for target, expected in (
            ("/videos/v", "/videos/v"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("https://evil.example", "/"),
        ):
            answer = await ada.get("/login", params={"next": target})
            assert answer.headers["location"] == expected, target


async def test_pages_carry_a_strict_csp_and_no_inline_code(
    app: FastAPI, make_caller: MakeCaller
) -> None:
    await make_caller("ada@example.org")
    async with _session(app, "ada@example.org") as ada:
        for path in ("/", "/create", "/account"):
            answer = await ada.get(path)
            assert answer.status_code == 200, path
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self'" in policy
            assert "style-src 'self'" in policy
            assert "unsafe-inline" not in policy
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"
            assert answer.headers["cache-control"] == "no-store"
            # Every <script> is a file or a JSON data block; no style attribute or element.
            for tag in re.findall(r"<script\b[^>]*>", answer.text):
                assert "src=" in tag or 'type="application/json"' in tag, tag
            assert not re.search(r"<style\b|\sstyle=", answer.text), path


async def test_the_admin_page_is_not_found_for_users(app: FastAPI, make_caller: MakeCaller) -> None:
    await make_caller("ada@example.org")
    async with _session(app, "ada@example.org") as ada:
        assert (await ada.get("/admin")).status_code == 404
        assert (await ada.get("/admin/jobs/video_abc")).status_code == 404


async def test_docs_are_served_offline(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)

    assert page.status_code == 200
    assert assets
    for asset in assets:
        assert asset.startswith("/"), asset  # nothing from another host
        assert (await client.get(asset)).status_code == 200, asset
    assert (await client.get("/openapi.json")).status_code == 200


async def test_the_manifest_makes_the_studio_installable(client: httpx.AsyncClient) -> None:
    manifest = (await client.get("/manifest.webmanifest")).json()

    assert manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status_code == 200


async def test_the_service_worker_keeps_only_the_offline_page_and_its_files(
    client: httpx.AsyncClient,
) -> None:
    worker = await client.get("/sw.js")
    offline = await client.get("/offline")

    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"  # a new release takes over
    assert "script-src 'self'" in worker.headers["content-security-policy"]
    listed = re.search(r"\[OFFLINE, (\[.*?\])\]", worker.text)
    assert listed is not None, worker.text
    precached = json.loads(listed[1])
    assert offline.status_code == 200  # no sign-in: it is shown to anyone offline
    assert "offline" in offline.text
    for url in precached:
        assert url.startswith("/static/"), url  # nobody's pages or data
        assert (await client.get(url)).status_code == 200, url
        assert url in offline.text or url.endswith(".png"), url


@pytest.fixture
async def cors_app(make_settings: Any) -> AsyncIterator[FastAPI]:
    application = create_app(
        make_settings(embedded_worker=False, cors_origins=["https://app.example.com"])
    )
    async with LifespanManager(application):
        yield application


async def test_cors_lets_the_configured_origin_call_with_credentials(cors_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=cors_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        allowed = await client.options(
            "/api/videos",
            headers={
                "origin": "https://app.example.com",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type, x-csrf-token",
            },
        )
        other = await client.get("/health", headers={"origin": "https://evil.example.com"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in other.headers


def test_a_bad_cors_origin_stops_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REELFORGE_CORS_ORIGINS", "https://ok.example.com, *")

    with pytest.raises(SettingsError, match="REELFORGE_CORS_ORIGINS"):
        load_settings()

    monkeypatch.setenv("REELFORGE_CORS_ORIGINS", "https://a.example.com,http://127.0.0.1:3000")
    assert load_settings().cors_origins == ["https://a.example.com", "http://127.0.0.1:3000"]


async def test_the_gallery_pages_by_cursor_keeping_its_filters(
    app: FastAPI, make_caller: MakeCaller
) -> None:
    ada = await make_caller("ada@example.org")
    runtime = runtime_of(app)
    for n in range(PAGE_SIZE + 1):
        await runtime.videos.create(ada.account, NewVideo(prompt=f"fox number {n}"))
    await runtime.videos.create(ada.account, NewVideo(prompt="a heron"))

    async with _session(app, "ada@example.org") as client:
        first = await client.get("/", params={"q": "fox"})
        older = re.search(r'href="([^"]+)" rel="next"', first.text)
        assert older is not None
        second = await client.get(older.group(1).replace("&amp;", "&"))
        bad = await client.get("/", params={"cursor": "video_nope"})

    assert first.text.count('class="card"') == PAGE_SIZE
    assert "q=fox" in older.group(1)
    assert second.text.count('class="card"') == 1
    assert "fox number 0" in second.text
    assert "a heron" not in first.text + second.text
    assert bad.status_code == 400
    assert "cursor" in bad.text


async def test_a_video_page_shows_what_its_vendor_last_said(
    app: FastAPI, make_caller: MakeCaller
) -> None:
    ada = await make_caller("ada@example.org")
    runtime = runtime_of(app)
    waiting, _ = await runtime.videos.create(ada.account, NewVideo(prompt="a queued kite"))
    running, _ = await runtime.videos.create(ada.account, NewVideo(prompt="a running kite"))
    said = {
        waiting.id: {"job_state": "queued", "queue_position": 0},
        running.id: {"job_state": "in_progress", "vendor_message": "step 3 <of> 9"},
    }
    async with runtime.database.session() as session, session.begin():
        for video_id, values in said.items():
            await session.execute(update(Video).where(Video.id == video_id).values(**values))

    async with _session(app, "ada@example.org") as client:
        queued = await client.get(f"/videos/{waiting.id}")
        rendering = await client.get(f"/videos/{running.id}")
        gallery = await client.get("/")

    # fal's queue counts from 0 (next in line); the page counts from 1.
    assert "In queue, position 1" in queued.text
    assert "step 3 &lt;of&gt; 9" in rendering.text
    assert "Queue #1" in gallery.text
