"""The guide's socket.io protocol against a live `reelforge serve`, through the real
`socket.io-client` npm package in Node: subscribe, updates up to completed, unsubscribe,
ownership, credentials and the per-user connection cap.

"Nothing arrives" is shown without waiting for time to pass: one client's messages arrive in
the order the server sent them, so once a later reply (the state of another video subscribed
after) has arrived, anything sent before it has too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from tests.support.accounts import PASSWORD
from tests.support.serving import CONNECTIONS_PER_USER, Served, User
from tests.support.sockets import Message, Sockets, node_sockets

pytestmark = pytest.mark.anyio

MISSING_ID = "video_0000000000000000000000000000000000000000000000000"


@pytest.fixture
async def sockets() -> AsyncIterator[Sockets]:
    async with node_sockets() as clients:
        yield clients


async def _connect(sockets: Sockets, served: Served, name: str, user: User) -> None:
    connected = await sockets.connect(name, served.url, auth={"token": user.key})
    assert connected["event"] == "connect", connected


def _is(video_id: str, **fields: Any) -> Any:
    return lambda data: (
        data["videoId"] == video_id and all(data.get(k) == v for k, v in fields.items())
    )


async def _round_trip(sockets: Sockets, name: str, served: Served, user: User) -> None:
    """Subscribe `name` to a fresh video of `user`'s and wait for its state: everything the
    server sent `name` before has arrived by then."""
    marker = await served.create(user, "a marker")
    await sockets.subscribe(name, marker)
    await sockets.update_where(name, _is(marker))


async def test_a_subscriber_gets_the_state_at_once_then_every_change_up_to_completed(
    served: Served, sockets: Sockets, ada: User
) -> None:
    video_id = await served.create(ada, "a fox [[latency=2]]")
    await _connect(sockets, served, "ada", ada)

    await sockets.subscribe("ada", video_id)
    completed = await sockets.update_where("ada", _is(video_id, status="completed"))

    updates = sockets.updates("ada", video_id)
    assert updates[0]["status"] in ("queued", "in_progress")
    progress = [update["progress"] for update in updates]
    assert progress == sorted(progress), "a subscriber went back in time"
    # The first state and completed at least; progress on the way depends on when the engine
    # happens to poll, which a loaded machine moves past the end.
    assert len(updates) >= 2, updates
    # The payload is the video exactly as the API returns it, plus the guide's videoId.
    assert completed == {"videoId": video_id, **await served.video(ada, video_id)}
    assert set(completed["downloads"]) == {"video", "thumbnail", "spritesheet"}


async def test_unsubscribe_stops_the_updates(served: Served, sockets: Sockets, ada: User) -> None:
    video_id = await served.create(ada, "a slow fox [[latency=6]]")
    await _connect(sockets, served, "leaving", ada)
    await _connect(sockets, served, "staying", ada)
    for name in ("leaving", "staying"):
        await sockets.subscribe(name, video_id)
        await sockets.update_where(name, _is(video_id))

    await sockets.unsubscribe("leaving", video_id)
    await _round_trip(sockets, "leaving", served, ada)  # the unsubscribe has been handled
    before = len(sockets.updates("leaving", video_id))
    await sockets.update_where("staying", _is(video_id, status="completed"))
    await _round_trip(sockets, "leaving", served, ada)

    assert len(sockets.updates("staying", video_id)) > before
    assert len(sockets.updates("leaving", video_id)) == before


async def test_another_users_video_yields_nothing(
    served: Served, sockets: Sockets, ada: User, bob: User
) -> None:
    video_id = await served.create(ada, "ada's fox [[latency=2]]")
    await _connect(sockets, served, "ada", ada)
    await _connect(sockets, served, "bob", bob)
    await sockets.subscribe("ada", video_id)

    await sockets.subscribe("bob", video_id)
    await sockets.subscribe("bob", MISSING_ID)
    await sockets.update_where("ada", _is(video_id, status="completed"))
    await _round_trip(sockets, "bob", served, bob)

    # Bob got only his own marker: not a state, not an error, not even a hint the id exists.
    received = [m for m in sockets.received["bob"] if m["event"] != "connect"]
    assert [m["event"] for m in received] == ["video:update"]
    assert received[0]["data"]["videoId"] != video_id


async def test_an_admin_may_follow_anyones_video(
    served: Served, sockets: Sockets, ada: User, root: User
) -> None:
    video_id = await served.create(ada, "watched by an admin")
    await _connect(sockets, served, "root", root)

    await sockets.subscribe("root", video_id)

    assert await sockets.update_where("root", _is(video_id, status="completed"))


async def _session_cookie(served: Served, user: User) -> str:
    async with httpx.AsyncClient(base_url=served.url) as client:
        response = await client.post(
            "/api/auth/login", json={"email": user.account.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return f"reelforge_session={client.cookies['reelforge_session']}"


CREDENTIALS = ["api key as auth.token", "jwt as auth.token", "bearer header", "session cookie"]


@pytest.mark.parametrize("how", CREDENTIALS)
async def test_every_credential_connects(
    served: Served, sockets: Sockets, ada: User, how: str
) -> None:
    video_id = await served.create(ada, "mine")
    options: dict[str, Any] = {}
    match how:
        case "api key as auth.token":
            options["auth"] = {"token": ada.key}
        case "jwt as auth.token":
            options["auth"] = {"token": await served.jwt(ada)}
        case "bearer header":
            options["extraHeaders"] = ada.headers
        case _:
            options["extraHeaders"] = {"Cookie": await _session_cookie(served, ada)}

    connected = await sockets.connect("ada", served.url, **options)
    await sockets.subscribe("ada", video_id)

    assert connected["event"] == "connect", connected
    assert await sockets.update_where("ada", _is(video_id))


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({}, "unauthorized: send an API key or token"),
        ({"auth": {"token": "rf_0123456789abcdefnotakey"}}, "invalid, expired or revoked"),
        ({"auth": {"token": "not.a.jwt"}}, "invalid, expired or revoked"),
        ({"extraHeaders": {"Cookie": "reelforge_session=forged"}}, "invalid, expired or revoked"),
    ],
    ids=["nothing", "unknown key", "bad jwt", "forged session"],
)
async def test_a_connection_without_a_valid_credential_is_refused(
    served: Served, sockets: Sockets, options: dict[str, Any], says: str
) -> None:
    refused = await sockets.connect("stranger", served.url, **options)

    assert refused["event"] == "connect_error"
    assert says in refused["data"]


async def test_a_user_holds_at_most_the_cap_of_connections(
    served: Served, sockets: Sockets, ada: User, bob: User
) -> None:
    for n in range(CONNECTIONS_PER_USER):
        await _connect(sockets, served, f"ada-{n}", ada)

    refused = await sockets.connect("one too many", served.url, auth={"token": ada.key})
    await _connect(sockets, served, "bob", bob)  # the cap is per user

    assert refused["event"] == "connect_error"
    assert f"at most {CONNECTIONS_PER_USER} live-update connections" in refused["data"]
    await sockets.close("ada-0")
    await _eventually_connects(sockets, served, ada)


async def _eventually_connects(sockets: Sockets, served: Served, user: User) -> None:
    """The server frees a closed connection's place when it notices the close."""
    for attempt in range(200):
        answer: Message = await sockets.connect(
            f"again-{attempt}", served.url, auth={"token": user.key}
        )
        if answer["event"] == "connect":
            return
    raise AssertionError("a closed connection's place was never freed")


async def test_revoking_a_key_closes_the_sockets_and_streams_it_opened(
    served: Served, sockets: Sockets, ada: User
) -> None:
    async with served.client(ada) as client:
        made = (await client.post("/api/keys", json={"name": "to revoke"})).json()["data"]
        connected = await sockets.connect("doomed", served.url, auth={"token": made["key"]})
        assert connected["event"] == "connect", connected
        await _connect(sockets, served, "kept", ada)
        headers = {"Authorization": f"Bearer {made['key']}"}
        async with client.stream("GET", "/api/stream", headers=headers) as stream:
            assert stream.status_code == 200
            revoked = await client.delete(f"/api/keys/{made['id']}")
            assert revoked.status_code == 200, revoked.text

            await sockets.next("doomed", lambda m: m["event"] == "disconnect")
            with anyio.fail_after(60):  # a guard against a hang
                async for _ in stream.aiter_raw():
                    pass  # heartbeats until the server ends the stream
    # The same user's other key is untouched.
    assert not [m for m in sockets.received["kept"] if m["event"] == "disconnect"]
