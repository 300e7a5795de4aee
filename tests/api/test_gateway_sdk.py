"""The official `openai` SDK against the /v1 gateway: every Videos method and every error.

The client validates responses strictly (`_strict_response_validation=True`), so a field of
the wrong type or a missing key fails here, not just in a hand-written assertion.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial

import httpx2
import openai
import pytest
from fastapi import FastAPI
from openai.pagination import AsyncConversationCursorPage
from openai.types import Video
from PIL import Image

from reelforge.domain.accounts import Role
from tests.support.api import BASE_URL, Caller, MakeCaller, archive, runtime_of

pytestmark = [
    pytest.mark.anyio,
    # The SDK marks every Videos method deprecated ("The Sora API is scheduled to permanently
    # shut down on September 24, 2026."); the gateway keeps the protocol alive.
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

ASSETS = {
    "video": bytes(range(256)) * 64,
    "thumbnail": b"RIFF\x00\x00\x00\x00WEBPVP8 thumbnail",
    "spritesheet": b"\xff\xd8\xff spritesheet",
}

Connect = Callable[[str], openai.AsyncOpenAI]


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def connect(app: FastAPI) -> AsyncIterator[Connect]:
    """An SDK client for an API key (none for ""), talking to the app in-process."""
    async with AsyncExitStack() as stack:

        def make(key: str) -> openai.AsyncOpenAI:
            client = openai.AsyncOpenAI(
                base_url=f"{BASE_URL}/v1",
                api_key=key,
                http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=app)),
                max_retries=0,
                _strict_response_validation=True,
                _enforce_credentials=bool(key),
            )
            stack.push_async_callback(client.close)
            return client

        yield make


@pytest.fixture
async def ada(make_caller: MakeCaller) -> Caller:
    return await make_caller("ada@example.org")


@pytest.fixture
def sdk(connect: Connect, ada: Caller) -> openai.AsyncOpenAI:
    return connect(ada.key)


async def completed(app: FastAPI, sdk: openai.AsyncOpenAI, prompt: str = "a fox") -> Video:
    video = await sdk.videos.create(prompt=prompt, size="1280x720", seconds="8")
    await archive(runtime_of(app), video.id, ASSETS)
    return video


async def test_create_retrieve_delete(sdk: openai.AsyncOpenAI) -> None:
    video = await sdk.videos.create(prompt="a fox", model="sora-2", size="1280x720", seconds="8")

    assert video.id.startswith("video_")
    assert (video.object, video.status, video.progress) == ("video", "queued", 0)
    assert (video.model, video.size, video.seconds, video.prompt) == (
        "sora-2",
        "1280x720",
        "8",
        "a fox",
    )
    assert isinstance(video.created_at, int)
    assert (video.completed_at, video.error, video.expires_at) == (None, None, None)
    assert video.remixed_from_video_id is None
    assert await sdk.videos.retrieve(video.id) == video

    deleted = await sdk.videos.delete(video.id)

    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        await sdk.videos.retrieve(video.id)
    defaults = await sdk.videos.create(prompt="a fox")
    assert (defaults.model, defaults.size, defaults.seconds) == ("sora-2", "720x1280", "4")


async def test_create_with_an_image_file_and_as_json(sdk: openai.AsyncOpenAI) -> None:
    image = png(1280, 720)

    uploaded = await sdk.videos.create(
        prompt="from this frame", size="1280x720", input_reference=("first.png", image, "image/png")
    )
    # The SDK can't send the reference object itself (reference §4.1), so post the JSON form.
    posted = await sdk.post(
        "/videos",
        body={
            "prompt": "from this frame",
            "size": "1280x720",
            "seconds": "4",
            "input_reference": {"image_url": "data:image/png;base64," + _b64(image)},
        },
        cast_to=Video,
    )

    assert (uploaded.status, uploaded.size) == ("queued", "1280x720")
    assert (posted.status, posted.size, posted.seconds) == ("queued", "1280x720", "4")
    assert posted.id != uploaded.id


def envelope(page: AsyncConversationCursorPage[Video]) -> tuple[list[str], object, object, object]:
    """A page's ids, first_id (the SDK's page type doesn't declare it), last_id, has_more."""
    return [v.id for v in page.data], page.model_dump()["first_id"], page.last_id, page.has_more


async def test_list_paginates_with_after_and_last_id(sdk: openai.AsyncOpenAI) -> None:
    made = [(await sdk.videos.create(prompt=f"clip {i}")).id for i in range(5)]
    a, b, c, d, e = made[::-1]  # newest first

    first = await sdk.videos.list(limit=2)
    assert first.last_id is not None
    second = await sdk.videos.list(limit=2, after=first.last_id)
    assert second.last_id is not None
    last = await sdk.videos.list(limit=2, after=second.last_id)

    assert envelope(first) == ([a, b], a, b, True)
    assert envelope(second) == ([c, d], c, d, True)
    assert envelope(last) == ([e], e, e, False)
    # The SDK's auto-pagination follows `last_id` while `has_more`.
    assert [v.id async for v in sdk.videos.list(limit=2)] == [a, b, c, d, e]
    assert [v.id async for v in sdk.videos.list(order="asc", limit=3)] == made
    # limit=0 is allowed: no items, but it still says whether any would follow.
    assert envelope(await sdk.videos.list(limit=0)) == ([], None, None, True)
    assert envelope(await sdk.videos.list(limit=0, after=e)) == ([], None, None, False)


async def test_delete_while_iterating_the_list(sdk: openai.AsyncOpenAI) -> None:
    """Each page's `last_id` is deleted before the next page is asked for."""
    made = [(await sdk.videos.create(prompt=f"clip {i}")).id for i in range(5)]

    seen = []
    async for video in sdk.videos.list(limit=2):
        seen.append(video.id)
        await sdk.videos.delete(video.id)

    assert seen == made[::-1]
    assert (await sdk.videos.list()).data == []


async def test_the_sdks_poll_helper_gets_the_poll_interval(sdk: openai.AsyncOpenAI) -> None:
    video = await sdk.videos.create(prompt="a fox")

    raw = await sdk.videos.with_raw_response.retrieve(video.id)

    assert raw.parse().status == "queued"
    assert int(raw.headers["openai-poll-after-ms"]) > 0


STRICT_CREATES: list[tuple[dict[str, object], str, str]] = [
    ({"prompt": "fox", "seconds": 8}, "invalid_type", "seconds"),
    ({"prompt": "fox", "duration": 8}, "unknown_parameter", "duration"),
    ({"model": "sora-2"}, "missing_required_parameter", "prompt"),
]


async def test_the_protocols_own_checks_reach_the_sdk(sdk: openai.AsyncOpenAI) -> None:
    for body, code, param in STRICT_CREATES:
        # As JSON (the SDK's create always sends multipart, which has no numbers).
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.post("/videos", body=body, cast_to=Video)
        assert (caught.value.code, caught.value.param) == (code, param), body
    with pytest.raises(openai.BadRequestError) as unknown:
        await sdk.videos.create(prompt="fox", extra_body={"resolution": "720p"})
    assert (unknown.value.code, unknown.value.param) == ("unknown_parameter", "resolution")
    assert (await sdk.videos.list()).data == []


async def test_download_every_variant_after_archiving(
    app: FastAPI, sdk: openai.AsyncOpenAI
) -> None:
    video = await completed(app, sdk)

    done = await sdk.videos.retrieve(video.id)
    default = await sdk.videos.download_content(video.id)
    variants = {
        variant: await sdk.videos.download_content(video.id, variant=variant)
        for variant in ("video", "thumbnail", "spritesheet")
    }

    assert (done.status, done.progress, done.expires_at) == ("completed", 100, None)
    assert isinstance(done.completed_at, int)
    assert done.completed_at >= done.created_at
    assert default.content == ASSETS["video"]
    assert {name: body.content for name, body in variants.items()} == ASSETS
    assert variants["video"].response.headers["content-type"] == "video/mp4"
    assert variants["thumbnail"].response.headers["content-type"] == "image/webp"
    assert variants["spritesheet"].response.headers["content-type"] == "image/jpeg"


async def test_remix_a_completed_video(app: FastAPI, sdk: openai.AsyncOpenAI) -> None:
    parent = await completed(app, sdk)

    remix = await sdk.videos.remix(parent.id, prompt="at night")

    assert remix.id != parent.id
    assert (remix.status, remix.prompt, remix.remixed_from_video_id) == (
        "queued",
        "at night",
        parent.id,
    )
    assert (remix.model, remix.size, remix.seconds) == (parent.model, parent.size, parent.seconds)


async def test_a_cancelled_video_reads_as_failed_with_code_cancelled(
    ada: Caller, sdk: openai.AsyncOpenAI
) -> None:
    video = await sdk.videos.create(prompt="a fox")
    assert (await ada.client.post(f"/api/videos/{video.id}/cancel")).status_code == 200

    seen = await sdk.videos.retrieve(video.id)

    assert seen.status == "failed"
    assert seen.error is not None
    assert seen.error.code == "cancelled"
    assert "cancelled" in seen.error.message


SMALL_PNG = ("f.png", png(64, 64), "image/png")
TEXT_FILE = ("f.txt", b"hello", "text/plain")
BAD_CREATES = [
    ({"prompt": "fox", "model": "veo-9"}, "model", "Supported values are"),
    ({"prompt": "fox", "size": "1920x1080"}, "size", "'720x1280' and '1280x720'"),
    ({"prompt": "fox", "seconds": "10"}, "seconds", "'4', '8'"),
    ({"prompt": "   "}, "prompt", "blank"),
    ({"prompt": "fox", "input_reference": SMALL_PNG}, "input_reference", "720x1280"),
    ({"prompt": "fox", "input_reference": TEXT_FILE}, "input_reference", "JPEG, PNG or WebP"),
]


async def test_bad_creates_are_400_naming_the_param(sdk: openai.AsyncOpenAI) -> None:
    for body, param, wording in BAD_CREATES:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.videos.create(**body)  # type: ignore[arg-type]

        error = caught.value
        assert (error.status_code, error.param, error.code) == (400, param, "invalid_value"), body
        assert error.type == "invalid_request_error"
        assert wording in error.message, error.message
        assert error.message.startswith("Error code: 400 - ")
        assert error.request_id
    assert (await sdk.videos.list()).data == []


async def test_content_and_remix_before_completion_are_400_not_ready(
    sdk: openai.AsyncOpenAI,
) -> None:
    video = await sdk.videos.create(prompt="a fox")

    with pytest.raises(openai.BadRequestError) as content:
        await sdk.videos.download_content(video.id)
    with pytest.raises(openai.BadRequestError) as remix:
        await sdk.videos.remix(video.id, prompt="again")

    for caught in (content, remix):
        assert caught.value.code == "video_not_ready"
        assert "completed" in caught.value.message


async def test_unknown_and_foreign_ids_are_404(
    app: FastAPI, connect: Connect, sdk: openai.AsyncOpenAI, make_caller: MakeCaller
) -> None:
    bob = connect((await make_caller("bob@example.org")).key)
    theirs = await completed(app, bob)

    for video_id in ("video_doesnotexist", theirs.id):
        calls: list[Callable[[], Awaitable[object]]] = [
            partial(sdk.videos.retrieve, video_id),
            partial(sdk.videos.delete, video_id),
            partial(sdk.videos.download_content, video_id),
            partial(sdk.videos.remix, video_id, prompt="mine now"),
        ]
        for call in calls:
            with pytest.raises(openai.NotFoundError) as caught:
                await call()
            assert (caught.value.status_code, caught.value.code) == (404, "not_found")
            assert video_id in caught.value.message
    assert (await bob.videos.retrieve(theirs.id)).status == "completed"


async def test_missing_or_invalid_keys_are_401(connect: Connect) -> None:
    # The protocol's codes: a wrong key is `invalid_api_key`, a missing one has none.
    expected = {"": None, "rf_not_a_real_key": "invalid_api_key"}
    expected["not-even-a-key-shape"] = "invalid_api_key"
    for key, code in expected.items():
        with pytest.raises(openai.AuthenticationError) as caught:
            # No key: a call that omits the Authorization header (an anonymous caller).
            await connect(key).videos.list(
                extra_headers=None if key else {"Authorization": openai.omit}
            )

        error = caught.value
        assert (error.status_code, error.code) == (401, code), key
        assert error.response.headers["www-authenticate"] == "Bearer"
        sent = error.response.request.headers.get("authorization")
        assert sent == (f"Bearer {key}" if key else None)


async def test_quota_exceeded_is_a_rate_limit_error_the_sdk_does_not_retry(
    app: FastAPI, ada: Caller, make_caller: MakeCaller
) -> None:
    root = await make_caller("root@example.org", Role.ADMIN)
    quota = {"max_videos": 1, "period_days": 7, "monthly_budget": None}
    assert (
        await root.client.put(f"/api/admin/users/{ada.account.id}/quota", json=quota)
    ).status_code == 200
    sent: list[str] = []

    async def count(request: httpx2.Request) -> None:
        sent.append(request.url.path)

    # The SDK's own retry policy (two retries), which a 429 would otherwise trigger.
    async with openai.AsyncOpenAI(
        base_url=f"{BASE_URL}/v1",
        api_key=ada.key,
        http_client=openai.DefaultAsyncHttpxClient(
            transport=httpx2.ASGITransport(app=app), event_hooks={"request": [count]}
        ),
        max_retries=2,
    ) as sdk:
        await sdk.videos.create(prompt="the one")
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.videos.create(prompt="one more")

    error = caught.value
    assert (error.status_code, error.code, error.type) == (
        429,
        "quota_exceeded",
        "insufficient_quota",
    )
    assert "quota" in error.message
    assert "resets at" in error.message
    assert error.response.headers["x-should-retry"] == "false"
    assert "retry-after" not in error.response.headers
    assert sent == ["/v1/videos", "/v1/videos"]


async def test_idempotency_key_replays_and_refuses_another_body(
    sdk: openai.AsyncOpenAI,
) -> None:
    key = {"Idempotency-Key": "one-fox"}

    first = await sdk.videos.create(prompt="a fox", extra_headers=key)
    again = await sdk.videos.create(prompt="a fox", extra_headers=key)
    with pytest.raises(openai.ConflictError) as caught:
        await sdk.videos.create(prompt="an owl", extra_headers=key)

    assert again.id == first.id
    error = caught.value
    assert (error.status_code, error.param, error.code) == (409, "Idempotency-Key", "conflict")
    assert "Idempotency-Key" in error.message
    # The SDK would otherwise retry a 409 that can only fail the same way.
    assert error.response.headers["x-should-retry"] == "false"
    assert len((await sdk.videos.list()).data) == 1


async def test_edits_extensions_and_characters_say_they_are_not_offered(
    sdk: openai.AsyncOpenAI,
) -> None:
    clip = ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "edits": lambda: sdk.videos.edit(prompt="brighter", video=clip),
        "extensions": lambda: sdk.videos.extend(prompt="go on", seconds="4", video=clip),
        "characters": lambda: sdk.videos.create_character(name="Mossy", video=clip),
        "character": lambda: sdk.videos.get_character("char_123"),
    }

    for name, call in calls.items():
        with pytest.raises(openai.BadRequestError) as caught:
            await call()
        assert caught.value.code == "unsupported_endpoint", name
        assert "not offered by this gateway" in caught.value.message


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
