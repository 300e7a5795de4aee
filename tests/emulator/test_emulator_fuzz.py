"""Property: whatever arrives, every route answers with the protocol's shape and never a 5xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.render import RenderedAssets, RenderSpec
from tests.emulator.helpers import API_KEY, cached_render, make_settings

pytestmark = pytest.mark.anyio

FIELDS = [
    "prompt",
    "model",
    "seconds",
    "size",
    "input_reference",
    "input_reference[image_url]",
    "input_reference[file_id]",
    "characters[][id]",
    "video",
    "video[id]",
    "name",
    "a[b][]",
    "[x]",
]
PATHS = [
    "/v1/videos",
    "/v1/videos/edits",
    "/v1/videos/extensions",
    "/v1/videos/characters",
    "/v1/videos/video_x/remix",
]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture
async def fuzz_client() -> AsyncIterator[httpx2.AsyncClient]:
    """An emulator whose renderer hands back one prepared clip.

    Parsing is what is under test; random valid prompts would otherwise each start a render.
    """
    clip = cached_render(RenderSpec("a calm ocean at sunset", 720, 1280, 4))

    def prepared(spec: RenderSpec, progress: Callable[[float], None] | None = None) -> Any:
        return RenderedAssets(clip.video, clip.thumbnail, clip.spritesheet)

    app = create_emulator_app(make_settings(), renderer=prepared)
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app),
            base_url="http://emulator.test",
            headers={"authorization": f"Bearer {API_KEY}"},
        ) as client:
            yield client
    finally:
        app.state.emulator.close()


def assert_protocol(response: httpx2.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body["error"]) == {"message", "type", "param", "code"}


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(
    path=st.sampled_from(PATHS),
    body=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), JSON, max_size=5),
)
async def test_any_json_object(
    fuzz_client: httpx2.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    assert_protocol(await fuzz_client.post(path, json=body))


@SETTINGS
@given(
    path=st.sampled_from(PATHS),
    fields=st.lists(
        st.tuples(st.sampled_from(FIELDS) | st.text(max_size=10), st.text(max_size=30)),
        max_size=5,
    ),
    files=st.lists(
        st.tuples(st.sampled_from(FIELDS), st.binary(max_size=64)),
        max_size=2,
    ),
)
async def test_any_multipart_form(
    fuzz_client: httpx2.AsyncClient,
    path: str,
    fields: list[tuple[str, str]],
    files: list[tuple[str, bytes]],
) -> None:
    parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in fields]
    parts += [(name, ("f.bin", data, "application/octet-stream")) for name, data in files]
    if not parts:
        parts = [("prompt", (None, "x"))]
    assert_protocol(await fuzz_client.post(path, files=parts))


@SETTINGS
@given(
    path=st.sampled_from(PATHS),
    content=st.binary(max_size=200),
    content_type=st.sampled_from(
        [
            "application/json",
            "multipart/form-data",
            "multipart/form-data; boundary=b",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
        ]
    ),
)
async def test_any_bytes(
    fuzz_client: httpx2.AsyncClient, path: str, content: bytes, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    assert_protocol(await fuzz_client.post(path, content=content, headers=headers))


@SETTINGS
@given(
    query=st.dictionaries(
        st.sampled_from(["limit", "order", "after", "variant"]), st.text(max_size=30), max_size=4
    ),
    range_header=st.text(max_size=30),
)
async def test_any_query_and_range(
    fuzz_client: httpx2.AsyncClient, query: dict[str, str], range_header: str
) -> None:
    assert_protocol(await fuzz_client.get("/v1/videos", params=query))
    created = await fuzz_client.post("/v1/videos", json={"prompt": "x"})
    video_id = created.json()["id"]
    try:
        headers = {"range": range_header}
        response = await fuzz_client.get(
            f"/v1/videos/{video_id}/content", params=query, headers=headers
        )
    except (httpx2.InvalidURL, ValueError, UnicodeEncodeError):
        return  # the client refused to send that header; nothing reached the server
    assert_protocol(response)


@SETTINGS
@given(body=JSON)
async def test_any_faults_update(fuzz_client: httpx2.AsyncClient, body: Any) -> None:
    await fuzz_client.post("/_emulator/reset")  # a valid update (an error burst) must not leak
    response = await fuzz_client.put(
        "/_emulator/faults",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert_protocol(response)
    clock = await fuzz_client.post("/_emulator/clock", json={"advance_seconds": body})
    assert_protocol(clock)
    await fuzz_client.post("/_emulator/reset")
