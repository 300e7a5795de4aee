"""Who may touch a video on /api: the ownership matrix, and every way of proving who you are.

Each route that takes a video id, for each kind of caller: the owner and an admin act; another
user gets the same 404 as for a video that doesn't exist, and an anonymous caller a 401 asking
for a Bearer credential, and neither changes anything. Then the credentials themselves: revoked
keys, disabled users, JWTs from /api/auth/token, and session cookies with their CSRF rule.

One app and its callers serve the whole module (argon2 and migrations are what cost); every test
makes its own video, so no test sees another's effects.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from reelforge.api.app import create_app
from reelforge.domain.accounts import Role
from reelforge.runtime import Runtime
from reelforge.services.videos import NewVideo
from reelforge.settings import Settings
from tests.support.api import BASE_URL, Caller, MakeCaller, archive, callers, outcome, runtime_of
from tests.support.loop import BACKEND

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"  # what `make_caller` gives every user
ASSETS = {
    "video": b"\x00\x00\x00\x18ftypmp42 stand-in",
    "thumbnail": b"RIFF WEBP",
    "spritesheet": b"\xff\xd8 jpeg",
}
MISSING_ID = "video_0000000000000000000000000000000000000000000000000"


@dataclass(frozen=True)
class Route:
    """A route that takes a video id, and what it answers when the caller may use it."""

    name: str
    method: str
    suffix: str = ""
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    # Remix and downloads need a completed video; the rest get a queued one, so that a cancel
    # (or a delete, which cancels) by an intruder would show.
    completed: bool = False

    def path(self, video_id: str) -> str:
        return f"/api/videos/{video_id}{self.suffix}"

    async def send(self, client: httpx.AsyncClient, video_id: str, **kwargs: Any) -> httpx.Response:
        return await client.request(
            self.method, self.path(video_id), params=self.params, json=self.json, **kwargs
        )


ROUTES = [
    Route("get", "GET"),
    Route("delete", "DELETE"),
    Route("remix", "POST", "/remix", json={"prompt": "the same, at night"}, completed=True),
    Route("cancel", "POST", "/cancel"),
    Route("events", "GET", "/events"),
    Route("stream", "GET", "/stream"),
    *(
        Route(f"download {variant}", "GET", "/download", {"variant": variant}, completed=True)
        for variant in ASSETS
    ),
]
ROUTE_IDS = [route.name for route in ROUTES]


@dataclass
class World:
    app: FastAPI
    make: MakeCaller
    owner: Caller
    other: Caller
    admin: Caller
    anonymous: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.app)

    async def video(self, *, completed: bool = False, prompt: str = "a fox") -> str:
        """A new video of the owner's, queued or completed (archived)."""
        view, _ = await self.runtime.videos.create(self.owner.account, NewVideo(prompt=prompt))
        if completed:
            await archive(self.runtime, view.id, ASSETS)
        return view.id

    async def state(self, video_id: str) -> tuple[object, ...]:
        """Everything an intruder could change: the owner's view, the audit trail, remixes."""
        view = await self.owner.client.get(f"/api/videos/{video_id}")
        events = await self.owner.client.get(f"/api/videos/{video_id}/events")
        everyone = await self.admin.client.get("/api/videos", params={"limit": 100})
        remixes = [
            v["id"] for v in everyone.json()["data"] if v["remixed_from_video_id"] == video_id
        ]
        return view.status_code, view.json(), events.json(), remixes


def _hermetic_settings(data_dir: Path) -> Settings:
    """Settings on `data_dir` that read nothing from the developer's environment."""
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith(("REELFORGE_", "OPENAI_", "AWS_")) or name in (
                "DATABASE_URL",
                "REDIS_URL",
            ):
                env.delenv(name)
        # No quota: the module makes a few dozen videos for one owner. No worker, as with the
        # conftest `settings`: `archive` plays the engine, and queued videos stay queued.
        return Settings(
            _env_file=None, data_dir=data_dir, default_video_quota=None, embedded_worker=False
        )


@pytest.fixture(scope="module")
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return BACKEND


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    app = create_app(_hermetic_settings(tmp_path_factory.mktemp("ownership")))
    async with LifespanManager(app), AsyncExitStack() as stack:
        make = await callers(app, stack)
        anonymous = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        )
        yield World(
            app=app,
            make=make,
            owner=await make("owner@example.org"),
            other=await make("other@example.org"),
            admin=await make("admin@example.org", Role.ADMIN),
            anonymous=anonymous,
        )


async def _acts(world: World, caller: Caller, route: Route) -> None:
    """`caller` uses `route` on a fresh video of the owner's, and it does what it says."""
    video_id = await world.video(completed=route.completed)

    if route.name == "stream":
        response = await _first_of_stream(world, caller.client, route.path(video_id), video_id)
    else:
        response = await route.send(caller.client, video_id)

    body: Any = response.json() if route.suffix not in ("/download", "/stream") else None
    match route.name:
        case "get":
            assert response.status_code == 200, response.text
            assert body["data"]["id"] == video_id
        case "delete":
            assert response.status_code == 200, response.text
            assert body["data"] == {"id": video_id, "deleted": True}
            assert (await world.owner.client.get(route.path(video_id))).status_code == 404
        case "remix":
            assert response.status_code == 201, response.text
            assert body["data"]["remixed_from_video_id"] == video_id
        case "cancel":
            assert response.status_code == 200, response.text
            assert outcome(body["data"]) == ("failed", "cancelled")
            after = await world.owner.client.get(f"/api/videos/{video_id}")
            assert outcome(after.json()["data"]) == ("failed", "cancelled")
        case "events":
            assert response.status_code == 200, response.text
            assert [event["kind"] for event in body["data"]] == ["created"]
        case "stream":
            assert response.status_code == 200, response.text
            assert "event: video.update" in response.text
            assert f'"videoId":"{video_id}"' in response.text
        case _:
            assert response.status_code == 200, response.text
            assert response.content == ASSETS[route.params["variant"]]


async def _first_of_stream(
    world: World, client: httpx.AsyncClient, path: str, video_id: str
) -> httpx.Response:
    """A live stream's response once its first event is out: the in-process transport hands
    a response over only when it ends, so the stream is closed from the server's side."""
    live = world.app.state.live
    responses: list[httpx.Response] = []
    async with anyio.create_task_group() as tasks:

        async def get() -> None:
            responses.append(await client.get(path))

        tasks.start_soon(get)
        with anyio.fail_after(30):
            while not live.followers(video_id) and not responses:
                await anyio.sleep(0.01)
        await live.close()
    return responses[0]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_the_owner_can(world: World, route: Route) -> None:
    await _acts(world, world.owner, route)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_an_admin_can(world: World, route: Route) -> None:
    await _acts(world, world.admin, route)


def _without(video_id: str, text: str) -> str:
    return text.replace(video_id, "<id>")


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_another_user_gets_404_and_changes_nothing(world: World, route: Route) -> None:
    video_id = await world.video(completed=route.completed)
    before = await world.state(video_id)

    response = await route.send(world.other.client, video_id)

    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"
    # Indistinguishable from a video that doesn't exist: no hint that this id is taken.
    missing = await route.send(world.other.client, MISSING_ID)
    assert missing.status_code == 404
    assert _without(video_id, response.text) == _without(MISSING_ID, missing.text)
    assert await world.state(video_id) == before


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
async def test_an_anonymous_caller_gets_401_bearer_and_changes_nothing(
    world: World, route: Route
) -> None:
    video_id = await world.video(completed=route.completed)
    before = await world.state(video_id)

    response = await route.send(world.anonymous, video_id)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthorized"
    assert await world.state(video_id) == before


async def _listed(client: httpx.AsyncClient, prompt: str) -> list[str]:
    response = await client.get("/api/videos", params={"q": prompt})
    assert response.status_code == 200, response.text
    return [video["id"] for video in response.json()["data"]]


@pytest.mark.parametrize("who", ["owner", "admin"])
async def test_the_list_shows_the_video_to(world: World, who: str) -> None:
    video_id = await world.video(prompt=f"listed for {who}")

    caller: Caller = getattr(world, who)

    assert await _listed(caller.client, f"listed for {who}") == [video_id]


async def test_the_list_never_shows_it_to_another_user(world: World) -> None:
    video_id = await world.video(prompt="not for others")

    assert await _listed(world.other.client, "not for others") == []
    everything = await world.other.client.get("/api/videos", params={"limit": 100})
    assert video_id not in [video["id"] for video in everything.json()["data"]]
    # Nor can another user page from it: its id as a cursor is as unknown as a made-up one.
    theirs = await world.other.client.get("/api/videos", params={"cursor": video_id})
    missing = await world.other.client.get("/api/videos", params={"cursor": MISSING_ID})
    assert theirs.status_code == missing.status_code == 400
    assert _without(video_id, theirs.text) == _without(MISSING_ID, missing.text)


def _bearer(world: World, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {token}"},
    )


async def _refused(client: httpx.AsyncClient, video_id: str) -> None:
    response = await client.get(f"/api/videos/{video_id}")
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_key_gets_401(world: World) -> None:
    video_id = await world.video()
    made = await world.owner.client.post("/api/keys", json={"name": "short-lived"})
    assert made.status_code == 201, made.text
    key = made.json()["data"]
    async with _bearer(world, key["key"]) as client:
        assert (await client.get(f"/api/videos/{video_id}")).status_code == 200

        revoked = await world.owner.client.delete(f"/api/keys/{key['id']}")

        assert revoked.status_code == 200, revoked.text
        await _refused(client, video_id)
    assert (await world.owner.client.get(f"/api/videos/{video_id}")).status_code == 200


async def _token(world: World, email: str) -> str:
    response = await world.anonymous.post(
        "/api/auth/token", json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["data"]["access_token"]
    return token


async def _session(world: World, stack: AsyncExitStack, email: str) -> httpx.AsyncClient:
    """A browser-like client signed in with a session cookie (and the CSRF cookie beside it)."""
    client = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app), base_url=BASE_URL)
    )
    response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert {"reelforge_session", "reelforge_csrf"} <= set(client.cookies)
    return client


Credential = Callable[[World, AsyncExitStack, Caller], Awaitable[httpx.AsyncClient]]


async def _by_key(world: World, stack: AsyncExitStack, caller: Caller) -> httpx.AsyncClient:
    return caller.client


async def _by_jwt(world: World, stack: AsyncExitStack, caller: Caller) -> httpx.AsyncClient:
    token = await _token(world, caller.account.email)
    return await stack.enter_async_context(_bearer(world, token))


async def _by_session(world: World, stack: AsyncExitStack, caller: Caller) -> httpx.AsyncClient:
    return await _session(world, stack, caller.account.email)


CREDENTIALS = {"api key": _by_key, "jwt": _by_jwt, "session cookie": _by_session}


@pytest.mark.parametrize(("kind", "credential"), CREDENTIALS.items(), ids=CREDENTIALS.keys())
async def test_a_disabled_user_gets_401(world: World, kind: str, credential: Credential) -> None:
    user = await world.make(f"disabled-{kind.replace(' ', '-')}@example.org")
    view, _ = await world.runtime.videos.create(user.account, NewVideo(prompt="mine"))
    async with AsyncExitStack() as stack:
        client = await credential(world, stack, user)
        assert (await client.get(f"/api/videos/{view.id}")).status_code == 200

        await world.runtime.accounts.set_disabled(user.account.email, True)

        await _refused(client, view.id)


async def test_a_jwt_from_auth_token_works_as_bearer(world: World) -> None:
    video_id = await world.video()
    async with _bearer(world, await _token(world, "owner@example.org")) as client:
        read = await client.get(f"/api/videos/{video_id}")
        # Bearer credentials are not ambient, so unsafe methods need no CSRF token.
        cancelled = await client.post(f"/api/videos/{video_id}/cancel")

    assert read.status_code == 200, read.text
    assert read.json()["data"]["id"] == video_id
    assert cancelled.status_code == 200, cancelled.text
    assert outcome(cancelled.json()["data"]) == ("failed", "cancelled")


@pytest.fixture(scope="module")
async def owner_session(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with AsyncExitStack() as stack:
        yield await _session(world, stack, "owner@example.org")


async def test_a_session_cookie_reads_without_a_csrf_header(
    world: World, owner_session: httpx.AsyncClient
) -> None:
    video_id = await world.video()

    response = await owner_session.get(f"/api/videos/{video_id}")

    assert response.status_code == 200, response.text
    assert response.json()["data"]["id"] == video_id


UNSAFE = [route for route in ROUTES if route.name in ("cancel", "delete")]
BAD_CSRF = {"no x-csrf-token header": None, "a wrong x-csrf-token": "not-the-cookie"}


@pytest.mark.parametrize("header", BAD_CSRF.values(), ids=BAD_CSRF.keys())
@pytest.mark.parametrize("route", UNSAFE, ids=[route.name for route in UNSAFE])
async def test_a_session_unsafe_request_without_the_csrf_cookie_value_gets_403(
    world: World, owner_session: httpx.AsyncClient, route: Route, header: str | None
) -> None:
    video_id = await world.video()
    before = await world.state(video_id)
    headers = {} if header is None else {"x-csrf-token": header}

    response = await route.send(owner_session, video_id, headers=headers)

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "csrf_failed"
    assert await world.state(video_id) == before


@pytest.mark.parametrize("route", UNSAFE, ids=[route.name for route in UNSAFE])
async def test_a_session_unsafe_request_echoing_the_csrf_cookie_succeeds(
    world: World, owner_session: httpx.AsyncClient, route: Route
) -> None:
    video_id = await world.video()
    csrf = owner_session.cookies["reelforge_csrf"]

    response = await route.send(owner_session, video_id, headers={"x-csrf-token": csrf})

    assert response.status_code == 200, response.text
    after = await world.owner.client.get(f"/api/videos/{video_id}")
    if route.name == "delete":
        assert after.status_code == 404
    else:
        assert outcome(after.json()["data"]) == ("failed", "cancelled")


async def test_the_stream_of_all_videos_needs_a_credential(world: World) -> None:
    response = await world.anonymous.get("/api/stream")

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
