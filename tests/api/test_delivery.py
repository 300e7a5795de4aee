"""Delivering content from an S3 archive by presigned redirect; a local archive streams."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import openai
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from reelforge.api.app import create_app
from reelforge.settings import Settings
from tests.support.api import BASE_URL, Caller, MakeCaller, archive, callers, runtime_of
from tests.support.s3 import S3Bucket

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

ASSETS = {
    "video": bytes(range(256)) * 1024,
    "thumbnail": b"RIFF\x00\x00\x00\x00WEBPVP8 thumbnail",
    "spritesheet": b"\xff\xd8\xff spritesheet",
}


@pytest.fixture
def settings(make_settings: Any, s3_bucket: S3Bucket) -> Settings:
    """The app's archive is a bucket on the loopback S3 server."""
    s3: Settings = make_settings(
        storage_url=s3_bucket.url,
        s3_endpoint_url=s3_bucket.endpoint,
        s3_access_key_id=s3_bucket.access_key_id,
        s3_secret_access_key=s3_bucket.secret_access_key,
        embedded_worker=False,
    )
    return s3


@pytest.fixture
async def ada(make_caller: MakeCaller) -> Caller:
    return await make_caller("ada@example.org")


async def completed(app: FastAPI, caller: Caller) -> str:
    response = await caller.client.post("/api/videos", json={"prompt": "a fox"})
    assert response.status_code == 201, response.text
    video_id: str = response.json()["data"]["id"]
    await archive(runtime_of(app), video_id, ASSETS)
    return video_id


@pytest.mark.parametrize(
    ("path", "variant"),
    [
        ("/api/videos/{id}/download", "video"),
        ("/api/videos/{id}/download?variant=thumbnail", "thumbnail"),
        ("/v1/videos/{id}/content", "video"),
        ("/v1/videos/{id}/content?variant=spritesheet", "spritesheet"),
    ],
)
async def test_download_redirects_to_a_short_lived_presigned_url(
    app: FastAPI, ada: Caller, s3_bucket: S3Bucket, path: str, variant: str
) -> None:
    video_id = await completed(app, ada)

    response = await ada.client.get(path.format(id=video_id))

    assert response.status_code == 307, response.text
    assert response.headers["cache-control"] == "private, no-store"
    location = response.headers["location"]
    assert location.startswith(s3_bucket.endpoint)
    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == ["300"]
    # The URL is the credential: a plain client with no API key gets the exact bytes.
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(location)
        ranged = await plain.get(location, headers={"Range": "bytes=2-5"})
    assert fetched.status_code == 200
    assert fetched.content == ASSETS[variant]
    assert ranged.status_code == 206
    assert ranged.content == ASSETS[variant][2:6]


async def test_a_matching_etag_is_answered_without_a_redirect(app: FastAPI, ada: Caller) -> None:
    video_id = await completed(app, ada)
    first = await ada.client.get(f"/api/videos/{video_id}/download")

    again = await ada.client.get(
        f"/api/videos/{video_id}/download", headers={"If-None-Match": first.headers["etag"]}
    )

    assert again.status_code == 304
    assert "location" not in again.headers


async def test_the_openai_sdk_follows_the_redirect(app: FastAPI, ada: Caller) -> None:
    video_id = await completed(app, ada)
    # The gateway in-process, everything else (the S3 server) over the network.
    http = openai.DefaultAsyncHttpxClient(
        mounts={BASE_URL: httpx2.ASGITransport(app=app)},
    )
    sdk = openai.AsyncOpenAI(
        base_url=f"{BASE_URL}/v1", api_key=ada.key, http_client=http, max_retries=0
    )
    try:
        content = await sdk.videos.download_content(video_id)
        assert content.content == ASSETS["video"]
    finally:
        await sdk.close()


async def test_a_local_archive_streams_instead(make_settings: Any) -> None:
    application = create_app(make_settings(embedded_worker=False))
    async with LifespanManager(application), AsyncExitStack() as stack:
        caller = await (await callers(application, stack))("bob@example.org")
        video_id = await completed(application, caller)

        response = await caller.client.get(f"/api/videos/{video_id}/download")

    assert response.status_code == 200
    assert response.content == ASSETS["video"]
