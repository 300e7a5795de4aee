"""The emulated upstream: its parts wired together, reads, characters and operator controls."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from reelforge.domain.catalog import ProviderSpec, provider
from reelforge.emulator.assets import AssetStore
from reelforge.emulator.bodies import Body, reject_unknown
from reelforge.emulator.errors import (
    EXPIRED,
    FAILED,
    NOT_READY,
    EmulatorError,
    invalid_value,
    not_found,
)
from reelforge.emulator.faults import FaultState
from reelforge.emulator.intake import Intake
from reelforge.emulator.jobs import Engine, Renderer
from reelforge.emulator.requests import CHARACTER_FIELDS, character_name
from reelforge.emulator.settings import EmulatorSettings
from reelforge.emulator.state import ASSETS, StateFile
from reelforge.emulator.stats import Stats
from reelforge.emulator.store import (
    Character,
    EmulatorClock,
    Job,
    JobStore,
    Status,
    Variant,
    new_character_id,
)
from reelforge.emulator.webhooks import WebhookSender


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    has_more: bool


class Emulator:
    """One emulated upstream: its jobs, faults, engine, webhooks and counters."""

    def __init__(self, settings: EmulatorSettings, renderer: Renderer) -> None:
        self.settings = settings
        self.catalog: ProviderSpec = provider("emulator")
        self.state = StateFile(settings.state_dir) if settings.state_dir is not None else None
        self.store = JobStore(settings.ledger_limit, self.state)
        self.clock = EmulatorClock()
        self.clock.offset = self.store.clock_offset
        asset_dir = settings.asset_dir
        if asset_dir is None and settings.state_dir is not None:
            asset_dir = settings.state_dir / ASSETS
        self.assets = AssetStore(asset_dir)
        self.faults = FaultState(settings)
        self.stats = Stats()
        self.webhooks = WebhookSender(settings, self.state)
        self.engine = Engine(
            settings,
            self.store,
            self.assets,
            self.clock,
            self.webhooks,
            renderer,
            drop_webhooks=lambda: self.faults.current().drop_webhooks,
        )
        self.intake = Intake(
            settings,
            self.catalog,
            self.store,
            self.clock,
            self.faults,
            self.engine,
            self.retrieve,
        )
        # From the state file: everything goes on where it was.
        for delivery in self.webhooks.unfinished():
            self.engine.redeliver(delivery)
        for job in self.store.ordered(descending=False):
            if job.pending:
                self.engine.submit(job)
            elif not job.notified:
                self.engine.notify(job)

    def close(self) -> None:
        self.engine.close()
        if self.state is not None:
            self.state.close()

    # --- reads ----------------------------------------------------------------------------

    def retrieve(self, video_id: str, *, param: str | None = None) -> Job:
        job = self.store.get(video_id)
        if job is None:
            raise not_found("video", video_id, param)
        return job

    def list_videos(self, *, after: str | None, limit: int, descending: bool) -> Page:
        jobs = self.store.ordered(descending=descending)
        if after is not None:
            seq = self.store.ledger_seq(after)
            if seq is None:
                raise invalid_value("after", f"Invalid 'after': no video found with id '{after}'.")
            # Cursor by creation order, so a cursor survives its video being deleted.
            jobs = [job for job in jobs if (job.seq < seq if descending else job.seq > seq)]
        return Page(jobs=jobs[:limit], has_more=len(jobs) > limit)

    def delete(self, video_id: str) -> None:
        job = self.retrieve(video_id)
        if job.pending:
            raise EmulatorError(
                400,
                f"Video '{video_id}' is still {job.status.value}; only completed or failed "
                "videos can be deleted.",
                code=NOT_READY,
            )
        self.store.remove(video_id, evicted=False)
        self.assets.delete(video_id)

    def content(self, video_id: str, variant: Variant) -> tuple[Job, bytes]:
        job = self.retrieve(video_id)
        if job.status == Status.FAILED:
            raise EmulatorError(400, f"Video '{video_id}' failed and has no content.", code=FAILED)
        if job.status != Status.COMPLETED:
            raise EmulatorError(
                400,
                f"Video '{video_id}' is not ready yet (status: {job.status.value}); download "
                "its content once it is completed.",
                code=NOT_READY,
            )
        if job.expired(self.clock.now()):
            raise EmulatorError(
                400,
                f"The content of video '{video_id}' expired at {job.expires_at}.",
                code=EXPIRED,
            )
        data = self.assets.get(video_id, variant)
        if data is None:  # deleted or evicted between the checks
            raise not_found("video", video_id)
        return job, data

    # --- characters -----------------------------------------------------------------------

    def create_character(self, body: Body) -> Character:
        reject_unknown(body, CHARACTER_FIELDS)
        name = character_name(body)
        character = Character(id=new_character_id(), name=name, created_at=int(self.clock.now()))
        self.store.add_character(character)
        return character

    def get_character(self, character_id: str) -> Character:
        with self.store.lock:
            character = self.store.characters.get(character_id)
        if character is None:
            raise not_found("character", character_id)
        return character

    # --- controls -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every job, character, ledger row, counter and delivery; faults from settings."""
        self.engine.cancel_all()
        self.store.clear()
        self.assets.clear()
        self.faults.reset()
        self.stats.clear()
        self.webhooks.clear()
        self.clock.offset = 0.0

    def advance_clock(self, seconds: float) -> int:
        self.clock.advance(seconds)
        self.store.save_clock(self.clock.offset)
        return self.engine.sweep()

    def overview(self) -> dict[str, Any]:
        with self.store.lock:
            counts = Counter(job.status.value for job in self.store.jobs.values())
            jobs = len(self.store.jobs)
        return {
            "jobs": jobs,
            "by_status": dict(counts),
            "ledger_rows": len(self.store.ledger),
            "asset_bytes_in_memory": self.assets.bytes_held(),
            "clock_offset_seconds": self.clock.offset,
        }
