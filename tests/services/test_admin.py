"""The admin's service on both databases: activity per UTC day, disabling, lineage reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from reelforge.bus import LocalBus, Topic
from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import ConflictError, NotFoundError
from reelforge.services.accounts import Accounts
from reelforge.services.admin import Admin
from reelforge.services.lineage import Lineages
from reelforge.services.videos import NewVideo, Videos
from tests.services.test_videos import finish
from tests.support.accounts import FAST_HASHER

pytestmark = pytest.mark.anyio


async def test_activity_cuts_days_at_utc_midnight(
    database: Database, videos: Videos, accounts: Accounts, ada: Account
) -> None:
    late, _ = await videos.create(ada, NewVideo(prompt="late", seconds=4))
    early, _ = await videos.create(ada, NewVideo(prompt="early", seconds=8))
    await finish(database, late.id)
    today = utcnow().date()
    yesterday_late = datetime.combine(today, datetime.min.time(), tzinfo=UTC) - timedelta(seconds=1)
    async with database.session() as session, session.begin():
        # One second before midnight UTC: yesterday, whatever the database session's zone.
        await session.execute(
            update(Video).where(Video.id == late.id).values(created_at=yesterday_late)
        )
        await session.execute(
            update(LedgerEntry)
            .where(LedgerEntry.video_id == late.id)
            .values(created_at=yesterday_late)
        )

    days = await Admin(database, accounts).activity(3)

    assert [day.day for day in days] == [today - timedelta(days=n) for n in (2, 1, 0)]
    assert (days[1].completed, days[1].created, days[1].spend) == (1, 1, late.cost_estimate)
    assert (days[2].running, days[2].created, days[2].spend) == (1, 1, early.cost_estimate)
    assert days[0].created == 0


async def test_disabling_a_user_publishes_and_spares_the_admin_themself(
    database: Database, accounts: Accounts, ada: Account, admin: Account
) -> None:
    bus = LocalBus()
    service = Admin(database, Accounts(database, FAST_HASHER, bus=bus))
    async with bus.subscribe() as notices:
        disabled = await service.set_disabled(admin, ada.id, True)
        notice = await anext(aiter(notices))
    with pytest.raises(ConflictError):
        await service.set_disabled(admin, admin.id, True)

    assert disabled.disabled is True
    assert (notice.topic, notice.id, notice.changed) == (Topic.ACCOUNT, ada.id, {"disabled"})
    assert await accounts.authenticate("ada@example.org", "correct horse battery") is None


async def test_lineage_hides_other_users_remixes_of_a_shared_parent(
    database: Database, videos: Videos, ada: Account, bob: Account, admin: Account
) -> None:
    parent, _ = await videos.create(ada, NewVideo(prompt="a fox"))
    await finish(database, parent.id)
    mine, _ = await videos.remix(ada, parent.id, "at night")
    lineages = Lineages(database)

    as_ada = await lineages.of(ada, mine.id)
    as_admin = await lineages.of(admin, parent.id)

    assert [v.id for v in as_ada.videos()] == [parent.id, mine.id]
    assert [v.id for v in as_admin.videos()] == [parent.id, mine.id]
    with pytest.raises(NotFoundError):
        await lineages.of(bob, parent.id)
