"""The emulator's durable state: jobs, ledger, characters, webhooks and clock in one SQLite file."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from reelforge.domain.catalog import provider
from reelforge.emulator.faults import parse_tags
from reelforge.emulator.render import RenderSpec
from reelforge.emulator.store import Character, Job, Kind, LedgerEntry, Status, sha256_hex
from reelforge.emulator.webhooks import Delivery

STATE_FILE = "emulator.db"
LOCK_FILE = "lock"
ASSETS = "assets"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, spec TEXT NOT NULL, refs TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS characters (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY, webhook_id TEXT NOT NULL UNIQUE, data TEXT NOT NULL
);
"""
# Reference images are kept once each, however many derived jobs' specs carry them.
_UNREFERENCED_BLOBS = (
    "DELETE FROM blobs WHERE sha256 NOT IN (SELECT ref.value FROM jobs, json_each(jobs.refs) ref)"
)
# Not in a job's `data`: the catalog's model and the prompt's tags are looked up again on load,
# the render spec has its own column.
_DERIVED_FIELDS = frozenset({"model_spec", "tags", "spec"})


class StateDirBusy(RuntimeError):
    """Another emulator (in this or another process) has the state directory open."""


@dataclass
class Snapshot:
    """Everything read back from a state file, in creation order."""

    jobs: list[Job] = field(default_factory=list)
    ledger: list[LedgerEntry] = field(default_factory=list)
    characters: list[Character] = field(default_factory=list)
    clock_offset: float = 0.0


class StateFile:
    """Writes every change of the emulator's state before it is answered; reads it back on start.

    WAL mode with `synchronous=NORMAL`: a committed write survives the process dying (kill -9)
    and never leaves the file half-written; only a power cut may lose the last commits.
    Writes after `close()` are dropped: the emulator is shutting down and answers 503.
    One emulator at a time has a directory open (an advisory lock, released when its process
    ends however it ends): two would each resume, and render, the same pending jobs.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._owner = (directory / LOCK_FILE).open("a")
        try:
            fcntl.flock(self._owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._owner.close()
            raise StateDirBusy(f"the emulator state in {directory} is in use") from None
        self.path = directory / STATE_FILE
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, timeout=10
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
                self._owner.close()  # releases the lock

    def _write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Run `statements` in one transaction."""
        with self._lock:
            if self._db is None:
                return
            with self._db:
                for sql, parameters in statements:
                    self._db.execute(sql, parameters)

    # --- writes ---------------------------------------------------------------------------

    def add(self, job: Job, entry: LedgerEntry, dropped: list[str]) -> None:
        """A new job and its ledger row; `dropped` are ledger rows beyond the limit."""
        blobs: dict[str, bytes] = {}
        spec = json.dumps(_spec_json(job.spec, blobs))
        statements = [
            (
                "INSERT INTO jobs (id, seq, spec, refs, data) VALUES (?, ?, ?, ?, ?)",
                (job.id, job.seq, spec, json.dumps(sorted(blobs)), _job_json(job)),
            ),
            _ledger_row(entry),
        ]
        statements += [
            ("INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", (digest, data))
            for digest, data in blobs.items()
        ]
        statements += [("DELETE FROM ledger WHERE id = ?", (video_id,)) for video_id in dropped]
        self._write(statements)

    def save(self, job: Job, entry: LedgerEntry | None) -> None:
        """A job's changed lifecycle fields, and its ledger row with them."""
        statements = [("UPDATE jobs SET data = ? WHERE id = ?", (_job_json(job), job.id))]
        if entry is not None:
            statements.append(_ledger_row(entry))
        self._write(statements)

    def remove(self, video_id: str, entry: LedgerEntry | None) -> None:
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("DELETE FROM jobs WHERE id = ?", (video_id,))
        ]
        if entry is not None:
            statements.append(_ledger_row(entry))
        statements.append((_UNREFERENCED_BLOBS, ()))
        self._write(statements)

    def add_character(self, character: Character) -> None:
        data = json.dumps(dataclasses.asdict(character))
        self._write([("INSERT INTO characters (id, data) VALUES (?, ?)", (character.id, data))])

    def save_clock(self, offset: float) -> None:
        self._write(
            [("INSERT OR REPLACE INTO meta (key, value) VALUES ('clock_offset', ?)", (offset,))]
        )

    def save_delivery(self, delivery: Delivery, *, keep: int) -> None:
        """A webhook delivery and its attempts so far; only the newest `keep` are kept."""
        data = json.dumps(dataclasses.asdict(delivery))
        self._write(
            [
                (
                    "INSERT INTO deliveries (webhook_id, data) VALUES (?, ?) "
                    "ON CONFLICT (webhook_id) DO UPDATE SET data = excluded.data",
                    (delivery.webhook_id, data),
                ),
                (
                    "DELETE FROM deliveries WHERE seq <= (SELECT max(seq) FROM deliveries) - ?",
                    (keep,),
                ),
            ]
        )

    def deliveries(self, newest: int) -> list[Delivery]:
        """The `newest` webhook deliveries, oldest first."""
        with self._lock:
            assert self._db is not None, "the state file is closed"
            rows = self._db.execute(
                "SELECT data FROM deliveries ORDER BY seq DESC LIMIT ?", (newest,)
            ).fetchall()
        return [Delivery(**_known(Delivery, json.loads(data))) for (data,) in reversed(rows)]

    def clear(self) -> None:
        self._write(
            [
                ("DELETE FROM jobs", ()),
                ("DELETE FROM ledger", ()),
                ("DELETE FROM characters", ()),
                ("DELETE FROM blobs", ()),
                ("DELETE FROM meta", ()),
                ("DELETE FROM deliveries", ()),
            ]
        )

    # --- reads ----------------------------------------------------------------------------

    def load(self) -> Snapshot:
        with self._lock:
            assert self._db is not None, "the state file is closed"
            db = self._db
            blobs = dict(db.execute("SELECT sha256, data FROM blobs").fetchall())
            snapshot = Snapshot(
                jobs=[
                    _job(json.loads(data), _spec(json.loads(spec), blobs))
                    for (data, spec) in db.execute("SELECT data, spec FROM jobs ORDER BY seq")
                ],
                ledger=[
                    _ledger_entry(json.loads(data))
                    for (data,) in db.execute("SELECT data FROM ledger ORDER BY seq")
                ],
                characters=[
                    Character(**json.loads(data))
                    for (data,) in db.execute("SELECT data FROM characters ORDER BY rowid")
                ],
            )
            offset = db.execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()
        snapshot.clock_offset = float(offset[0]) if offset else 0.0
        return snapshot


def read_ledger(directory: Path) -> list[LedgerEntry]:
    """The ledger in a state directory, read-only: an emulator may be running on it."""
    with contextlib.closing(
        sqlite3.connect(f"{(directory / STATE_FILE).resolve().as_uri()}?mode=ro", uri=True)
    ) as db:
        rows = db.execute("SELECT data FROM ledger ORDER BY seq").fetchall()
    return [_ledger_entry(json.loads(data)) for (data,) in rows]


# --- rows -----------------------------------------------------------------------------------


def _job_json(job: Job) -> str:
    """A job's own fields; the render spec is written once, beside it, when the job is added."""
    data = {
        item.name: getattr(job, item.name)
        for item in dataclasses.fields(job)
        if item.name not in _DERIVED_FIELDS
    }
    data["cost"] = str(job.cost)
    # The model as the catalog names it: `model` itself may be a dated snapshot's name.
    data["model_spec"] = job.model_spec.name
    return json.dumps(data)


def _job(data: dict[str, Any], spec: RenderSpec | None) -> Job:
    assert spec is not None, f"job {data['id']} has no render spec"
    data["kind"] = Kind(data["kind"])
    data["status"] = Status(data["status"])
    data["cost"] = Decimal(data["cost"])
    data["model_spec"] = provider("emulator").model(data["model_spec"])
    data["tags"] = parse_tags(data["prompt"])
    return Job(**_known(Job, data), spec=spec)


def _ledger_row(entry: LedgerEntry) -> tuple[str, tuple[Any, ...]]:
    data = dataclasses.asdict(entry)
    data["cost"] = str(entry.cost)
    return (
        "INSERT OR REPLACE INTO ledger (id, seq, data) VALUES (?, ?, ?)",
        (entry.id, entry.seq, json.dumps(data)),
    )


def _ledger_entry(data: dict[str, Any]) -> LedgerEntry:
    data["kind"] = Kind(data["kind"])
    data["status"] = Status(data["status"])
    data["cost"] = Decimal(data["cost"])
    return LedgerEntry(**_known(LedgerEntry, data))


def _known(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data` without keys `cls` has no field for: a file written by an older or newer version
    loads, its missing fields taking their defaults."""
    names = {item.name for item in dataclasses.fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def _spec_json(spec: RenderSpec | None, blobs: dict[str, bytes]) -> dict[str, Any] | None:
    """A render spec as JSON; its reference image goes to `blobs`, named by its SHA-256."""
    if spec is None:
        return None
    reference = None
    if spec.reference_image is not None:
        reference = sha256_hex(spec.reference_image)
        blobs[reference] = spec.reference_image
    return {
        "prompt": spec.prompt,
        "width": spec.width,
        "height": spec.height,
        "seconds": spec.seconds,
        "seed": spec.seed,
        "parent": _spec_json(spec.parent, blobs),
        "extends": _spec_json(spec.extends, blobs),
        "reference_sha256": reference,
    }


def _spec(data: dict[str, Any] | None, blobs: dict[str, bytes]) -> RenderSpec | None:
    if data is None:
        return None
    reference = data.pop("reference_sha256")
    parent = _spec(data.pop("parent"), blobs)
    extends = _spec(data.pop("extends"), blobs)
    return RenderSpec(
        **data,
        parent=parent,
        extends=extends,
        reference_image=blobs[reference] if reference is not None else None,
    )
