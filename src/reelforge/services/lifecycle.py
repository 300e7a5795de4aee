"""The lifecycle service: every change of a video's state goes through here, from any caller.

A change comes in typed (the video as it was, the video as it is to be), is checked against the
domain's rules (`domain.lifecycle`), and goes out as one unit of work that writes the row, its
events, its ledger entry and its outgoing webhooks together; after the commit, the change is
published on the bus. Units of work from concurrent callers share transactions (`db.group`): a
change alone is a batch of one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.bus import Bus, Notice, Topic
from reelforge.db import claim as leases
from reelforge.db import videos as queries
from reelforge.db.claim import Claim
from reelforge.db.engine import Database
from reelforge.db.group import Batch, GroupCommit
from reelforge.domain import lifecycle as rules
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import NotFoundError
from reelforge.domain.lifecycle import REFUNDED_COST, Closing, Effects
from reelforge.domain.records import VideoRecord
from reelforge.domain.videos import EventKind
from reelforge.services import webhook_events

# Runs first in an accept's unit of work: None to go ahead, or an earlier video to answer with
# instead (a repeated idempotency key); raises to refuse (quota, budget, conflict).
Admission = Callable[[AsyncConnection, VideoRecord], Awaitable[VideoRecord | None]]
# A user's change: the video as it is to be, or None when there is nothing to change.
Decide = Callable[[VideoRecord, datetime], VideoRecord | None]


class Lifecycle:
    def __init__(self, database: Database, bus: Bus) -> None:
        self._commits = GroupCommit(database)
        self._bus = bus

    async def accept(
        self, video: VideoRecord, kind: EventKind, admission: Admission, *, actor: str
    ) -> tuple[VideoRecord, bool]:
        """Add `video` with its reservation, once `admission` lets it in; whether it is new."""

        async def write(batch: Batch) -> tuple[VideoRecord, bool]:
            earlier = await admission(batch.connection, video)
            if earlier is not None:
                return earlier, False
            await leases.add_video(batch.connection, video)
            await queries.reserve(batch.connection, video, video.created_at)
            _bring(batch, video, rules.accepted(video, kind), actor=actor)
            return video, True

        accepted, new = await self._commits.run(write)
        if new:
            await self._publish(accepted, rules.accepted(accepted, kind))
            await self._bus.publish(Notice(Topic.WAKE, accepted.id, accepted.owner_id))
        return accepted, new

    async def step(
        self, claim: Claim, after: VideoRecord, *, next_check_at: datetime | None
    ) -> None:
        """The engine's change under its lease, which it gives back: due again `next_check_at`."""
        after = replace(after, lease_owner=None, lease_until=None, next_check_at=next_check_at)
        await self.hold(claim, after)

    async def hold(self, claim: Claim, after: VideoRecord) -> Claim:
        """The engine's change under its lease, which it keeps (the claim, holding `after`
        now, is returned); LeaseLost when the lease is gone."""
        effects = rules.effects(claim.video, after)

        async def write(batch: Batch) -> None:
            _written(batch, claim.video, after, effects)

        await self._commits.run(write)
        await self._publish(after, effects, claim.video)
        return replace(claim, video=after)

    async def check_held(self, claim: Claim) -> None:
        """LeaseLost unless the claim is still the video's (before a side effect outside the
        database that only the holder may make)."""

        async def check(batch: Batch) -> None:
            leases.check_held(batch, claim)

        await self._commits.run(check)

    async def change(
        self,
        video_id: str,
        owner_id: str | None,
        decide: Decide,
        *,
        actor: str,
        include_deleted: bool = False,
    ) -> VideoRecord:
        """A user's change of a video they can see (`owner_id` None: an admin, who sees all);
        whoever holds its lease is fenced out first. NotFoundError when they can't see it."""

        async def write(batch: Batch) -> tuple[VideoRecord, Effects]:
            before = await leases.take_for_change(
                batch.connection, video_id, owner_id, include_deleted=include_deleted
            )
            if before is None:
                raise NotFoundError("video", video_id)
            after = decide(before, utcnow())
            if after is None:
                await leases.give_back(batch.connection, before)
                return before, Effects()
            effects = rules.effects(before, after)
            _written(batch, before, after, effects, actor=actor)
            return after, effects

        after, effects = await self._commits.run(write)
        await self._publish(after, effects)
        return after

    async def _publish(
        self, video: VideoRecord, effects: Effects, before: VideoRecord | None = None
    ) -> None:
        changed = effects.changed
        if not changed and before is not None and queries.to_view(before) != queries.to_view(video):
            # Nothing a live update names, but what a reader sees moved (the archive, a date):
            # readers' caches must drop it all the same.
            changed = frozenset({"view"})
        if changed:
            await self._bus.publish(Notice(Topic.VIDEO, video.id, video.owner_id, changed))


def _written(
    batch: Batch,
    before: VideoRecord,
    after: VideoRecord,
    effects: Effects,
    *,
    actor: str | None = None,
) -> None:
    leases.fenced(batch, before, after, final_cost=_final_cost(after, effects))
    _bring(batch, after, effects, actor=actor)


def _final_cost(video: VideoRecord, effects: Effects) -> Decimal | None:
    """What the video finally costs, when this change closes its ledger."""
    if effects.closing is None:
        return None
    if effects.closing is Closing.REFUND:
        return REFUNDED_COST
    assert video.cost_final is not None, "a settled video has its final cost"
    return video.cost_final


def _bring(batch: Batch, video: VideoRecord, effects: Effects, *, actor: str | None) -> None:
    """The events, ledger entry and outgoing webhook that go with a change of `video`."""
    if effects.events:
        queries.add_events(batch, video.id, effects.events, actor=actor)
    final = _final_cost(video, effects)
    if effects.closing is not None and final is not None:
        queries.close_ledger(
            batch,
            user_id=video.owner_id,
            video_id=video.id,
            kind=effects.closing.value,
            amount=final - video.cost_estimate,
            now=utcnow(),
        )
    if effects.webhook is not None:
        event = webhook_events.Event(video.owner_id, rules.snapshot(video), effects.webhook)
        webhook_events.queue(batch, event)
