"""Export from each database dialect and import into a fresh SQLite installation."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

import pytest

from reelforge.db import migrate
from reelforge.db.engine import Database
from reelforge.db.models import Video
from reelforge.domain.accounts import Account
from reelforge.domain.clock import utcnow
from reelforge.domain.states import JobState
from reelforge.domain.upstream import Variant
from reelforge.services.accounts import Accounts
from reelforge.services.archive import archive_key
from reelforge.services.exports import Exports
from reelforge.storage import IntegrityError, open_storage
from tests.support.accounts import FAST_HASHER, PASSWORD
from tests.support.engine import video_row

pytestmark = pytest.mark.anyio

FILES = {Variant.VIDEO: b"mp4" * 300, Variant.THUMBNAIL: b"webp" * 20, Variant.SPRITESHEET: b"jp"}


async def _archived(
    database: Database, storage_url: str, owner: Account, video_id: str, source: str | None = None
) -> None:
    storage = open_storage(storage_url)
    video = Video(
        id=video_id,
        owner_id=owner.id,
        provider="emulator",
        provider_video_id=f"up_{video_id}",
        model="sora-2",
        prompt=f"prompt of {video_id}",
        size="1280x720",
        seconds=4,
        remixed_from_video_id=source,
        job_state=JobState.COMPLETED,
        progress=100,
        completed_at=utcnow(),
        archived_at=utcnow(),
        cost_estimate=Decimal("0.4"),
        cost_final=Decimal("0.4"),
    )
    for variant, data in FILES.items():
        stored = await storage.put(archive_key(video_id, variant), data)
        setattr(video, f"{variant.value}_key", stored.key)
        setattr(video, f"{variant.value}_bytes", stored.size)
        setattr(video, f"{variant.value}_sha256", stored.sha256)
    async with database.session() as session, session.begin():
        session.add(video)


async def test_round_trip_into_a_fresh_installation(
    database: Database, ada: Account, tmp_path: Path
) -> None:
    source_store = (tmp_path / "source").as_uri()
    await _archived(database, source_store, ada, "video_a")
    await _archived(database, source_store, ada, "video_b", source="video_a")
    fresh_url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await migrate.upgrade(fresh_url)
    fresh = Database(fresh_url)
    fresh_store = (tmp_path / "fresh").as_uri()
    try:
        await Accounts(fresh, FAST_HASHER).create(ada.email, PASSWORD)

        exported = await Exports(database, open_storage(source_store)).export(tmp_path / "out")
        imported = await Exports(fresh, open_storage(fresh_store)).import_(tmp_path / "out")
        again = await Exports(fresh, open_storage(fresh_store)).import_(tmp_path / "out")

        assert (exported.done, imported.done, again.done, again.skipped) == (2, 2, 0, 2)
        copy = await video_row(fresh, "video_b")
        assert copy.remixed_from_video_id == "video_a"
        assert copy.job_state == JobState.COMPLETED
        assert copy.provider_video_id is None
        assert copy.metadata_["imported"]["provider_video_id"] == "up_video_b"
        for variant, data in FILES.items():
            digest = hashlib.sha256(data).hexdigest()
            assert getattr(copy, f"{variant.value}_sha256") == digest
            key = getattr(copy, f"{variant.value}_key")
            assert await open_storage(fresh_store).sha256(key) == digest
    finally:
        await fresh.close()


async def test_an_archive_that_no_longer_matches_its_record_stops_the_export(
    database: Database, ada: Account, tmp_path: Path
) -> None:
    store = (tmp_path / "source").as_uri()
    await _archived(database, store, ada, "video_a")
    await open_storage(store).put(archive_key("video_a", Variant.THUMBNAIL), b"rotten")

    with pytest.raises(IntegrityError, match="thumbnail"):
        await Exports(database, open_storage(store)).export(tmp_path / "out")

    folder = tmp_path / "out" / "videos" / "video_a"
    assert not (folder / "metadata.json").exists()
    assert not (folder / "thumbnail.webp").exists()
