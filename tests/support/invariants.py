"""Whole-system invariants of the job engine, checked over the database, storage and the
emulator's own ledger of the upstream jobs it really made (DESIGN.md §4, §5)."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, Video, VideoEvent
from reelforge.domain.catalog import provider as catalog_provider
from reelforge.domain.states import JobState
from reelforge.domain.videos import EventKind
from reelforge.storage import Storage

# Where each event kind sits in a video's life; a later event may never sit earlier.
_PHASE = {
    EventKind.CREATED: 0,
    EventKind.REMIXED: 0,
    EventKind.SUBMITTED: 1,
    EventKind.COMPLETED: 2,
    EventKind.ARCHIVED: 3,
    EventKind.FAILED: 3,
    EventKind.EXPIRED: 3,
    EventKind.CANCELLED: 3,
    EventKind.DELETED: 4,
}
_ENDINGS = {EventKind.ARCHIVED, EventKind.FAILED, EventKind.EXPIRED, EventKind.CANCELLED}


async def check_invariants(database: Database, storage: Storage, emulator_app: FastAPI) -> None:
    async with database.session() as session:
        videos = list((await session.scalars(select(Video).order_by(Video.id))).all())
        entries = (
            await session.execute(
                select(LedgerEntry.video_id, LedgerEntry.kind, LedgerEntry.amount).order_by(
                    LedgerEntry.id
                )
            )
        ).all()
        events = (
            await session.execute(
                select(VideoEvent.video_id, VideoEvent.kind).order_by(VideoEvent.id)
            )
        ).all()
    upstream_rows: list[dict[str, Any]] = list(emulator_app.state.emulator.store.ledger_rows())
    problems: list[str] = []

    _one_upstream_job_per_video(videos, upstream_rows, problems)
    _nothing_stranded(videos, problems)
    await _archives_match(videos, storage, problems)
    _money(videos, entries, upstream_rows, problems)
    _events_move_forward(events, problems)

    assert not problems, "invariants broken:\n  " + "\n  ".join(problems)


def _one_upstream_job_per_video(
    videos: list[Video], upstream_rows: list[dict[str, Any]], problems: list[str]
) -> None:
    referenced = Counter(v.provider_video_id for v in videos if v.provider_video_id is not None)
    for upstream_id, count in referenced.items():
        if count > 1:
            problems.append(f"upstream job {upstream_id} is referenced by {count} videos")
    made = {row["id"] for row in upstream_rows}
    for row in upstream_rows:
        if referenced[row["id"]] != 1:
            problems.append(
                f"upstream job {row['id']} ({row['prompt']!r}) is referenced by "
                f"{referenced[row['id']]} videos: a duplicate or orphaned create"
            )
    for video in videos:
        if video.provider_video_id is not None and video.provider_video_id not in made:
            problems.append(f"{video.id} names {video.provider_video_id}, unknown upstream")


def _nothing_stranded(videos: list[Video], problems: list[str]) -> None:
    for video in videos:
        if not JobState(video.job_state).is_terminal and video.next_check_at is None:
            problems.append(f"{video.id} is {video.job_state} with no next check: stranded")


async def _archives_match(videos: list[Video], storage: Storage, problems: list[str]) -> None:
    for video in videos:
        if video.job_state != JobState.COMPLETED:
            continue
        if video.video_key is None:
            problems.append(f"{video.id} is completed without an archived video")
            continue
        if not await storage.exists(video.video_key):
            problems.append(f"{video.id}: archive object {video.video_key} is missing")
            continue
        size = (await storage.head(video.video_key)).size
        digest = await storage.sha256(video.video_key)
        if size != video.video_bytes or digest != video.video_sha256:
            problems.append(
                f"{video.id}: archive holds {size} bytes sha256 {digest[:12]}…, "
                f"row says {video.video_bytes} bytes sha256 {(video.video_sha256 or '')[:12]}…"
            )


def _money(
    videos: list[Video],
    entries: Any,
    upstream_rows: list[dict[str, Any]],
    problems: list[str],
) -> None:
    by_video: defaultdict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for video_id, kind, amount in entries:
        by_video[video_id].append((kind, Decimal(amount)))
    upstream = {row["id"]: row for row in upstream_rows}
    spec = catalog_provider("emulator")
    charged_completed = Decimal(0)
    billed_completed = Decimal(0)
    for video in videos:
        rows = by_video[video.id]
        kinds = Counter(kind for kind, _ in rows)
        total = sum((amount for _, amount in rows), Decimal(0))
        if kinds["reserve"] != 1:
            problems.append(f"{video.id} has {kinds['reserve']} reserves")
        if kinds["settle"] + kinds["refund"] > 1:
            problems.append(f"{video.id} is both settled and refunded: {rows}")
        state = JobState(video.job_state)
        if state is JobState.COMPLETED:
            price = spec.model(video.model).price(video.size, video.seconds)
            if kinds["settle"] != 1 or total != price:
                problems.append(f"{video.id} completed but charged {total} ({rows}), price {price}")
            charged_completed += total
            row = upstream.get(video.provider_video_id or "")
            if row is None or not row["billable"]:
                problems.append(f"{video.id} completed but its upstream job is not billable")
            else:
                billed_completed += Decimal(row["cost"])
        elif state in (JobState.FAILED, JobState.EXPIRED):
            if kinds["refund"] != 1 or total != 0:
                problems.append(f"{video.id} {state} but not refunded to 0: {rows}")
        elif state is JobState.CANCELLED:
            # Settled at the estimate once upstream may have started, else refunded.
            if kinds["settle"] + kinds["refund"] != 1:
                problems.append(f"{video.id} cancelled but neither settled nor refunded: {rows}")
        elif kinds["settle"] + kinds["refund"]:
            problems.append(f"{video.id} is {state} yet already settled/refunded: {rows}")
    if charged_completed != billed_completed:
        problems.append(
            f"completed videos charged {charged_completed}, upstream billed {billed_completed} "
            "for their jobs"
        )


def _events_move_forward(events: Any, problems: list[str]) -> None:
    seen: defaultdict[str, list[str]] = defaultdict(list)
    for video_id, kind in events:
        seen[video_id].append(kind)
    for video_id, kinds in seen.items():
        phase = -1
        for kind in kinds:
            if kind not in _PHASE:
                continue  # progress, webhook_received: no ordering
            here = _PHASE[EventKind(kind)]
            if here < phase:
                problems.append(f"{video_id}: events went backwards: {kinds}")
                break
            phase = max(phase, here)
        if sum(kind in _ENDINGS for kind in kinds) > 1:
            problems.append(f"{video_id}: more than one ending: {kinds}")
        if kinds.count(EventKind.SUBMITTED) > 1:
            problems.append(f"{video_id}: submitted more than once: {kinds}")
