"""The video use cases on a real database of each dialect: accept, reserve, read, cancel, delete."""

from __future__ import annotations

import io
from decimal import Decimal

import anyio
import pytest
from PIL import Image
from sqlalchemy import select, update

from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video
from reelforge.domain.accounts import Account
from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.domain.quotas import LimitExceededError, QuotaPolicy
from reelforge.domain.states import VideoStatus
from reelforge.domain.videos import Order
from reelforge.services.quotas import Quotas
from reelforge.services.videos import NewVideo, Videos
from tests.support.engine import ledger_of

pytestmark = pytest.mark.anyio


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buffer, "PNG")
    return buffer.getvalue()


async def finish(database: Database, video_id: str) -> None:
    """Stand in for the job engine: mark a video completed."""
    async with database.session() as session, session.begin():
        await session.execute(
            update(Video).where(Video.id == video_id).values(job_state="completed", progress=100)
        )


async def test_create_fills_defaults_prices_and_reserves(
    videos: Videos, ada: Account, database: Database
) -> None:
    view, created = await videos.create(ada, NewVideo(prompt="a red fox in snow"))

    assert created
    assert view.id.startswith("video_")
    assert len(view.id) == len("video_") + 48
    assert (view.model, view.size, view.seconds) == ("sora-2", "720x1280", "4")
    assert view.status is VideoStatus.QUEUED
    assert view.cost_estimate == Decimal("0.40")
    assert await ledger_of(database, view.id) == [("reserve", Decimal("0.40"))]
    assert [e.kind for e in await videos.events(ada, view.id)] == ["created"]


@pytest.mark.parametrize(
    ("new", "field", "wording"),
    [
        (NewVideo(prompt="   "), "prompt", "must not be blank"),
        (NewVideo(prompt="x" * 1001), "prompt", "at most 1000"),
        (NewVideo(prompt="fox", model="sora-3"), "model", "'sora-2', 'sora-2-pro'"),
        (NewVideo(prompt="fox", size="1920x1080"), "size", "'720x1280' and '1280x720'"),
        (NewVideo(prompt="fox", seconds="5"), "seconds", "'4', '8', '12', '16', and '20'"),
        (NewVideo(prompt="fox", input_reference=b"not an image"), "input_reference", "JPEG"),
        (NewVideo(prompt="fox", input_reference=png(100, 100)), "input_reference", "720x1280"),
    ],
)
async def test_bad_requests_name_the_field_and_change_nothing(
    videos: Videos, ada: Account, database: Database, new: NewVideo, field: str, wording: str
) -> None:
    with pytest.raises(InputError) as caught:
        await videos.create(ada, new)

    assert caught.value.field == field
    assert wording in caught.value.message
    assert (await videos.page(ada)).items == []
    async with database.session() as session:
        assert (await session.scalars(select(LedgerEntry))).all() == []


async def test_reference_image_of_the_right_size_is_kept(videos: Videos, ada: Account) -> None:
    view, _ = await videos.create(
        ada, NewVideo(prompt="fox", size="1280x720", input_reference=png(1280, 720))
    )

    assert view.size == "1280x720"


async def test_other_users_see_nothing_and_admins_see_all(
    videos: Videos, ada: Account, bob: Account, admin: Account
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="fox"))

    for action in (
        videos.get(bob, view.id),
        videos.events(bob, view.id),
        videos.cancel(bob, view.id),
        videos.delete(bob, view.id),
        videos.remix(bob, view.id, "again"),
    ):
        with pytest.raises(NotFoundError):
            await action
    assert (await videos.page(bob)).items == []
    assert (await videos.get(admin, view.id)).id == view.id
    assert [v.id for v in (await videos.page(admin)).items] == [view.id]


async def test_list_filters_and_pages_stably(videos: Videos, ada: Account) -> None:
    made = [
        (await videos.create(ada, NewVideo(prompt=f"clip {i} of a {animal}")))[0]
        for i, animal in enumerate(["fox", "owl", "fox", "cat", "fox"])
    ]

    first = await videos.page(ada, limit=2)
    rest = await videos.page(ada, limit=10, after=first.last_id)
    assert [v.id for v in first.items + rest.items] == [v.id for v in reversed(made)]
    assert first.has_more
    assert not rest.has_more
    oldest = await videos.page(ada, limit=1, order=Order.ASC)
    assert oldest.items[0].id == made[0].id
    foxes = await videos.page(ada, text="FOX")
    assert len(foxes.items) == 3
    assert (await videos.page(ada, text="100%_")).items == []
    assert len((await videos.page(ada, status=["queued"])).items) == 5
    assert (await videos.page(ada, status=["completed"])).items == []
    with pytest.raises(InputError, match="status"):
        await videos.page(ada, status=["done"])
    with pytest.raises(InputError, match="limit"):
        await videos.page(ada, limit=0)


async def test_offset_skips_by_position_with_filters_and_cursor(
    videos: Videos, ada: Account
) -> None:
    made = [(await videos.create(ada, NewVideo(prompt=f"clip {i}")))[0].id for i in range(5)]
    newest_first = list(reversed(made))

    second = await videos.page(ada, limit=2, offset=2)
    last = await videos.page(ada, limit=2, offset=4)
    beyond = await videos.page(ada, limit=2, offset=5)
    after_cursor = await videos.page(ada, limit=2, offset=1, after=newest_first[0])

    assert ([v.id for v in second.items], second.has_more) == (newest_first[2:4], True)
    assert ([v.id for v in last.items], last.has_more) == (newest_first[4:], False)
    assert (beyond.items, beyond.has_more) == ([], False)
    assert [v.id for v in after_cursor.items] == newest_first[2:4]
    assert [v.id for v in (await videos.page(ada, offset=1, text="clip 1")).items] == []
    with pytest.raises(InputError, match="offset"):
        await videos.page(ada, offset=-1)


@pytest.mark.parametrize(
    ("new", "model"),
    [
        (NewVideo(prompt="a fox", quality="high"), "sora-2-pro"),
        (NewVideo(prompt="a fox", quality="standard"), "sora-2"),
        (NewVideo(prompt="a fox", model="sora-2-pro-2025-10-06", quality="high"), "sora-2-pro"),
    ],
)
async def test_quality_chooses_the_model(
    videos: Videos, ada: Account, new: NewVideo, model: str
) -> None:
    view, _ = await videos.create(ada, new)

    assert view.model == model


async def test_cancel_before_submission_refunds_once(
    videos: Videos, ada: Account, database: Database
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="fox"))

    cancelled = await videos.cancel(ada, view.id)
    again = await videos.cancel(ada, view.id)

    assert cancelled.status is VideoStatus.CANCELLED
    assert again.status is VideoStatus.CANCELLED
    assert await ledger_of(database, view.id) == [
        ("reserve", Decimal("0.40")),
        ("refund", Decimal("-0.40")),
    ]
    assert [e.kind for e in await videos.events(ada, view.id)] == ["created", "cancelled"]


async def test_cancel_fences_the_engine(videos: Videos, ada: Account, database: Database) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="fox"))
    async with database.session() as session:
        before = (await session.get(Video, view.id)).lease_version  # type: ignore[union-attr]

    await videos.cancel(ada, view.id)

    async with database.session() as session:
        assert (await session.get(Video, view.id)).lease_version == before + 1  # type: ignore[union-attr]


async def test_delete_is_idempotent_and_hides_the_video(
    videos: Videos, ada: Account, database: Database
) -> None:
    view, _ = await videos.create(ada, NewVideo(prompt="fox"))

    await videos.delete(ada, view.id)
    await videos.delete(ada, view.id)

    with pytest.raises(NotFoundError):
        await videos.get(ada, view.id)
    assert (await videos.page(ada)).items == []
    assert [kind for kind, _ in await ledger_of(database, view.id)] == ["reserve", "refund"]


async def test_remix_needs_a_completed_parent(
    videos: Videos, ada: Account, database: Database
) -> None:
    parent, _ = await videos.create(ada, NewVideo(prompt="fox", size="1280x720", seconds="8"))
    with pytest.raises(ConflictError, match="only a completed video"):
        await videos.remix(ada, parent.id, "at night")

    await finish(database, parent.id)
    remix, created = await videos.remix(ada, parent.id, "at night")

    assert created
    assert remix.remixed_from_video_id == parent.id
    assert (remix.size, remix.seconds, remix.prompt) == ("1280x720", "8", "at night")
    assert [e.kind for e in await videos.events(ada, remix.id)] == ["remixed"]


async def test_idempotency_key_replays_or_conflicts(videos: Videos, ada: Account) -> None:
    first, created = await videos.create(ada, NewVideo(prompt="fox", idempotency_key="k1"))
    again, created_again = await videos.create(ada, NewVideo(prompt="fox", idempotency_key="k1"))

    assert created
    assert not created_again
    assert again.id == first.id
    with pytest.raises(ConflictError) as caught:
        await videos.create(ada, NewVideo(prompt="owl", idempotency_key="k1"))
    assert caught.value.field == "Idempotency-Key"
    assert len((await videos.page(ada)).items) == 1


async def test_quota_counts_videos_in_the_period(
    videos: Videos, quotas: Quotas, ada: Account
) -> None:
    await quotas.set_policy(ada.id, QuotaPolicy(max_videos=2, period_days=30, monthly_budget=None))
    await videos.create(ada, NewVideo(prompt="one"))
    await videos.create(ada, NewVideo(prompt="two"))

    with pytest.raises(LimitExceededError) as caught:
        await videos.create(ada, NewVideo(prompt="three"))

    assert caught.value.code == "quota_exceeded"
    usage = await quotas.usage(ada)
    assert (usage.videos_used, usage.videos_left) == (2, 0)


async def test_budget_stops_a_video_it_cannot_pay_for(
    videos: Videos, quotas: Quotas, ada: Account
) -> None:
    await quotas.set_policy(
        ada.id, QuotaPolicy(max_videos=None, period_days=30, monthly_budget=Decimal("1.00"))
    )
    await videos.create(ada, NewVideo(prompt="one", seconds="8"))  # $0.80

    with pytest.raises(LimitExceededError) as caught:
        await videos.create(ada, NewVideo(prompt="two", seconds="4"))  # $0.40 > $0.20 left

    assert caught.value.code == "budget_exceeded"
    assert (await quotas.usage(ada)).budget_left == Decimal("0.20")


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        (QuotaPolicy(max_videos=10, period_days=30, monthly_budget=None), "quota_exceeded"),
        (
            QuotaPolicy(max_videos=None, period_days=30, monthly_budget=Decimal(4)),
            "budget_exceeded",
        ),
    ],
)
async def test_fifty_concurrent_creates_admit_exactly_the_limit(
    videos: Videos,
    quotas: Quotas,
    ada: Account,
    database: Database,
    policy: QuotaPolicy,
    code: str,
) -> None:
    await quotas.set_policy(ada.id, policy)
    admitted: list[str] = []
    refused: list[str] = []

    async def attempt(i: int) -> None:
        try:
            view, _ = await videos.create(ada, NewVideo(prompt=f"race {i}"))  # $0.40 each
        except LimitExceededError as error:
            refused.append(error.code)
        else:
            admitted.append(view.id)

    async with anyio.create_task_group() as group:
        for i in range(50):
            group.start_soon(attempt, i)

    assert len(admitted) == 10
    assert refused == [code] * 40
    async with database.session() as session:
        reserves = (
            await session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "reserve"))
        ).all()
    assert len(reserves) == 10
