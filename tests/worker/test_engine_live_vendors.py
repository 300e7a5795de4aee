"""The job engine with fal and Veo configured at once, against fakes of their wire protocols:
routing by model, one upstream job per request, previews made locally, failures refunded,
expired outputs, cancels reaching fal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import anyio
import pytest
from sqlalchemy import update

from reelforge.bus import LocalBus
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.routing import Routes
from reelforge.emulator.server import running
from reelforge.providers.base import Provider
from reelforge.providers.fal import FalProvider
from reelforge.providers.veo import VeoProvider
from reelforge.services.jobs import Jobs
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.videos import NewVideo, Videos
from reelforge.storage import Storage
from reelforge.worker.engine import Engine, EngineConfig
from tests.providers.fakes import fal as fal_fake
from tests.providers.fakes import veo as veo_fake
from tests.providers.fakes.media import tiny_mp4
from tests.support.engine import ledger_of, run_until_settled, steps_for, video_row

pytestmark = pytest.mark.anyio

KLING = "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"


@dataclass
class Vendors:
    fal: fal_fake.FalFake
    veo: veo_fake.VeoFake
    providers: dict[str, Provider]


@pytest.fixture
def fakes() -> Iterator[tuple[fal_fake.FalFake, str, veo_fake.VeoFake, str]]:
    fal, veo = fal_fake.FalFake(), veo_fake.VeoFake()
    with running(fal.app()) as fal_server, running(veo.app()) as veo_server:
        fal.root = fal_server.root
        yield fal, fal_server.root, veo, veo_server.root


@pytest.fixture
async def vendors(
    fakes: tuple[fal_fake.FalFake, str, veo_fake.VeoFake, str],
) -> AsyncIterator[Vendors]:
    fal, fal_root, veo, veo_root = fakes
    providers: dict[str, Provider] = {
        "fal": FalProvider(api_key=fal_fake.API_KEY, base_url=fal_root),
        "veo": VeoProvider(api_key=veo_fake.API_KEY, base_url=veo_root),
    }
    yield Vendors(fal, veo, providers)
    for provider in providers.values():
        await provider.aclose()


@pytest.fixture
def routed(database: Database, storage: Storage) -> Videos:
    lifecycle = Lifecycle(database, LocalBus())
    return Videos(database, storage, Routes.of(["fal", "veo"]), lifecycle, max_prompt_length=1000)


def _engine(database: Database, storage: Storage, vendors: Vendors) -> Engine:
    steps = steps_for(database, storage, vendors.providers)
    config = EngineConfig(concurrency=4, lease=timedelta(seconds=30), idle_seconds=0.05)
    return Engine(Jobs(database), steps, config=config, provider_name="fal")


async def test_each_video_goes_to_its_models_vendor_once(
    routed: Videos, ada: Account, database: Database, storage: Storage, vendors: Vendors
) -> None:
    # fal refuses the first submit (rate limited, retry at once): still one job per video.
    vendors.fal.refuse_submits.append((429, {"detail": "Too many requests"}, {"retry-after": "0"}))
    kling, _ = await routed.create(ada, NewVideo(prompt="a kite", model=KLING, seconds="5"))
    veo, _ = await routed.create(ada, NewVideo(prompt="a pier", model="veo-3.1", seconds="4"))
    assert (kling.provider, veo.provider) == ("fal", "veo")

    await run_until_settled([_engine(database, storage, vendors)], database)

    kling_row = await video_row(database, kling.id)
    veo_row = await video_row(database, veo.id)
    assert kling_row.job_state == "completed", kling_row.last_error
    assert veo_row.job_state == "completed", veo_row.last_error
    assert len(vendors.fal.submissions) == 1
    assert len(vendors.veo.operations) == 1
    assert kling_row.provider_video_id is not None
    assert vendors.fal.submissions[0] in kling_row.provider_video_id
    assert veo_row.provider_video_id is not None
    assert next(iter(vendors.veo.operations)) in veo_row.provider_video_id
    for row in (kling_row, veo_row):
        assert row.video_key is not None
        assert await storage.read(row.video_key) == tiny_mp4()
        assert row.thumbnail_key is not None  # made here with PyAV: neither vendor has one
        assert row.spritesheet_key is not None
    assert await ledger_of(database, kling.id) == [
        ("reserve", Decimal("0.35")),
        ("settle", Decimal("0")),
    ]


async def test_a_vendor_failure_fails_and_refunds_the_video(
    routed: Videos, ada: Account, database: Database, storage: Storage, vendors: Vendors
) -> None:
    vendors.fal.fail_next = ("content_policy_violation", "The prompt was flagged")
    view, _ = await routed.create(ada, NewVideo(prompt="a storm", model=KLING, seconds="5"))

    await run_until_settled([_engine(database, storage, vendors)], database)

    row = await video_row(database, view.id)
    assert (row.job_state, row.error_code) == ("failed", "content_policy_violation")
    assert [kind for kind, _ in await ledger_of(database, view.id)] == ["reserve", "refund"]


async def test_an_output_gone_before_archiving_expires_the_video(
    routed: Videos, ada: Account, database: Database, storage: Storage, vendors: Vendors
) -> None:
    vendors.fal.expire_next = True
    view, _ = await routed.create(ada, NewVideo(prompt="a mirage", model=KLING, seconds="5"))

    await run_until_settled([_engine(database, storage, vendors)], database)

    row = await video_row(database, view.id)
    assert row.job_state == "expired"
    assert row.video_key is None


async def test_a_cancel_reaches_fals_queue(
    routed: Videos, ada: Account, database: Database, storage: Storage, vendors: Vendors
) -> None:
    vendors.fal.steps_next = ["IN_QUEUE"]  # stays queued until cancelled
    view, _ = await routed.create(ada, NewVideo(prompt="a long wait", model=KLING, seconds="5"))
    engine = _engine(database, storage, vendors)
    stopping = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(engine.run, stopping)
        with anyio.fail_after(30):
            while (await video_row(database, view.id)).provider_video_id is None:
                await anyio.sleep(0.05)
            await routed.cancel(ada, view.id)
            engine.wake()
            while not vendors.fal.jobs[vendors.fal.submissions[0]].cancelled:
                await anyio.sleep(0.05)
        stopping.set()
    assert (await video_row(database, view.id)).job_state == "cancelled"
    assert len(vendors.fal.submissions) == 1


async def test_outputs_are_archived_in_the_step_that_sees_them_finished(
    routed: Videos, ada: Account, database: Database, storage: Storage, vendors: Vendors
) -> None:
    """Vendors' output URLs expire: the engine downloads in the same step that learns a job
    is done, so expiring them right after that step loses nothing. The test steps the engine
    itself and expires every output as soon as the vendor has reported it finished."""
    kling, _ = await routed.create(ada, NewVideo(prompt="a kite", model=KLING, seconds="5"))
    veo, _ = await routed.create(ada, NewVideo(prompt="a pier", model="veo-3.1", seconds="4"))
    engine = _engine(database, storage, vendors)

    for _ in range(20):
        await _make_due(database)
        await engine.run_once()
        fal_done = [job for job in vendors.fal.jobs.values() if job.completed_reported]
        veo_done = [op for op in vendors.veo.operations.values() if op.done_reported]
        for job in fal_done:
            job.expired = True
        vendors.veo.deleted_files.update(op.file_id for op in veo_done)
        if fal_done and veo_done:
            break
    else:
        pytest.fail("the vendors never reported the jobs finished")

    for view in (kling, veo):
        row = await video_row(database, view.id)
        assert row.job_state == "completed", row.last_error
        assert row.video_key is not None
        assert await storage.read(row.video_key) == tiny_mp4()


async def _make_due(database: Database) -> None:
    """Every unfinished video due now, so one `run_once` steps each of them."""
    async with database.session() as session, session.begin():
        await session.execute(
            update(Video)
            .where(Video.job_state.not_in(["completed", "failed", "cancelled", "expired"]))
            .values(next_check_at=utcnow())
        )
