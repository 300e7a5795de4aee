"""A provider's webhook that lands while a step holds its video still makes the video due now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI

from reelforge.bus import LocalBus
from reelforge.db.engine import Database
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.upstream import UpstreamVideo
from reelforge.emulator.app import create_emulator_app
from reelforge.emulator.settings import EmulatorSettings
from reelforge.emulator.webhooks import WebhookSender
from reelforge.providers.base import Provider
from reelforge.providers.registry import emulator_provider
from reelforge.services.inbound import InboundWebhooks
from reelforge.services.jobs import Jobs
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import open_storage
from reelforge.worker.engine import Engine, EngineConfig
from reelforge.worker.runner import woken_by
from reelforge.worker.steps import WEBHOOK_SAFETY_POLL
from tests.support.engine import steps_for, tiny_renderer, video_row
from tests.support.webhooks import SECRET

pytestmark = pytest.mark.anyio


class HeldAfterRetrieve:
    """The emulator's provider, whose retrieve answers and then waits to be let go: the step
    holds its lease with upstream's answer in hand, as when a webhook races a poll."""

    def __init__(self, inner: Provider) -> None:
        self._inner = inner
        self.answered = anyio.Event()
        self.go_on = anyio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def retrieve(self, video_id: str) -> UpstreamVideo:
        answer = await self._inner.retrieve(video_id)
        self.answered.set()
        await self.go_on.wait()
        return answer


@pytest.fixture
async def slow_upstream() -> AsyncIterator[FastAPI]:
    # Still in progress at every poll of the test: only the webhook can bring the check forward.
    settings = EmulatorSettings(poll_after_ms=0, latency_seconds=600)
    app = create_emulator_app(settings, renderer=tiny_renderer)
    yield app
    app.state.emulator.close()


def _signed(event_type: str, upstream_id: str) -> tuple[bytes, dict[str, str]]:
    """A delivery exactly as the emulator's sender builds and signs it."""
    sender = WebhookSender(
        EmulatorSettings(  # type: ignore[call-arg]
            _env_file=None, webhook_url="http://127.0.0.1:9/hook", webhook_secret=SECRET
        )
    )
    delivery = sender.prepare(event_type, upstream_id, int(utcnow().timestamp()), drop=False)
    return delivery.body.encode(), sender.headers(delivery)


@pytest.fixture
async def submitted(
    videos: Videos, ada: Account, database: Database, slow_upstream: FastAPI
) -> AsyncIterator[tuple[Engine, HeldAfterRetrieve, InboundWebhooks, str, str]]:
    """A video submitted upstream under webhooks (its next poll a safety poll away), then
    nudged by a first webhook: the next claim takes it and its retrieve holds on."""
    inner = emulator_provider(slow_upstream, timeout=10.0)
    provider = HeldAfterRetrieve(inner)
    steps = steps_for(database, open_storage("memory://"), provider, webhooks=True)  # type: ignore[arg-type]
    # An idle wait far longer than the test may take: only a wake-up can start a claim in time.
    config = EngineConfig(idle_seconds=3600)
    engine = Engine(Jobs(database), steps, config=config, provider_name="emulator")
    bus = LocalBus()
    bus.observe(woken_by(engine))
    inbound = InboundWebhooks(database, bus, provider="emulator", secret=SECRET)
    view, _ = await videos.create(ada, NewVideo(prompt="a harbour at dawn", size="1280x720"))
    try:
        assert await engine.run_once() == 1
        video = await video_row(database, view.id)
        assert video.next_check_at is not None
        assert video.next_check_at > utcnow() + WEBHOOK_SAFETY_POLL / 2
        assert video.provider_video_id is not None
        first = await inbound.receive(
            "emulator", *_signed("video.in_progress", video.provider_video_id)
        )
        assert first.nudged_video_id == view.id
        yield engine, provider, inbound, view.id, video.provider_video_id
    finally:
        provider.go_on.set()
        await inner.aclose()


async def test_a_webhook_during_a_poll_is_not_undone_by_the_polls_next_check(
    database: Database, submitted: tuple[Engine, HeldAfterRetrieve, InboundWebhooks, str, str]
) -> None:
    engine, provider, inbound, video_id, upstream_id = submitted
    async with anyio.create_task_group() as group:
        group.start_soon(engine.run_once)
        await provider.answered.wait()  # the poll holds the lease, upstream's answer in hand
        nudged_at = utcnow()
        second = await inbound.receive("emulator", *_signed("video.completed", upstream_id))
        assert second.nudged_video_id == video_id
        provider.go_on.set()

    polled = await video_row(database, video_id)
    assert (polled.polls, polled.lease_owner) == (1, None)
    # Due when the webhook came, not a safety poll after the step.
    assert polled.next_check_at is not None
    assert nudged_at <= polled.next_check_at <= utcnow()
    assert await engine.run_once() == 1
    assert (await video_row(database, video_id)).polls == 2


async def test_the_engine_looks_again_when_a_nudged_step_ends(
    database: Database, submitted: tuple[Engine, HeldAfterRetrieve, InboundWebhooks, str, str]
) -> None:
    engine, provider, inbound, video_id, upstream_id = submitted
    stopping = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(engine.run, stopping)
        await provider.answered.wait()
        # Its wake-up finds the video still leased; the loop then idles for an hour.
        await inbound.receive("emulator", *_signed("video.completed", upstream_id))
        provider.go_on.set()
        with anyio.fail_after(30):
            while (await video_row(database, video_id)).polls < 2:
                await anyio.sleep(0.05)
        stopping.set()
