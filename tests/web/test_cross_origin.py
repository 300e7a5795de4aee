"""socket.io from another origin: a page of REELFORGE_CORS_ORIGINS connects with credentials
(the real socket.io-client sending that Origin), the Access-Control headers come exactly once,
and any other site's page is refused on both transports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.serving import Served, User, serve_environment, serving
from tests.support.sockets import Sockets, node_sockets

pytestmark = pytest.mark.anyio

FRONT_END = "http://front.example:3000"
ELSEWHERE = "http://evil.example"
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("cors")
    environment = serve_environment(directory / "data", cors_origins=FRONT_END)
    async with serving(environment, directory) as server:
        yield server


@pytest.fixture
async def sockets() -> AsyncIterator[Sockets]:
    async with node_sockets() as clients:
        yield clients


@pytest.fixture
async def ada(served: Served) -> User:
    return await served.user(f"ada-{uuid.uuid4().hex[:8]}@example.org")


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]])
@pytest.mark.parametrize("origin", [FRONT_END, "same origin"])
async def test_a_listed_or_the_same_origin_connects_and_gets_updates(
    served: Served, sockets: Sockets, ada: User, origin: str, transports: list[str]
) -> None:
    sent = served.url if origin == "same origin" else origin
    connected = await sockets.connect(
        "page",
        served.url,
        transports=transports,
        auth={"token": ada.key},
        extraHeaders={"Origin": sent},
    )
    assert connected["event"] == "connect", connected

    video_id = await served.create(ada)
    await sockets.subscribe("page", video_id)
    update = await sockets.update_where("page", lambda data: data["videoId"] == video_id)
    assert update["id"] == video_id


@pytest.mark.parametrize("transports", [["polling"], ["websocket"]])
async def test_another_sites_page_is_refused(
    served: Served, sockets: Sockets, ada: User, transports: list[str]
) -> None:
    refused = await sockets.connect(
        "evil",
        served.url,
        transports=transports,
        auth={"token": ada.key},
        extraHeaders={"Origin": ELSEWHERE},
    )

    assert refused["event"] == "connect_error"


def _only(response: httpx.Response, name: str) -> str:
    values = response.headers.get_list(name)
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


async def test_the_handshake_carries_the_cors_headers_once(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        preflight = await client.options(
            HANDSHAKE,
            headers={
                "Origin": FRONT_END,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        handshake = await client.get(HANDSHAKE, headers={"Origin": FRONT_END})
        refused = await client.get(HANDSHAKE, headers={"Origin": ELSEWHERE})

    for answer in (preflight, handshake):
        assert answer.status_code == 200, answer.text
        assert _only(answer, "access-control-allow-origin") == FRONT_END
        assert _only(answer, "access-control-allow-credentials") == "true"
    assert handshake.text.startswith("0{")  # engine.io's open packet
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


async def test_without_an_origin_header_nothing_changes(served: Served) -> None:
    """Servers, CLIs and the SDKs send no Origin; they connect as before."""
    async with httpx.AsyncClient(base_url=served.url) as client:
        handshake = await client.get(HANDSHAKE)
    assert handshake.status_code == 200
    assert "access-control-allow-origin" not in handshake.headers
