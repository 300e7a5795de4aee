"""Delivering content from an S3 archive by presigned redirect; a local archive is sent by the
server, or by nginx in front of it (X-Accel-Redirect)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import openai
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from reelforge.api.app import create_app
from reelforge.emulator.server import free_port
from reelforge.runtime import open_runtime
from reelforge.services.accounts import Accounts
from reelforge.settings import Settings
from tests.support.accounts import FAST_HASHER, PASSWORD
from tests.support.api import BASE_URL, Caller, MakeCaller, archive, callers, runtime_of
from tests.support.processes import served, server_environment
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


async def test_a_signed_url_redirects_to_the_bucket_too(
    app: FastAPI, ada: Caller, client: httpx.AsyncClient, s3_bucket: S3Bucket
) -> None:
    video_id = await completed(app, ada)
    file_url = (await ada.client.get(f"/api/videos/{video_id}")).json()["data"]["file_url"]

    response = await client.get(file_url)

    assert response.status_code == 307, response.text
    assert response.headers["location"].startswith(s3_bucket.endpoint)
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(response.headers["location"])
    assert fetched.content == ASSETS["video"]


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


NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $host;
        }}
        # What docs/deploy.md tells an operator to write.
        location /_archive/ {{
            internal;
            alias {objects}/;
        }}
    }}
}}
"""


@pytest.fixture
async def behind_nginx(tmp_path: Path) -> AsyncIterator[tuple[str, str, Caller, str]]:
    """A live `reelforge serve` told to answer downloads with X-Accel-Redirect, a real nginx in
    front of it; (nginx's URL, the server's own URL, a caller through nginx, an archived video)."""
    nginx_binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx_binary).exists():
        pytest.skip("nginx is not installed (Debian: nginx-light)")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # nginx's worker may run as another user: it must be able to read the archive.
    for directory in (tmp_path, data_dir):
        directory.chmod(0o755)
    environment = server_environment(
        data_dir, EMBEDDED_WORKER="false", ACCEL_REDIRECT_PREFIX="/_archive/"
    )
    with served(environment, tmp_path / "serve") as server:
        await _answering(f"{server.url}/health")
        settings = Settings(_env_file=None, data_dir=data_dir)  # type: ignore[call-arg]
        runtime = open_runtime(settings)
        try:
            account = await Accounts(runtime.database, FAST_HASHER).create(
                "ada@example.org", PASSWORD
            )
            _, key = await runtime.keys.create(account, "nginx")
            port = free_port()
            (tmp_path / "nginx.conf").write_text(
                NGINX_CONF.format(
                    user="user root;" if os.geteuid() == 0 else "",
                    root=tmp_path,
                    port=port,
                    upstream=server.url,
                    objects=data_dir / "objects",
                )
            )
            nginx = subprocess.Popen(
                [nginx_binary, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            front = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(
                base_url=front, headers={"Authorization": f"Bearer {key}"}
            ) as client:
                caller = Caller(account=account, key=key, client=client)
                await _answering(f"{front}/health")
                made = await client.post("/api/videos", json={"prompt": "a fox"})
                assert made.status_code == 201, made.text
                video_id = made.json()["data"]["id"]
                await archive(runtime, video_id, ASSETS)
                yield front, server.url, caller, video_id
            nginx.terminate()
            nginx.wait(timeout=10)
        finally:
            await runtime.close()


async def _answering(url: str) -> None:
    """Wait for `url` to answer 200 (a server without a worker is never /ready)."""
    async with httpx.AsyncClient() as client:
        with anyio.fail_after(45):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url)).status_code == 200:
                        return
                await anyio.sleep(0.1)


async def test_nginx_sends_the_file_the_server_names_with_x_accel_redirect(
    behind_nginx: tuple[str, str, Caller, str],
) -> None:
    front, backend, ada, video_id = behind_nginx
    path = f"/api/videos/{video_id}/download"

    whole = await ada.client.get(path)
    part = await ada.client.get(path, headers={"Range": "bytes=1000-1999"})
    thumbnail = await ada.client.get(path, params={"variant": "thumbnail"})
    signed_url = (await ada.client.get(f"/api/videos/{video_id}")).json()["data"]["file_url"]
    async with httpx.AsyncClient(base_url=front) as anonymous:
        signed = await anonymous.get(signed_url)
        hidden = await anonymous.get(f"/_archive/videos/{video_id}/video.mp4")
        refused = await anonymous.get(path)
    async with httpx.AsyncClient(base_url=backend, headers=ada.client.headers) as direct:
        from_backend = await direct.get(path)

    assert (whole.status_code, whole.content) == (200, ASSETS["video"])
    assert whole.headers["content-type"] == "video/mp4"
    assert f'filename="{video_id}.mp4"' in whole.headers["content-disposition"]
    assert (part.status_code, part.content) == (206, ASSETS["video"][1000:2000])
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(ASSETS['video'])}"
    assert thumbnail.content == ASSETS["thumbnail"]
    assert (signed.status_code, signed.content) == (200, ASSETS["video"])
    # The archive is reachable only through the server's answer, never by its own path.
    assert hidden.status_code == 404
    assert refused.status_code == 401
    # The server itself sent no bytes, only where they are.
    assert from_backend.headers["x-accel-redirect"] == f"/_archive/videos/{video_id}/video.mp4"
    assert from_backend.content == b""
