"""The lifecycle service where a user's change meets the engine's lease on the same video."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from reelforge.bus.local import LocalBus
from reelforge.db.engine import Database
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.services.jobs import Claim, Jobs
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.videos import NewVideo, Videos

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=30)


async def _claimed(database: Database, videos: Videos, ada: Account) -> Claim:
    view, _ = await videos.create(ada, NewVideo(prompt="a fox in the snow"))
    claims = await Jobs(database).claim_due(
        owner="engine", now=utcnow() + timedelta(seconds=1), lease=LEASE, limit=1
    )
    assert [claim.video_id for claim in claims] == [view.id]
    return claims[0]


async def test_a_change_that_decides_nothing_leaves_the_engines_lease_alone(
    database: Database, videos: Videos, ada: Account
) -> None:
    claim = await _claimed(database, videos, ada)
    lifecycle = Lifecycle(database, LocalBus())

    unchanged = await lifecycle.change(
        claim.video_id, ada.id, lambda video, now: None, actor=ada.id
    )

    assert unchanged.prompt == claim.video.prompt
    # Fenced out for nothing, the engine would hold a cancelled video's clean-up back until
    # its lease ran out.
    assert await Jobs(database).release(claim, next_check_at=None)


async def test_a_change_that_writes_fences_the_engine_out(
    database: Database, videos: Videos, ada: Account
) -> None:
    claim = await _claimed(database, videos, ada)
    lifecycle = Lifecycle(database, LocalBus())

    await lifecycle.change(
        claim.video_id, ada.id, lambda video, now: replace(video, updated_at=now), actor=ada.id
    )

    assert not await Jobs(database).release(claim, next_check_at=None)
