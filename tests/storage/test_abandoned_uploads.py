"""What a killed upload leaves in a local store (a hidden `<key>#<n>` staging file) is swept."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reelforge.storage import TEMPORARY_PREFIX, open_storage
from reelforge.storage.keys import InvalidKeyError

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC)


def staged(root: Path, name: str, age: timedelta) -> Path:
    path = root / TEMPORARY_PREFIX / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half a video")
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


async def test_old_staging_files_go_and_everything_else_stays(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}")
    kept = await storage.put_temporary(b"a whole temporary")
    old = staged(tmp_path, "20260101T000000Z-abc#1", timedelta(hours=2))
    young = staged(tmp_path, "20260101T000000Z-def#2", timedelta(minutes=1))
    not_staging = staged(tmp_path, "notes#draft", timedelta(hours=2))

    removed = await storage.remove_abandoned_uploads(TEMPORARY_PREFIX, NOW - timedelta(hours=1))

    assert removed == 1
    assert not old.exists()
    assert young.exists()
    assert not_staging.exists()
    assert await storage.exists(kept.key)
    # The listing never showed the staging file, which is why it needs its own sweep.
    listed = {info.key async for info in storage.list(TEMPORARY_PREFIX)}
    assert kept.key in listed
    assert f"{TEMPORARY_PREFIX}/{young.name}" not in listed


async def test_other_stores_have_nothing_to_sweep() -> None:
    storage = open_storage("memory://")
    assert await storage.remove_abandoned_uploads(TEMPORARY_PREFIX, NOW) == 0


async def test_the_prefix_is_validated(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}")
    with pytest.raises(InvalidKeyError):
        await storage.remove_abandoned_uploads("../elsewhere", NOW)
