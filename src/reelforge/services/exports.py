"""Export archived videos (files and metadata, checked against the archive's sha256) and
import such an export into another installation.

An export is a directory (or a zip of one):

    manifest.json                      what was exported, written last
    videos/<video id>/metadata.json    prompt, parameters, provider, model, lineage, cost,
                                       owner, times and every file's size and sha256
    videos/<video id>/video.mp4, thumbnail.webp, spritesheet.jpg

A video's metadata.json is written after its files, so a directory where it exists holds that
video whole; an interrupted export run again skips those (after re-hashing their files) and
does the rest. Import checks every file against its metadata before it stores anything, and
skips videos the installation already has, so it can be run again too.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import select

from reelforge.db.engine import Database
from reelforge.db.models import LedgerEntry, User, Video
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import InputError, NotFoundError
from reelforge.domain.states import JobState
from reelforge.domain.upstream import Variant
from reelforge.services.archive import archive_key
from reelforge.storage import IntegrityError, Storage

FORMAT = "reelforge-export"
VERSION = 1
MANIFEST = "manifest.json"
METADATA = "metadata.json"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Tally:
    """What a run did: videos written (or stored), and videos already there."""

    done: int
    skipped: int
    path: Path


class Exports:
    """Export and import of archived videos, on the installation's database and storage."""

    def __init__(self, database: Database, storage: Storage) -> None:
        self._database = database
        self._storage = storage

    async def export(self, target: Path, *, owner_email: str | None = None) -> Tally:
        """Every archived video (of `owner_email`, or of everyone) into `target`: a directory,
        or a zip when it ends in `.zip` (built in `<target>.partial/`, kept until done)."""
        as_zip = target.suffix.lower() == ".zip"
        directory = target.with_name(target.name + ".partial") if as_zip else target
        done = skipped = 0
        exported: list[str] = []
        async for video, email in self._archived(owner_email):
            folder = directory / "videos" / video.id
            if await _complete(folder):
                skipped += 1
            else:
                await self._export_one(video, email, folder)
                done += 1
            exported.append(video.id)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": utcnow().isoformat(),
            "owner": owner_email,
            "videos": exported,
        }
        await _write_json(directory / MANIFEST, manifest)
        if as_zip:
            await anyio.to_thread.run_sync(_zip, directory, target)
        return Tally(done, skipped, target)

    async def import_(self, source: Path, *, owner_email: str | None = None) -> Tally:
        """Store an export's videos here, each checked against its sha256; owners are found
        by email (or all given to `owner_email`) and must exist."""
        if source.suffix.lower() == ".zip":
            with tempfile.TemporaryDirectory(prefix="reelforge-import-") as unpacked:
                await anyio.to_thread.run_sync(_unzip, source, Path(unpacked))
                tally = await self._import_directory(Path(unpacked), owner_email)
            return Tally(tally.done, tally.skipped, source)
        return await self._import_directory(source, owner_email)

    async def _import_directory(self, source: Path, owner_email: str | None) -> Tally:
        manifest = await _read_json(source / MANIFEST)
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise InputError("source", f"{source} is not a Reelforge export (version {VERSION})")
        entries = [
            await _read_json(source / "videos" / vid / METADATA) for vid in manifest["videos"]
        ]
        # Sources before their remixes, so lineage points at rows that exist.
        entries.sort(key=lambda entry: str(entry["created_at"]))
        done = skipped = 0
        for entry in entries:
            if await self._import_one(source / "videos" / entry["id"], entry, owner_email):
                done += 1
            else:
                skipped += 1
        return Tally(done, skipped, source)

    async def _archived(self, owner_email: str | None) -> AsyncIterator[tuple[Video, str]]:
        query = (
            select(Video, User.email)
            .join(User, User.id == Video.owner_id)
            .where(Video.job_state == JobState.COMPLETED, Video.deleted_at.is_(None))
            .where(Video.video_key.is_not(None))
            .order_by(Video.created_at, Video.id)
        )
        async with self._database.session() as session:
            if owner_email is not None:
                owner = await session.scalar(select(User.id).where(User.email == owner_email))
                if owner is None:
                    raise NotFoundError("user", owner_email)
                query = query.where(Video.owner_id == owner)
            rows = (await session.execute(query)).all()
        for video, email in rows:
            yield video, email

    async def _export_one(self, video: Video, email: str, folder: Path) -> None:
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        files: dict[str, dict[str, Any]] = {}
        for variant in Variant:
            key, size, sha256 = _archived_file(video, variant)
            if key is None:
                continue
            name = f"{variant.value}.{variant.extension}"
            await self._copy_out(key, sha256, folder / name)
            files[variant.value] = {"file": name, "bytes": size, "sha256": sha256}
        await _write_json(folder / METADATA, _metadata(video, email, files))

    async def _copy_out(self, key: str, sha256: str | None, target: Path) -> None:
        draft = anyio.Path(target.with_name(f".{target.name}.part"))
        digest = hashlib.sha256()
        stream = await self._storage.open(key)
        async with await anyio.open_file(draft, "wb") as sink:
            async for chunk in stream.chunks:
                digest.update(chunk)
                await sink.write(chunk)
        if digest.hexdigest() != sha256:
            await draft.unlink()
            raise IntegrityError(
                f"{key}: the archive holds sha256 {digest.hexdigest()}, its record says {sha256}"
            )
        await draft.rename(target)

    async def _import_one(
        self, folder: Path, entry: dict[str, Any], owner_email: str | None
    ) -> bool:
        video_id = str(entry["id"])
        email = owner_email or str(entry["owner"])
        async with self._database.session() as session:
            if await session.get(Video, video_id) is not None:
                return False
            owner = await session.scalar(select(User.id).where(User.email == email))
        if owner is None:
            raise NotFoundError("user", email)
        for file in entry["files"].values():
            if await _hash_file(folder / file["file"]) != file["sha256"]:
                raise IntegrityError(f"{video_id}/{file['file']} does not match its sha256")
        stored: dict[Variant, tuple[str, int, str]] = {}
        for variant_name, file in entry["files"].items():
            variant = Variant(variant_name)
            key = archive_key(video_id, variant)
            put = await self._storage.put(key, _chunks(folder / file["file"]))
            if put.sha256 != file["sha256"]:
                raise IntegrityError(f"{key} was stored with a different sha256")
            stored[variant] = (key, put.size, put.sha256)
        async with self._database.session() as session, session.begin():
            lineage = entry["lineage"]["remixed_from_video_id"]
            if lineage is not None and await session.get(Video, lineage) is None:
                lineage = None
            session.add(_row(entry, owner, lineage, stored))
            await session.flush()  # the video before its ledger row (no relationship orders them)
            # Spent on the other installation: a zero row that keeps it out of this one's
            # quota (db.videos.videos_counted_since), budget and spend.
            session.add(
                LedgerEntry(user_id=owner, video_id=video_id, kind="import", amount=Decimal(0))
            )
        return True


def _archived_file(video: Video, variant: Variant) -> tuple[str | None, int | None, str | None]:
    return (
        getattr(video, f"{variant.value}_key"),
        getattr(video, f"{variant.value}_bytes"),
        getattr(video, f"{variant.value}_sha256"),
    )


def _metadata(video: Video, email: str, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def when(moment: datetime | None) -> str | None:
        return None if moment is None else moment.isoformat()

    return {
        "id": video.id,
        "owner": email,
        "prompt": video.prompt,
        "parameters": {"model": video.model, "size": video.size, "seconds": str(video.seconds)},
        "provider": video.provider,
        "provider_video_id": video.provider_video_id,
        "model": video.model,
        "lineage": {"remixed_from_video_id": video.remixed_from_video_id},
        "cost": {
            "currency": "USD",
            "estimate": str(video.cost_estimate),
            "final": None if video.cost_final is None else str(video.cost_final),
        },
        "created_at": when(video.created_at),
        "completed_at": when(video.completed_at),
        "archived_at": when(video.archived_at),
        "metadata": video.metadata_,
        "files": files,
    }


def _row(
    entry: dict[str, Any],
    owner_id: str,
    lineage: str | None,
    stored: dict[Variant, tuple[str, int, str]],
) -> Video:
    parameters = entry["parameters"]
    cost = entry["cost"]
    video = Video(
        id=entry["id"],
        owner_id=owner_id,
        provider=entry["provider"],
        # Not the upstream id: that job belongs to the other installation (and may be gone).
        provider_video_id=None,
        model=parameters["model"],
        prompt=entry["prompt"],
        size=parameters["size"],
        seconds=int(parameters["seconds"]),
        remixed_from_video_id=lineage,
        progress=100,
        created_at=datetime.fromisoformat(entry["created_at"]),
        completed_at=_moment(entry["completed_at"]),
        archived_at=_moment(entry["archived_at"]),
        cost_estimate=Decimal(cost["estimate"]),
        cost_final=None if cost["final"] is None else Decimal(cost["final"]),
        metadata_={
            **(entry.get("metadata") or {}),
            "imported": {
                "at": utcnow().isoformat(),
                "provider_video_id": entry["provider_video_id"],
            },
        },
        job_state=JobState.COMPLETED,
    )
    for variant, (key, size, sha256) in stored.items():
        setattr(video, f"{variant.value}_key", key)
        setattr(video, f"{variant.value}_bytes", size)
        setattr(video, f"{variant.value}_sha256", sha256)
    return video


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def _complete(folder: Path) -> bool:
    """Whether a previous run exported this video whole (its files match its metadata)."""
    if not await anyio.Path(folder / METADATA).exists():
        return False
    entry = await _read_json(folder / METADATA)
    for file in entry["files"].values():
        path = folder / file["file"]
        if not await anyio.Path(path).exists() or await _hash_file(path) != file["sha256"]:
            return False
    return True


async def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    async for chunk in _chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as source:
        while chunk := await source.read(_CHUNK):
            yield chunk


async def _write_json(path: Path, value: dict[str, Any]) -> None:
    draft = anyio.Path(path.with_name(f".{path.name}.part"))
    await draft.write_text(json.dumps(value, indent=2, default=str) + "\n")
    await draft.rename(path)


async def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(await anyio.Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError("source", f"cannot read {path}: {exc}") from None
    if not isinstance(value, dict):
        raise InputError("source", f"{path} is not a JSON object")
    return value


def _zip(directory: Path, target: Path) -> None:
    draft = target.with_name(f".{target.name}.part")
    # Stored, not deflated: MP4, WebP and JPEG are compressed already.
    with zipfile.ZipFile(draft, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                archive.write(path, path.relative_to(directory).as_posix())
    draft.replace(target)
    shutil.rmtree(directory)


def _unzip(source: Path, directory: Path) -> None:
    with zipfile.ZipFile(source) as archive:
        for name in archive.namelist():
            # Only the export's own layout: no absolute paths, no `..`, nothing outside.
            parts = Path(name).parts
            if Path(name).is_absolute() or ".." in parts:
                raise InputError("source", f"{source} holds an unsafe path {name!r}")
        archive.extractall(directory)
