"""Group commit on both databases: shared transactions, updates, checks and inserts put off to one
statement per batch, and a fault fails only its own write."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import anyio
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from reelforge.db import videos as queries
from reelforge.db.claim import Claim, LeaseLost, check_held, claim_due, fenced
from reelforge.db.engine import Database
from reelforge.db.group import Batch, GroupCommit, Write
from reelforge.db.models import Video, VideoEvent
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.services.videos import NewVideo, Videos
from tests.support.engine import at_version

pytestmark = pytest.mark.anyio


async def claims_of(database: Database, videos: Videos, owner: Account, count: int) -> list[Claim]:
    for number in range(count):
        await videos.create(owner, NewVideo(prompt=f"clip {number}"))
    now = utcnow() + timedelta(seconds=1)
    return await claim_due(database, owner="w", now=now, lease=timedelta(minutes=1), limit=count)


def checking(claim: Claim) -> Write[str]:
    """A write that only checks the claim still holds its video."""

    async def write(batch: Batch) -> str:
        check_held(batch, claim)
        return claim.video_id

    return write


def marking(claim: Claim) -> Write[str]:
    """A write that names the claim's video in its error field and adds one event (both put off
    to the end of its batch)."""

    async def write(batch: Batch) -> str:
        fenced(batch, claim.video, replace(claim.video, last_error=f"marked {claim.video_id}"))
        queries.add_events(batch, claim.video_id, [("note", {})])
        return claim.video_id

    return write


@contextmanager
def commits(database: Database) -> Iterator[list[object]]:
    seen: list[object] = []

    def committed(connection: object) -> None:
        seen.append(connection)

    event.listen(database.engine.sync_engine, "commit", committed)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "commit", committed)


@contextmanager
def statements(database: Database, start: str) -> Iterator[list[int]]:
    """For each statement sent that starts with `start`: how many parameter sets it had."""
    seen: list[int] = []

    def sent(_conn: object, _cur: object, statement: str, parameters: object, *_: object) -> None:
        if statement.startswith(start):
            seen.append(len(parameters) if isinstance(parameters, list) else 1)

    event.listen(database.engine.sync_engine, "before_cursor_execute", sent)
    try:
        yield seen
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", sent)


async def marks(database: Database) -> dict[str, tuple[str | None, int]]:
    """Each video's error field and how many events it has."""
    events = select(func.count()).where(VideoEvent.video_id == Video.id).scalar_subquery()
    async with database.reading() as connection:
        rows = await connection.execute(select(Video.id, Video.last_error, events))
        return {video_id: (error, count) for video_id, error, count in rows}


async def held(group: GroupCommit, release: anyio.Event) -> str:
    """A write that keeps its batch committing until `release` is set."""

    async def write(_batch: Batch) -> str:
        await release.wait()
        return "first"

    return await group.run(write)


async def behind_a_batch(
    group: GroupCommit, runs: Sequence[Callable[[], Coroutine[Any, Any, None]]]
) -> None:
    """Start `runs` while another batch is committing: their writes queue, and go as the next."""
    release = anyio.Event()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(held, group, release)
        await anyio.wait_all_tasks_blocked()
        for run in runs:
            tasks.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        release.set()


async def test_writes_queued_behind_a_batch_are_committed_together(
    database: Database, videos: Videos, ada: Account
) -> None:
    claims = await claims_of(database, videos, ada, 6)
    group = GroupCommit(database)
    results: dict[str, str] = {}

    async def run(claim: Claim) -> None:
        results[claim.video_id] = await group.run(marking(claim))

    inserting = statements(database, "INSERT INTO video_events")
    updating = statements(database, "UPDATE videos")
    with commits(database) as seen, inserting as inserted, updating as updated:
        await behind_a_batch(group, [partial(run, claim) for claim in claims])

    assert len(seen) == 2  # the holding write's batch, then all six queued behind it
    assert inserted == [6]  # and their six events in one statement
    # Their fenced writes too, where the driver counts the rows an executemany changed.
    assert updated == ([6] if database.engine.dialect.supports_sane_multi_rowcount else [1] * 6)
    assert results == {claim.video_id: claim.video_id for claim in claims}
    assert await marks(database) == {
        claim.video_id: (f"marked {claim.video_id}", 2)
        for claim in claims  # created + note
    }


async def test_a_write_at_fault_fails_alone_and_the_others_land_once(
    database: Database, videos: Videos, ada: Account
) -> None:
    claims = await claims_of(database, videos, ada, 4)
    stale = at_version(claims[2], claims[2].version - 1)
    group = GroupCommit(database)
    outcomes: dict[str, str] = {}

    async def run(claim: Claim) -> None:
        try:
            outcomes[claim.video_id] = await group.run(marking(claim))
        except LeaseLost:
            outcomes[claim.video_id] = "lease lost"

    await behind_a_batch(group, [partial(run, claim) for claim in [*claims[:2], stale, claims[3]]])

    assert outcomes[stale.video_id] == "lease lost"
    after = await marks(database)
    assert after.pop(stale.video_id) == (None, 1)
    # The shared attempt was rolled back before each write ran alone: one note each, not two.
    assert after == {
        claim.video_id: (f"marked {claim.video_id}", 2) for claim in claims if claim != claims[2]
    }


async def test_a_write_cancelled_while_queued_never_runs(
    database: Database, videos: Videos, ada: Account
) -> None:
    [claim] = await claims_of(database, videos, ada, 1)
    group = GroupCommit(database)
    release = anyio.Event()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(held, group, release)
        await anyio.wait_all_tasks_blocked()
        with anyio.CancelScope() as queued:
            queued.cancel()
            await group.run(marking(claim))
        release.set()

    assert await marks(database) == {claim.video_id: (None, 1)}
    # The group still works, and the dropped write doesn't ride along with the next batch.
    assert await group.run(marking(claim)) == claim.video_id
    assert await marks(database) == {claim.video_id: (f"marked {claim.video_id}", 2)}


async def test_a_write_alone_is_its_own_transaction(
    database: Database, videos: Videos, ada: Account
) -> None:
    [claim] = await claims_of(database, videos, ada, 1)
    group = GroupCommit(database)

    with commits(database) as seen:
        assert await group.run(marking(claim)) == claim.video_id
        with pytest.raises(LeaseLost):
            await group.run(marking(at_version(claim, claim.version + 1)))

    assert len(seen) == 1
    assert await marks(database) == {claim.video_id: (f"marked {claim.video_id}", 2)}


async def test_a_batch_that_hangs_is_abandoned_and_the_queue_goes_on(
    database: Database, videos: Videos, ada: Account
) -> None:
    [claim] = await claims_of(database, videos, ada, 1)
    group = GroupCommit(database, batch_seconds=0.2)
    results: list[str] = []

    async def run_marking() -> None:
        results.append(await group.run(marking(claim)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_marking)  # queued behind the hanging batch
            with pytest.raises(TimeoutError):
                await held(group, anyio.Event())  # never released

    assert results == [claim.video_id]
    assert await marks(database) == {claim.video_id: (f"marked {claim.video_id}", 2)}


async def test_an_insert_put_off_that_fails_fails_only_its_own_write(
    database: Database, videos: Videos, ada: Account
) -> None:
    claims = await claims_of(database, videos, ada, 3)
    group = GroupCommit(database)
    outcomes: dict[str, str] = {}

    async def orphan_event(batch: Batch) -> str:
        queries.add_events(batch, "video_that_is_not_there", [("note", {})])
        return "orphan"

    async def run(name: str, write: Write[str]) -> None:
        try:
            outcomes[name] = await group.run(write)
        except IntegrityError:
            outcomes[name] = "refused"

    runs = [partial(run, claim.video_id, marking(claim)) for claim in claims]
    runs.insert(1, partial(run, "orphan", orphan_event))
    await behind_a_batch(group, runs)

    assert outcomes.pop("orphan") == "refused"  # events must belong to a video
    assert outcomes == {claim.video_id: claim.video_id for claim in claims}
    assert await marks(database) == {
        claim.video_id: (f"marked {claim.video_id}", 2) for claim in claims
    }


async def test_the_checks_of_a_batch_are_one_read_and_a_stale_claim_fails_alone(
    database: Database, videos: Videos, ada: Account
) -> None:
    claims = await claims_of(database, videos, ada, 4)
    stale = at_version(claims[1], claims[1].version - 1)
    group = GroupCommit(database)
    outcomes: dict[tuple[str, int], str] = {}

    async def run(claim: Claim) -> None:
        try:
            outcomes[claim.video_id, claim.version] = await group.run(checking(claim))
        except LeaseLost:
            outcomes[claim.video_id, claim.version] = "lease lost"

    with statements(database, "SELECT videos.id, videos.lease_version") as reads:
        await behind_a_batch(group, [partial(run, claim) for claim in claims])
    assert reads == [1]
    await behind_a_batch(group, [partial(run, claim) for claim in [claims[0], stale, *claims[2:]]])

    expected = {(claim.video_id, claim.version): claim.video_id for claim in claims}
    assert outcomes == expected | {(stale.video_id, stale.version): "lease lost"}
