"""Each vendor's own rate limit and its 429 pauses, per provider, shared through Redis: driven
by the fal and Veo adapters against fakes of their wire protocols on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, timedelta

import pytest
from redis.asyncio import Redis

from reelforge.bus import LocalBus
from reelforge.db.engine import Database
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.routing import Routes
from reelforge.domain.upstream import CreateRequest, ProviderRateLimited
from reelforge.emulator.server import free_port, running
from reelforge.providers.fal import FalProvider
from reelforge.providers.veo import VeoProvider
from reelforge.services.jobs import Jobs
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.upstream_limits import (
    LimitedProvider,
    Pauses,
    UpstreamLimits,
    rate_limit_for,
)
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import open_storage
from reelforge.worker.engine import Engine, EngineConfig
from reelforge.worker.steps import Steps
from tests.providers.fakes import fal as fal_fake
from tests.providers.fakes import veo as veo_fake
from tests.support.engine import video_row

pytestmark = pytest.mark.anyio

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
KLING_REQUEST = CreateRequest(prompt="a kite", model=KLING, size="1280x720", seconds="5")


@pytest.fixture
def fal() -> Iterator[tuple[fal_fake.FalFake, str]]:
    fake = fal_fake.FalFake()
    with running(fake.app()) as server:
        fake.root = server.root
        yield fake, server.root


@pytest.fixture
def veo() -> Iterator[tuple[veo_fake.VeoFake, str]]:
    fake = veo_fake.VeoFake()
    with running(fake.app()) as server:
        yield fake, server.root


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["in-process", "redis"])
def shared(request: pytest.FixtureRequest) -> Redis | None:
    """The storage two workers share: none (one process) or Redis (several)."""
    if request.param == "in-process":
        return None
    redis: Redis = request.getfixturevalue("redis")
    return redis


def _limits(
    make_settings: object, redis: Redis | None, prefix: str, **limits: str
) -> UpstreamLimits:
    settings = make_settings(redis_key_prefix=prefix, **limits)  # type: ignore[operator]
    return UpstreamLimits.from_settings(settings, redis, ["fal", "veo"])


def test_each_vendor_has_its_own_limit_else_the_shared_one(make_settings: object) -> None:
    settings = make_settings(provider_rate_limit="9/minute", fal_rate_limit="2/second")  # type: ignore[operator]
    assert rate_limit_for(settings, "fal") == "2/second"
    assert rate_limit_for(settings, "veo") == "9/minute"
    assert rate_limit_for(settings, "emulator") == "9/minute"


async def test_a_vendors_429_pauses_its_provider_for_every_worker(
    make_settings: object, shared: Redis | None, fal: tuple[fal_fake.FalFake, str]
) -> None:
    fake, root = fal
    prefix = f"test-{uuid.uuid4().hex}"
    first = _limits(make_settings, shared, prefix)
    # Another worker: its own process state, the same Redis (or, in-process, the same limits).
    second = _limits(make_settings, shared, prefix) if shared is not None else first
    fake.refuse_submits.append((429, {"detail": "Too many requests"}, {"retry-after": "120"}))
    inner = FalProvider(api_key=fal_fake.API_KEY, base_url=root)
    try:
        with pytest.raises(ProviderRateLimited) as refused:
            await LimitedProvider(inner, first).create(KLING_REQUEST)
        assert refused.value.retry_after == 120

        # Neither worker calls fal again while the hint runs, and says how long is left.
        for limits in (first, second):
            with pytest.raises(ProviderRateLimited) as held:
                await limits.admit("fal")
            assert held.value.retry_after is not None
            assert 60 < held.value.retry_after <= 120
            with pytest.raises(ProviderRateLimited):
                await LimitedProvider(inner, limits).create(KLING_REQUEST)
        assert fake.submissions == []
        assert len(fake.refuse_submits) == 0  # only the first call reached fal
        await second.admit("veo")  # another vendor is not paused
    finally:
        await inner.aclose()


async def test_a_shorter_hint_does_not_cut_a_longer_pause(
    make_settings: object, shared: Redis | None
) -> None:
    limits = _limits(make_settings, shared, f"test-{uuid.uuid4().hex}")
    await limits.observe("veo", ProviderRateLimited("slow down", retry_after=300))
    await limits.observe("veo", ProviderRateLimited("slow down", retry_after=1))
    assert await limits.pauses.remaining("veo") > 200


async def test_an_exhausted_quota_is_no_pause(make_settings: object) -> None:
    limits = _limits(make_settings, None, "test")
    await limits.observe("veo", ProviderRateLimited("quota", code="insufficient_quota"))
    assert await limits.pauses.remaining("veo") == 0


async def test_googles_retry_delay_pauses_veo(
    make_settings: object, shared: Redis | None, veo: tuple[veo_fake.VeoFake, str]
) -> None:
    fake, root = veo
    limits = _limits(make_settings, shared, f"test-{uuid.uuid4().hex}")
    fake.refuse_next = veo_fake.rate_limited(45)
    provider = LimitedProvider(VeoProvider(api_key=veo_fake.API_KEY, base_url=root), limits)
    try:
        with pytest.raises(ProviderRateLimited):
            await provider.create(
                CreateRequest(prompt="a pier", model="veo-3.1", size="1280x720", seconds="4")
            )
        assert 30 < await limits.pauses.remaining("veo") <= 45
        assert await limits.pauses.remaining("fal") == 0
    finally:
        await provider.aclose()


async def test_each_provider_counts_against_its_own_limit_across_workers(
    make_settings: object, shared: Redis | None
) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    first = _limits(make_settings, shared, prefix, fal_rate_limit="2/minute")
    second = _limits(make_settings, shared, prefix, fal_rate_limit="2/minute")
    await first.admit("fal")
    await (second if shared is not None else first).admit("fal")
    with pytest.raises(ProviderRateLimited) as over:
        await (second if shared is not None else first).admit("fal")
    assert over.value.retry_after is not None
    assert over.value.retry_after > 0
    if shared is not None:
        with pytest.raises(ProviderRateLimited):
            await first.admit("fal")  # the count is shared
    for _ in range(5):
        await first.admit("veo")  # Veo has the default 300/minute


async def test_a_step_held_back_by_the_limit_costs_the_video_nothing(
    make_settings: object,
    database: Database,
    ada: Account,
    fal: tuple[fal_fake.FalFake, str],
) -> None:
    fake, root = fal
    limits = _limits(make_settings, None, "test", fal_rate_limit="1/hour")
    lifecycle, storage = Lifecycle(database, LocalBus()), open_storage("memory://")
    videos = Videos(database, storage, Routes.of(["fal"]), lifecycle, max_prompt_length=1000)
    first, _ = await videos.create(ada, NewVideo(prompt="one", model=KLING, seconds="5"))
    second, _ = await videos.create(ada, NewVideo(prompt="two", model=KLING, seconds="5"))
    provider = FalProvider(api_key=fal_fake.API_KEY, base_url=root)
    steps = Steps(
        lifecycle,
        Jobs(database),
        storage,
        {"fal": LimitedProvider(provider, limits)},
        deadline=timedelta(minutes=5),
        limits=limits,
    )
    engine = Engine(Jobs(database), steps, config=EngineConfig(concurrency=2))
    try:
        assert await engine.run_once() == 2
    finally:
        await provider.aclose()

    rows = [await video_row(database, first.id), await video_row(database, second.id)]
    submitted = [row for row in rows if row.provider_video_id is not None]
    waiting = [row for row in rows if row.provider_video_id is None]
    assert len(submitted) == 1
    assert len(fake.submissions) == 1
    [held] = waiting
    assert (held.job_state, held.attempts) == ("accepted", 0)
    # Due again when the limit has room: in about an hour, not at once.
    assert held.next_check_at is not None
    assert held.next_check_at.replace(tzinfo=UTC) > utcnow() + timedelta(minutes=30)


async def test_pauses_outlive_redis_going_away() -> None:
    """A Redis that refuses connections: the pause still holds in the process that heard it."""
    port = free_port()
    unreachable = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        pauses = Pauses(unreachable, "test")
        await pauses.pause("fal", 60)
        assert 30 < await pauses.remaining("fal") <= 60
        assert await pauses.remaining("veo") == 0
    finally:
        await unreachable.aclose()
