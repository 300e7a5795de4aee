"""Videos on both databases: a list cursor outlives its video, and `admit` (where the HTTP layer
counts the create rate limit) runs only for a request that passed every check."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.accounts import Account
from reelforge.domain.errors import ConflictError, InputError, NotFoundError
from reelforge.domain.quotas import LimitExceededError, QuotaPolicy
from reelforge.domain.videos import Order
from reelforge.services.quotas import Quotas
from reelforge.services.videos import NewVideo, Videos

pytestmark = pytest.mark.anyio


async def test_a_deleted_video_still_marks_its_place(videos: Videos, ada: Account) -> None:
    made = [(await videos.create(ada, NewVideo(prompt=f"clip {i}")))[0].id for i in range(4)]
    await videos.delete(ada, made[2])
    await videos.delete(ada, made[1])

    older = await videos.page(ada, after=made[2])
    newer = await videos.page(ada, after=made[1], order=Order.ASC)

    assert [v.id for v in older.items] == [made[0]]
    assert [v.id for v in newer.items] == [made[3]]


async def test_another_users_video_is_no_cursor_deleted_or_not(
    videos: Videos, ada: Account, bob: Account, admin: Account
) -> None:
    theirs = [(await videos.create(bob, NewVideo(prompt=f"bob {i}")))[0].id for i in range(2)]
    await videos.delete(bob, theirs[1])

    for video_id in theirs:
        with pytest.raises(InputError) as caught:
            await videos.page(ada, after=video_id)
        assert caught.value.field == "after"
    # An admin sees everyone's videos, so every id is a cursor for them.
    assert [v.id for v in (await videos.page(admin, after=theirs[1])).items] == [theirs[0]]


class Admissions:
    """An `admit` hook that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1


async def test_admit_runs_once_a_request_is_valid(
    videos: Videos, ada: Account, database: Database
) -> None:
    admit = Admissions()
    parent, _ = await videos.create(ada, NewVideo(prompt="fox"), admit=admit)
    refused = [
        videos.create(ada, NewVideo(prompt=" "), admit=admit),
        videos.create(ada, NewVideo(prompt="fox", seconds="5"), admit=admit),
        videos.create(ada, NewVideo(prompt="fox", input_reference=b"?"), admit=admit),
        videos.remix(ada, parent.id, "not completed yet", admit=admit),
        videos.remix(ada, "video_" + "0" * 48, "no such video", admit=admit),
        videos.remix(ada, parent.id, "  ", admit=admit),
    ]
    for call in refused:
        with pytest.raises((InputError, ConflictError, NotFoundError)):
            await call
    assert admit.calls == 1

    async with database.session() as session, session.begin():
        await session.execute(update(Video).values(job_state="completed", progress=100))
    await videos.remix(ada, parent.id, "at night", admit=admit)

    assert admit.calls == 2


async def test_a_refusal_from_admit_accepts_nothing(
    videos: Videos, quotas: Quotas, ada: Account
) -> None:
    class Refused(Exception):
        pass

    async def refuse() -> None:
        raise Refused

    with pytest.raises(Refused):
        await videos.create(ada, NewVideo(prompt="fox"), admit=refuse)

    assert (await videos.page(ada)).items == []
    assert (await quotas.usage(ada)).videos_used == 0


async def test_admit_comes_before_the_quota(videos: Videos, quotas: Quotas, ada: Account) -> None:
    """A quota refusal is a valid request the user may not make now: it is counted."""
    await quotas.set_policy(ada.id, QuotaPolicy(max_videos=0, period_days=30, monthly_budget=None))
    admit = Admissions()

    with pytest.raises(LimitExceededError):
        await videos.create(ada, NewVideo(prompt="fox"), admit=admit)

    assert admit.calls == 1
