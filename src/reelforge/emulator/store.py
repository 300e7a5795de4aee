"""The emulator's state: jobs and their lifecycle fields, characters and the ledger."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from reelforge.domain.catalog import ModelSpec
from reelforge.emulator.faults import PromptTags
from reelforge.emulator.render import RenderSpec

if TYPE_CHECKING:
    from reelforge.emulator.state import StateFile


class Status(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class Variant(StrEnum):
    VIDEO = "video"
    THUMBNAIL = "thumbnail"
    SPRITESHEET = "spritesheet"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]

    @property
    def extension(self) -> str:
        return _EXTENSIONS[self]


_MEDIA_TYPES = {
    Variant.VIDEO: "video/mp4",
    Variant.THUMBNAIL: "image/webp",
    Variant.SPRITESHEET: "image/jpeg",
}
_EXTENSIONS = {Variant.VIDEO: "mp4", Variant.THUMBNAIL: "webp", Variant.SPRITESHEET: "jpg"}


class Kind(StrEnum):
    CREATE = "create"
    REMIX = "remix"
    EDIT = "edit"
    EXTENSION = "extension"


class EmulatorClock:
    """Wall-clock seconds, shiftable forward by operators and tests (`POST /_emulator/clock`).

    Only the protocol's timestamps (`created_at`, `completed_at`, `expires_at`) and expiry use
    it; latencies and webhook signatures use the real one.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def new_video_id(created_at: int) -> str:
    # Real ids are `video_` + 48 hex, the first 8 being `created_at` in hex.
    return f"video_{created_at & 0xFFFFFFFF:08x}{secrets.token_hex(20)}"


def new_character_id() -> str:
    return f"char_{secrets.token_hex(16)}"


@dataclass
class Job:
    id: str
    seq: int
    kind: Kind
    created_at: int
    model: str
    model_spec: ModelSpec
    size: str
    seconds: str
    billed_seconds: int
    prompt: str
    tags: PromptTags
    spec: RenderSpec
    source_id: str | None
    extension_count: int
    cost: Decimal
    latency_seconds: float
    ttl_seconds: int
    planned_failure: str | None
    status: Status = Status.QUEUED
    # 1.0 once the assets are rendered and stored, possibly before the latency has passed.
    render_fraction: float = 0.0
    # Wall-clock (not the emulator clock): the latency counts on across a restart.
    started_at: float | None = None
    failed_progress: int = 0
    completed_at: int | None = None
    finished_at: int | None = None
    expires_at: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    asset_sizes: dict[str, int] = field(default_factory=dict)
    asset_sha256: dict[str, str] = field(default_factory=dict)
    # Its webhook event was prepared (or there was none to send).
    notified: bool = False
    # The Video object as the create call answers it, taken before the render starts: a
    # fast (or cached) render must not make a create answer anything but `queued`.
    created_view: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.status in (Status.QUEUED, Status.IN_PROGRESS)

    def progress(self) -> int:
        if self.status == Status.QUEUED:
            return 0
        if self.status == Status.COMPLETED:
            return 100
        if self.status == Status.FAILED:
            return self.failed_progress
        # In progress: the render's own progress, held back by the configured minimum latency.
        now = time.time()
        elapsed = max(0.0, now - (self.started_at or now))
        time_fraction = min(1.0, elapsed / self.latency_seconds) if self.latency_seconds else 1.0
        fraction = min(self.render_fraction, time_fraction)
        return max(1, min(99, int(fraction * 100)))

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_video(self) -> dict[str, Any]:
        """The protocol's Video object, every key present, in the real API's key order."""
        error = (
            {"code": self.error_code, "message": self.error_message}
            if self.status == Status.FAILED
            else None
        )
        return {
            "id": self.id,
            "object": "video",
            "created_at": self.created_at,
            "status": self.status.value,
            "completed_at": self.completed_at,
            "error": error,
            "expires_at": self.expires_at,
            "model": self.model,
            "progress": self.progress(),
            "prompt": self.prompt,
            "remixed_from_video_id": self.source_id,
            "seconds": self.seconds,
            "size": self.size,
        }


@dataclass
class Character:
    id: str
    name: str
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "created_at": self.created_at}


@dataclass
class LedgerEntry:
    """One row per job ever created; survives delete and eviction (until `ledger_limit`)."""

    id: str
    seq: int
    kind: Kind
    model: str
    size: str
    seconds: str
    billed_seconds: int
    cost: Decimal
    created_at: int
    source_id: str | None
    prompt: str
    status: Status = Status.QUEUED
    completed_at: int | None = None
    error_code: str | None = None
    deleted: bool = False
    evicted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "model": self.model,
            "size": self.size,
            "seconds": self.seconds,
            "billed_seconds": self.billed_seconds,
            "cost": str(self.cost),
            "billable": self.status == Status.COMPLETED,
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "status": self.status.value,
            "error_code": self.error_code,
            "source_video_id": self.source_id,
            "prompt": self.prompt,
            "deleted": self.deleted,
            "evicted": self.evicted,
        }


class JobStore:
    """Jobs by id in creation order, characters, and the ledger; every access holds the lock.

    With a state file, every change is written to it before the method returns, and the store
    starts from what the file holds.
    """

    def __init__(self, ledger_limit: int, state: StateFile | None = None) -> None:
        self.lock = threading.RLock()
        self.ledger_limit = ledger_limit
        self.state = state
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.characters: dict[str, Character] = {}
        self.ledger: OrderedDict[str, LedgerEntry] = OrderedDict()
        # sha256 of a finished video's bytes -> its id, so uploading a video we made finds it.
        self.by_video_sha256: dict[str, str] = {}
        self._seq = 0
        self.clock_offset = 0.0
        if state is not None:
            self._load(state)

    def _load(self, state: StateFile) -> None:
        snapshot = state.load()
        self.jobs.update((job.id, job) for job in snapshot.jobs)
        self.ledger.update((entry.id, entry) for entry in snapshot.ledger)
        self.characters.update((character.id, character) for character in snapshot.characters)
        for job in snapshot.jobs:
            digest = job.asset_sha256.get("video")
            if digest is not None:
                self.by_video_sha256.setdefault(digest, job.id)
        seqs = [job.seq for job in snapshot.jobs] + [entry.seq for entry in snapshot.ledger]
        self._seq = max(seqs, default=0)
        self.clock_offset = snapshot.clock_offset

    def next_seq(self) -> int:
        with self.lock:
            self._seq += 1
            return self._seq

    def add(self, job: Job) -> None:
        with self.lock:
            self.jobs[job.id] = job
            entry = LedgerEntry(
                id=job.id,
                seq=job.seq,
                kind=job.kind,
                model=job.model,
                size=job.size,
                seconds=job.seconds,
                billed_seconds=job.billed_seconds,
                cost=job.cost,
                created_at=job.created_at,
                source_id=job.source_id,
                prompt=job.prompt,
            )
            self.ledger[job.id] = entry
            dropped = []
            while len(self.ledger) > self.ledger_limit:
                dropped.append(self.ledger.popitem(last=False)[0])
            if self.state is not None:
                self.state.add(job, entry, dropped)

    def get(self, video_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(video_id)

    def save(self, job: Job) -> None:
        """Record a change of `job`'s lifecycle fields, in its ledger row too."""
        with self.lock:
            entry = self.ledger.get(job.id)
            if entry is not None:
                entry.status = job.status
                entry.completed_at = job.completed_at
                entry.error_code = job.error_code
            if self.state is not None and self.jobs.get(job.id) is job:
                self.state.save(job, entry)

    def remove(self, video_id: str, *, evicted: bool) -> Job | None:
        with self.lock:
            job = self.jobs.pop(video_id, None)
            if job is None:
                return None
            digest = job.asset_sha256.get("video")
            if digest is not None and self.by_video_sha256.get(digest) == video_id:
                # Identical requests make identical bytes: hand the digest to a survivor.
                del self.by_video_sha256[digest]
                for other in self.jobs.values():
                    if other.asset_sha256.get("video") == digest:
                        self.by_video_sha256[digest] = other.id
            entry = self.ledger.get(video_id)
            if entry is not None:
                entry.deleted = entry.deleted or not evicted
                entry.evicted = entry.evicted or evicted
            if self.state is not None:
                self.state.remove(video_id, entry)
            return job

    def add_character(self, character: Character) -> None:
        with self.lock:
            self.characters[character.id] = character
            if self.state is not None:
                self.state.add_character(character)

    def save_clock(self, offset: float) -> None:
        with self.lock:
            self.clock_offset = offset
            if self.state is not None:
                self.state.save_clock(offset)

    def ordered(self, *, descending: bool) -> list[Job]:
        with self.lock:
            jobs = list(self.jobs.values())
        return list(reversed(jobs)) if descending else jobs

    def ledger_seq(self, video_id: str) -> int | None:
        with self.lock:
            entry = self.ledger.get(video_id)
            return entry.seq if entry else None

    def ledger_rows(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            rows = [entry.to_json() for entry in self.ledger.values()]
        yield from rows

    def clear(self) -> None:
        with self.lock:
            self.jobs.clear()
            self.characters.clear()
            self.ledger.clear()
            self.by_video_sha256.clear()
            if self.state is not None:
                self.state.clear()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
