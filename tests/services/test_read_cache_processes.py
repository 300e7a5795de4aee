"""The read cache across processes: two `reelforge serve` on one PostgreSQL and one Redis. A
change made through one (a revoked key, a disabled user, a changed role, a cancelled or deleted
video) is refused or seen by the other on its very next request, and while Redis is down the
other reads the database rather than trust what it holds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from reelforge.bus import RedisBus
from reelforge.db import migrate
from reelforge.domain.accounts import Role
from reelforge.services.accounts import Accounts
from tests.support.accounts import FAST_HASHER
from tests.support.redis_server import redis_server
from tests.support.serving import Served, User, serve_environment, serving

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


@asynccontextmanager
async def two_servers(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Served, Served, str]]:
    """Two servers sharing the database and the bus (no worker: videos stay where they are
    put); also the bus's channel prefix, for the test's own publisher."""
    await migrate.upgrade(postgres_url)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    shared = {
        "database_url": postgres_url,
        "storage_url": (tmp_path / "objects").as_uri(),
        "redis_url": redis_url,
        "redis_key_prefix": prefix,
        "embedded_worker": "false",
        "worker_silence_seconds": "",
        # One secret, as scaled-out servers share it: a token one issues, the other accepts.
        "secret_key": uuid.uuid4().hex * 2,
    }
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(
            serving(serve_environment(tmp_path / "one-data", **shared), tmp_path / "one")
        )
        other = await stack.enter_async_context(
            serving(serve_environment(tmp_path / "other-data", **shared), tmp_path / "other")
        )
        yield one, other, prefix


async def _status(server: Served, path: str, headers: dict[str, str]) -> int:
    async with server.client() as client:
        return (await client.get(path, headers=headers)).status_code


async def _warm(server: Served, path: str, headers: dict[str, str]) -> None:
    """Twice: the first read fills the cache, the second is answered from it."""
    for _ in range(2):
        assert await _status(server, path, headers) == 200


async def test_a_revoked_key_is_refused_by_the_other_process_at_once(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with two_servers(postgres_url, redis_url, tmp_path) as (one, other, _):
        ada = await one.user("ada@example.org")
        video_id = await one.create(ada)
        path = f"/api/videos/{video_id}"
        await _warm(other, path, ada.headers)
        async with one.client(ada) as client:
            keys = (await client.get("/api/keys")).json()["data"]
            assert (await client.delete(f"/api/keys/{keys[0]['id']}")).status_code == 200
        assert await _status(other, path, ada.headers) == 401


async def test_a_disabled_user_is_refused_by_the_other_process_at_once(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with two_servers(postgres_url, redis_url, tmp_path) as (one, other, _):
        admin = await one.user("root@example.org", Role.ADMIN)
        ada = await one.user("ada@example.org")
        video_id = await one.create(ada)
        path = f"/api/videos/{video_id}"
        token = {"Authorization": f"Bearer {await one.jwt(ada)}"}
        await _warm(other, path, ada.headers)
        await _warm(other, path, token)
        async with one.client(admin) as client:
            answer = await client.patch(
                f"/api/admin/users/{ada.account.id}", json={"disabled": True}
            )
            assert answer.status_code == 200, answer.text
        assert await _status(other, path, ada.headers) == 401
        assert await _status(other, path, token) == 401
        async with one.client(admin) as client:
            answer = await client.patch(
                f"/api/admin/users/{ada.account.id}", json={"disabled": False}
            )
            assert answer.status_code == 200, answer.text
        assert await _status(other, path, ada.headers) == 200


async def test_a_changed_role_is_seen_by_every_process_at_once(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with two_servers(postgres_url, redis_url, tmp_path) as (one, other, prefix):
        ada, bob = await one.user("ada@example.org"), await one.user("bob@example.org")
        path = f"/api/videos/{await one.create(ada)}"
        # Bob's account (a user's) is held by both servers now.
        for server in (one, other):
            await _warm(server, "/api/me", bob.headers)
            assert await _status(server, path, bob.headers) == 404
        # As `reelforge` commands do it: a process of its own, publishing on the same bus.
        redis = Redis.from_url(redis_url)
        try:
            bus = RedisBus(redis, f"{prefix}:bus")
            accounts = Accounts(one.database, FAST_HASHER, bus=bus)
            await accounts.set_role(bob.account.email, Role.ADMIN)
            for server in (one, other):
                assert await _status(server, path, bob.headers) == 200
            await accounts.set_role(bob.account.email, Role.USER)
            for server in (one, other):
                assert await _status(server, path, bob.headers) == 404
        finally:
            await redis.aclose()


async def test_a_changed_video_is_seen_by_the_other_process_at_once(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with two_servers(postgres_url, redis_url, tmp_path) as (one, other, _):
        ada, bob = await one.user("ada@example.org"), await one.user("bob@example.org")
        video_id = await one.create(ada)
        path = f"/api/videos/{video_id}"
        assert (await other.video(ada, video_id))["status"] == "queued"
        assert (await other.video(ada, video_id))["status"] == "queued"
        # Held by the other server now, and still nobody else's.
        assert await _status(other, path, bob.headers) == 404
        async with one.client(ada) as client:
            assert (await client.post(f"{path}/cancel")).status_code == 200
        assert (await other.video(ada, video_id))["status"] == "failed"
        async with one.client(ada) as client:
            assert (await client.delete(path)).status_code == 200
        assert await _status(other, path, ada.headers) == 404


async def test_while_redis_is_down_the_database_answers_and_no_grant_outlives_it(
    postgres_url: str, tmp_path: Path
) -> None:
    # A redis-server of the test's own: the shared one is never stopped.
    with redis_server(tmp_path) as redis:
        async with two_servers(postgres_url, redis.url, tmp_path) as (one, other, _):
            ada = await one.user("ada@example.org")
            path = f"/api/videos/{await one.create(ada)}"
            second = await _second_key(one, ada)
            await _warm(other, path, ada.headers)
            await _warm(other, path, second.headers)
            redis.kill()
            # The revoke's notice can't be published; the other server, unable to count
            # notices, asks the database and refuses the key all the same.
            await _revoke_current(one, ada)
            assert await _status(other, path, ada.headers) == 401
            assert await _status(other, path, second.headers) == 200
            redis.start()
            # Back on the bus: the other server starts over from the database, and a revoke
            # made now reaches it as a notice again.
            assert await _status(other, path, second.headers) == 200
            await _revoke_current(one, second)
            assert await _status(other, path, second.headers) == 401


async def _second_key(server: Served, user: User) -> User:
    async with server.client(user) as client:
        made = await client.post("/api/keys", json={"name": "second"})
    assert made.status_code == 201, made.text
    return User(user.account, made.json()["data"]["key"])


async def _revoke_current(server: Served, user: User) -> None:
    """Revoke the key `user` calls with, as the user does (by its id, found by its prefix)."""
    async with server.client(user) as client:
        keys = (await client.get("/api/keys")).json()["data"]
        mine = next(key for key in keys if user.key.startswith(key["prefix"]))
        assert (await client.delete(f"/api/keys/{mine['id']}")).status_code == 200
