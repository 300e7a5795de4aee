"""The storage contract, run alike against a local directory, memory and a loopback S3 server."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from reelforge.storage import (
    IntegrityError,
    InvalidKeyError,
    ObjectNotFoundError,
    Storage,
    StorageError,
    StoredObject,
    open_storage,
)
from reelforge.storage.objects import PART_SIZE
from tests.support.s3 import S3Bucket

pytestmark = pytest.mark.anyio

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every byte value, so offsets are checkable


@pytest.fixture(params=["local", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage((tmp_path / "objects").as_uri())
    if request.param == "memory":
        return open_storage("memory://")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return bucket.open()


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def test_round_trip_reports_size_and_hash(storage: Storage) -> None:
    stored = await storage.put("videos/v1/video.mp4", chunked(PAYLOAD, 100_000))

    assert stored == StoredObject(
        key="videos/v1/video.mp4", size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest()
    )
    assert await storage.read("videos/v1/video.mp4") == PAYLOAD
    assert await storage.sha256("videos/v1/video.mp4") == stored.sha256
    assert (await storage.head("videos/v1/video.mp4")).size == len(PAYLOAD)


async def test_streamed_write_larger_than_a_part(storage: Storage) -> None:
    data = PAYLOAD * 10  # 10 MiB: obstore goes multipart past one 8 MiB part

    stored = await storage.put("big.bin", chunked(data, 1 << 20))

    assert stored.size == len(data)
    assert await storage.sha256("big.bin") == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [0, PART_SIZE - 1, PART_SIZE, PART_SIZE + 1])
async def test_streams_on_either_side_of_one_part_arrive_whole(storage: Storage, size: int) -> None:
    """What fits in a part goes up as one buffer, the rest as a stream: both whole, both hashed."""
    data = (PAYLOAD * (size // len(PAYLOAD) + 1))[:size]

    stored = await storage.put("edge.bin", chunked(data, 3 << 20))

    assert (stored.size, stored.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert await storage.sha256("edge.bin") == stored.sha256


async def test_overwrite_replaces_the_object(storage: Storage) -> None:
    await storage.put("a/b.txt", b"first")
    await storage.put("a/b.txt", b"second")

    assert await storage.read("a/b.txt") == b"second"


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 1), (0, None), (1000, 5000), (len(PAYLOAD) - 10, None), (len(PAYLOAD) - 10, 100)],
)
async def test_ranges_return_exactly_the_slice(
    storage: Storage, start: int, length: int | None
) -> None:
    await storage.put("r.bin", PAYLOAD)

    stream = await storage.open("r.bin", start, length)
    body = b"".join([chunk async for chunk in stream.chunks])

    expected = PAYLOAD[start:] if length is None else PAYLOAD[start : start + length]
    assert body == expected
    assert stream.length == len(expected)
    assert stream.end == start + len(expected) - 1
    assert stream.info.size == len(PAYLOAD)


async def test_range_at_the_end_is_empty_and_past_it_is_refused(storage: Storage) -> None:
    await storage.put("r.bin", b"12345")

    empty = await storage.open("r.bin", 5)
    assert [chunk async for chunk in empty.chunks] == []
    with pytest.raises(ValueError, match="outside"):
        await storage.open("r.bin", 6)


async def test_missing_objects_are_not_found(storage: Storage) -> None:
    with pytest.raises(ObjectNotFoundError):
        await storage.head("nothing/here")
    with pytest.raises(ObjectNotFoundError):
        await storage.read("nothing/here")
    assert not await storage.exists("nothing/here")


async def test_delete_is_idempotent(storage: Storage) -> None:
    await storage.put("gone.txt", b"x")

    await storage.delete("gone.txt")
    await storage.delete("gone.txt")

    assert not await storage.exists("gone.txt")


async def test_commit_moves_a_temporary_object(storage: Storage) -> None:
    temporary = await storage.put_temporary(chunked(PAYLOAD, 65536))
    assert temporary.key.startswith("tmp/")

    committed = await storage.commit(temporary, "videos/v2/video.mp4")

    assert committed.key == "videos/v2/video.mp4"
    assert committed.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert await storage.read("videos/v2/video.mp4") == PAYLOAD
    assert not await storage.exists(temporary.key)


async def test_commit_refuses_a_truncated_temporary(storage: Storage) -> None:
    temporary = await storage.put_temporary(b"short")
    claimed = StoredObject(key=temporary.key, size=1000, sha256=temporary.sha256)

    with pytest.raises(IntegrityError):
        await storage.commit(claimed, "videos/v3/video.mp4")

    assert not await storage.exists("videos/v3/video.mp4")
    assert await storage.exists(temporary.key)


async def test_list_by_prefix(storage: Storage) -> None:
    for key in ("videos/a/video.mp4", "videos/a/thumbnail.webp", "videos/b/video.mp4", "x.txt"):
        await storage.put(key, b"data")

    listed = sorted([info.key async for info in storage.list("videos/a")])

    assert listed == ["videos/a/thumbnail.webp", "videos/a/video.mp4"]


async def test_check_passes_on_a_reachable_store(storage: Storage) -> None:
    await storage.check()


HOSTILE_KEYS = [
    "",
    "../escape",
    "videos/../../etc/passwd",
    "/etc/passwd",
    "videos//double",
    "videos/",
    "./here",
    "..",
    "a\\..\\b",
    "C:/windows",
    "videos/\x00nul",
    "videos/new\nline",
    ".hidden/key",
    "-rf",
    "x" * 600,
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_hostile_keys_are_refused_before_touching_the_store(
    storage: Storage, key: str
) -> None:
    with pytest.raises(InvalidKeyError):
        await storage.put(key, b"evil")
    with pytest.raises(InvalidKeyError):
        await storage.head(key)
    with pytest.raises(InvalidKeyError):
        await storage.delete(key)
    with pytest.raises(InvalidKeyError):
        await storage.presigned_url(key, timedelta(minutes=1))
    assert [info async for info in storage.list()] == []


async def test_hostile_keys_leave_the_local_directory_alone(tmp_path: Path) -> None:
    root = tmp_path / "root" / "objects"
    storage = open_storage(root.as_uri())
    for key in HOSTILE_KEYS:
        with pytest.raises(InvalidKeyError):
            await storage.put(key, b"evil")

    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_presigned_url_serves_the_object_from_s3(s3_bucket: S3Bucket) -> None:
    storage = s3_bucket.open()
    await storage.put("videos/v1/video.mp4", PAYLOAD)

    url = await storage.presigned_url("videos/v1/video.mp4", timedelta(minutes=5))

    assert url is not None
    assert "X-Amz-Signature" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == PAYLOAD


@pytest.mark.parametrize("url", [lambda p: p.as_uri(), lambda p: "memory://"])
async def test_local_and_memory_stores_do_not_presign(tmp_path: Path, url: object) -> None:
    storage = open_storage(url(tmp_path))  # type: ignore[operator]
    await storage.put("a.txt", b"x")

    assert not storage.can_presign
    assert await storage.presigned_url("a.txt", timedelta(minutes=5)) is None


async def test_unreachable_bucket_fails_the_check(s3_endpoint: str) -> None:
    storage = open_storage(
        "s3://no-such-bucket-here",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )

    with pytest.raises(StorageError):
        await storage.check()


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://", "objects"])
def test_unknown_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="storage URL"):
        open_storage(url)
