"""The job claim on both databases: one lease per video, fencing tokens, expiry, concurrency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import event, update

from reelforge.db.claim import (
    Claim,
    LeaseLost,
    check_held,
    claim_due,
    extend,
    fenced,
    release,
)
from reelforge.db.engine import Database
from reelforge.db.group import Batch, GroupCommit
from reelforge.db.models import Video
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.services.videos import NewVideo, Videos

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=30)


async def make_videos(videos: Videos, owner: Account, count: int) -> list[str]:
    return [(await videos.create(owner, NewVideo(prompt=f"v{i}")))[0].id for i in range(count)]


async def in_batch(database: Database, put: Callable[[Batch], None]) -> None:
    """Commit what `put` puts off to the end of a batch (a batch of its own)."""

    async def write(batch: Batch) -> None:
        put(batch)

    await GroupCommit(database).run(write)


async def held(database: Database, claim: Claim) -> None:
    """Raise LeaseLost unless the claim still holds its video."""
    await in_batch(database, lambda batch: check_held(batch, claim))


async def test_a_claim_leases_due_videos_and_bumps_their_token(
    database: Database, videos: Videos, ada: Account
) -> None:
    ids = await make_videos(videos, ada, 3)
    now = utcnow() + timedelta(seconds=1)

    claims = await claim_due(database, owner="w1", now=now, lease=LEASE, limit=10)

    assert sorted(c.video_id for c in claims) == sorted(ids)
    assert {c.version for c in claims} == {1}
    assert await claim_due(database, owner="w2", now=now, lease=LEASE, limit=10) == []


async def test_an_expired_lease_is_claimable_again_and_fences_the_old_holder(
    database: Database, videos: Videos, ada: Account
) -> None:
    await make_videos(videos, ada, 1)
    now = utcnow() + timedelta(seconds=1)
    [first] = await claim_due(database, owner="w1", now=now, lease=LEASE, limit=1)

    later = now + LEASE + timedelta(seconds=1)
    [second] = await claim_due(database, owner="w2", now=later, lease=LEASE, limit=1)

    assert second.version == first.version + 1
    await held(database, second)
    with pytest.raises(LeaseLost):
        await held(database, first)
    with pytest.raises(LeaseLost):
        await extend(database, first, now=later, lease=LEASE)
    assert not await release(database, first, next_check_at=later)
    assert await release(database, second, next_check_at=None)
    assert await claim_due(database, owner="w3", now=later, lease=LEASE, limit=1) == []


async def test_release_schedules_the_next_check(
    database: Database, videos: Videos, ada: Account
) -> None:
    await make_videos(videos, ada, 1)
    now = utcnow() + timedelta(seconds=1)
    [claim] = await claim_due(database, owner="w1", now=now, lease=LEASE, limit=1)

    await release(database, claim, next_check_at=now + timedelta(seconds=5))

    assert await claim_due(database, owner="w1", now=now, lease=LEASE, limit=1) == []
    later = await claim_due(
        database, owner="w1", now=now + timedelta(seconds=6), lease=LEASE, limit=1
    )
    assert [c.version for c in later] == [claim.version + 1]


async def _nudge(database: Database, video_id: str, due: datetime) -> None:
    """What a provider's webhook writes, without the lease (services.inbound)."""
    async with database.transaction() as connection:
        await connection.execute(
            update(Video).where(Video.id == video_id).values(next_check_at=due)
        )


async def _due(database: Database, video_id: str) -> datetime | None:
    async with database.session() as session:
        return (await session.get_one(Video, video_id)).next_check_at


async def test_a_nudge_under_a_lease_outlives_the_holders_later_due_time(
    database: Database, videos: Videos, ada: Account
) -> None:
    ids = await make_videos(videos, ada, 4)
    now = utcnow() + timedelta(seconds=1)
    claims = await claim_due(database, owner="w1", now=now, lease=LEASE, limit=4)
    by_id = {c.video_id: c for c in claims}
    nudged, sooner, unnamed, untouched = (by_id[i] for i in ids)
    nudge = now + timedelta(seconds=2)
    for claim in (nudged, sooner, unnamed):
        await _nudge(database, claim.video_id, nudge)
    step = now + timedelta(seconds=60)

    def steps(batch: Batch) -> None:
        # One batch: the fenced writes share one statement, nudged rows or not.
        for claim, due in ((nudged, step), (sooner, now), (untouched, step)):
            fenced(batch, claim.video, replace(claim.video, next_check_at=due))

    await in_batch(database, steps)
    await release(database, unnamed, next_check_at=None)

    assert await _due(database, nudged.video_id) == nudge
    assert await _due(database, sooner.video_id) == now
    assert await _due(database, unnamed.video_id) == nudge
    assert await _due(database, untouched.video_id) == step


async def test_concurrent_claimers_never_share_a_video(
    database: Database, videos: Videos, ada: Account
) -> None:
    ids = await make_videos(videos, ada, 30)
    now = utcnow() + timedelta(seconds=1)
    claimed: list[str] = []

    async def claimer(name: str) -> None:
        while batch := await claim_due(database, owner=name, now=now, lease=LEASE, limit=3):
            claimed.extend(c.video_id for c in batch)

    async with anyio.create_task_group() as group:
        for n in range(8):
            group.start_soon(claimer, f"w{n}")

    assert sorted(claimed) == sorted(ids)


async def test_a_fenced_write_applies_under_the_current_token_and_nothing_under_a_stale_one(
    database: Database, videos: Videos, ada: Account
) -> None:
    [video_id] = await make_videos(videos, ada, 1)
    now = utcnow() + timedelta(seconds=1)
    [stale] = await claim_due(database, owner="w1", now=now, lease=LEASE, limit=1)
    later = now + LEASE + timedelta(seconds=1)
    [current] = await claim_due(database, owner="w2", now=later, lease=LEASE, limit=1)

    by_stale = replace(stale.video, progress=7, metadata={"by": "stale"})
    by_current = replace(current.video, progress=40, metadata={"by": "current"})
    with pytest.raises(LeaseLost):
        await in_batch(database, lambda b: fenced(b, stale.video, by_stale))
    await in_batch(database, lambda b: fenced(b, current.video, by_current))

    async with database.session() as session:
        written = await session.get_one(Video, video_id)
    assert (written.progress, written.metadata_) == (40, {"by": "current"})


async def test_a_claim_reads_the_due_index_not_every_video(
    database: Database, videos: Videos, ada: Account
) -> None:
    """Finished videos pile up; the claim must find due ones without scanning them all."""
    await make_videos(videos, ada, 3)
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("UPDATE"):
            sent.append((statement, parameters))

    sync = database.engine.sync_engine
    event.listen(sync, "before_cursor_execute", capture)
    try:
        await claim_due(database, owner="w1", now=utcnow(), lease=LEASE, limit=2)
    finally:
        event.remove(sync, "before_cursor_execute", capture)
    [(statement, parameters)] = sent
    async with database.engine.connect() as connection:
        if database.dialect == "postgresql":
            # On a table this small a scan is cheaper; forbid it to see the index is usable.
            await connection.exec_driver_sql("SET enable_seqscan = off")
            plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        else:
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        lines = [str(row[-1]) for row in plan]

    assert any("ix_videos_due" in line for line in lines), lines
