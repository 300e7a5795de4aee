"""Video use cases: estimate, create, remix, read, list, cancel, delete, events and content."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from reelforge.db import videos as queries
from reelforge.db.claim import record_of
from reelforge.db.engine import Database
from reelforge.domain.accounts import Account
from reelforge.domain.catalog import Feature, ProviderSpec
from reelforge.domain.clock import utcnow
from reelforge.domain.errors import ConflictError, InputError, NotFoundError, NotReadyError
from reelforge.domain.ids import new_video_id
from reelforge.domain.lifecycle import cancelled, deleted
from reelforge.domain.quotas import check_limits
from reelforge.domain.records import VideoRecord
from reelforge.domain.routing import Routes
from reelforge.domain.states import JobState
from reelforge.domain.upstream import ImageBytes, Variant
from reelforge.domain.videos import (
    MAX_LIST_LIMIT,
    ArchivedObject,
    EventKind,
    EventView,
    Order,
    Page,
    VideoRequest,
    VideoView,
    check_prompt,
    require_feature,
    video_request,
)
from reelforge.services.lifecycle import Lifecycle
from reelforge.services.quotas import usage_of
from reelforge.services.read_cache import ReadCache
from reelforge.services.references import check_reference
from reelforge.storage import Storage

# Called once a create or remix has passed every check and is about to be accepted: where the
# HTTP layer counts it against the create rate limit, so a refused request uses up no slot.
Admit = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class NewVideo:
    """What a caller asks for; unchecked until `Videos.create` checks it."""

    prompt: object
    model: str | None = None
    size: str | None = None
    seconds: str | int | None = None
    input_reference: bytes | None = None
    idempotency_key: str | None = None
    # The guide's model tier (standard or high), used when no model is named.
    quality: str | None = None


class Videos:
    """Every entry point (the /api routes, the /v1 gateway, the CLI) goes through here."""

    def __init__(
        self,
        database: Database,
        storage: Storage,
        spec: ProviderSpec | Routes,
        lifecycle: Lifecycle,
        *,
        max_prompt_length: int,
        cache: ReadCache | None = None,
    ) -> None:
        self._database = database
        self._cache = cache or ReadCache()
        self._lifecycle = lifecycle
        self._storage = storage
        # One provider's catalog, or several configured at once and routed by model name.
        self.routes = spec if isinstance(spec, Routes) else Routes({spec.name: spec}, spec.name)
        self.spec = self.routes.default_spec
        self._max_prompt_length = max_prompt_length

    def check(self, new: NewVideo) -> VideoRequest:
        """The request with defaults filled in, or an InputError naming the field."""
        return self._checked(new)[0]

    def _checked(self, new: NewVideo) -> tuple[VideoRequest, ImageBytes | None]:
        request = video_request(
            self.routes.spec_for(new.model),
            prompt=new.prompt,
            model=new.model,
            size=new.size,
            seconds=new.seconds,
            max_prompt_length=self._max_prompt_length,
            quality=new.quality,
        )
        if new.input_reference is None:
            return request, None
        require_feature(request.model, Feature.IMAGE_INPUT, "input_reference")
        return request, check_reference(new.input_reference, request.width, request.height)

    async def create(
        self, account: Account, new: NewVideo, *, admit: Admit | None = None
    ) -> tuple[VideoView, bool]:
        """Accept a video (quota, budget and reservation in one transaction).

        Returns the view and whether it is new: a repeated Idempotency-Key with the same
        request returns the original video instead. `admit` runs once the request is valid.
        """
        request, reference = self._checked(new)
        video = self._new_row(account, request, new.idempotency_key)
        if admit is not None:
            await admit()
        video = replace(
            video,
            request_hash=_request_hash(
                "create", request, reference=new.input_reference, parent=None
            ),
        )
        if reference is not None:
            stored = await self._storage.put(f"references/{video.id}", reference.data)
            video = replace(
                video, input_reference_key=stored.key, input_reference_type=reference.content_type
            )
        return await self._accept(account, video, EventKind.CREATED)

    async def remix(
        self,
        account: Account,
        parent_id: str,
        prompt: object,
        idempotency_key: str | None = None,
        *,
        admit: Admit | None = None,
    ) -> tuple[VideoView, bool]:
        """A new video from a completed one the caller can see, changed by `prompt`; `admit`
        runs once the request is valid."""
        checked = check_prompt(prompt, self._max_prompt_length)
        async with self._database.reading() as connection:
            parent = await queries.visible_view(connection, parent_id, _scope(account))
        if parent is None:
            raise NotFoundError("video", parent_id)
        if parent.job_state is not JobState.COMPLETED:
            raise NotReadyError(
                f"video {parent_id} is {parent.job_state.public_status}; "
                "only a completed video can be remixed",
                field="video_id",
            )
        request = video_request(
            self.routes.provider(parent.provider),
            prompt=checked,
            model=parent.model,
            size=parent.size,
            seconds=parent.seconds,
            max_prompt_length=self._max_prompt_length,
        )
        require_feature(request.model, Feature.REMIX, "video_id")
        video = replace(
            self._new_row(account, request, idempotency_key),
            remixed_from_video_id=parent.id,
            request_hash=_request_hash("remix", request, reference=None, parent=parent.id),
        )
        if admit is not None:
            await admit()
        return await self._accept(account, video, EventKind.REMIXED)

    async def rerun(
        self, account: Account, video_id: str, model: object, idempotency_key: str | None = None
    ) -> tuple[VideoView, bool]:
        """The same prompt, size and length as a video the caller can see, on another model
        (routed to whichever provider makes it); a first-frame image goes along when the new
        model takes one."""
        if not isinstance(model, str) or not model:
            raise InputError("model", "is required: the model to run the prompt on")
        async with self._database.session() as session:
            source = await queries.visible_video(session, video_id, _scope(account))
        if source is None:
            raise NotFoundError("video", video_id)
        reference = None
        if source.input_reference_key is not None:
            reference = await self._storage.read(source.input_reference_key)
        new = NewVideo(
            prompt=source.prompt,
            model=model,
            size=source.size,
            seconds=source.seconds,
            input_reference=reference,
            idempotency_key=idempotency_key,
        )
        return await self.create(account, new)

    async def get(self, account: Account, video_id: str) -> VideoView:
        cache, scope = self._cache, _scope(account)
        generation = await cache.current()
        view = cache.videos.get(video_id) if generation is not None else None
        if view is None:
            async with self._database.reading() as connection:
                view = await queries.visible_view(connection, video_id, scope)
            if view is not None:
                cache.keep(generation, cache.videos, video_id, view)
        if view is None or (scope is not None and view.owner_id != scope):
            raise NotFoundError("video", video_id)
        return view

    async def page(
        self,
        account: Account,
        *,
        after: str | None = None,
        offset: int = 0,
        limit: int = 20,
        order: Order = Order.DESC,
        status: list[str] | None = None,
        model: str | None = None,
        provider: str | None = None,
        text: str | None = None,
    ) -> Page:
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InputError("limit", f"must be 1 to {MAX_LIST_LIMIT}")
        if offset < 0:
            raise InputError("offset", "must be 0 or more")
        states = _states_for(status) if status else None
        async with self._database.session() as session:
            cursor = None
            if after is not None:
                # A video deleted meanwhile still marks its place, so a client that deletes
                # while it pages goes on from there (another user's id stays unknown).
                cursor = await queries.visible_video(
                    session, after, _scope(account), include_deleted=True
                )
                if cursor is None:
                    raise InputError("after", f"no video {after!r} to continue after")
            return await queries.page_of_videos(
                session,
                _scope(account),
                after=cursor,
                offset=offset,
                limit=limit,
                order=order,
                status=states,
                model=model,
                provider=provider,
                text=text,
            )

    async def events(self, account: Account, video_id: str) -> list[EventView]:
        await self.get(account, video_id)
        async with self._database.session() as session:
            return await queries.events_of(session, video_id)

    async def cancel(self, account: Account, video_id: str) -> VideoView:
        """Stop a video that isn't finished; cancelling a finished one changes nothing."""

        def decide(video: VideoRecord, now: datetime) -> VideoRecord | None:
            return None if video.job_state.is_terminal else cancelled(video, now)

        after = await self._lifecycle.change(video_id, _scope(account), decide, actor=account.id)
        return queries.to_view(after)

    async def delete(self, account: Account, video_id: str) -> None:
        """Remove a video and its archive; deleting it again is not an error."""

        def decide(video: VideoRecord, now: datetime) -> VideoRecord | None:
            if video.deleted_at is not None:
                return None
            if not video.job_state.is_terminal:
                video = cancelled(video, now)
            return deleted(video, now)

        await self._lifecycle.change(
            video_id, _scope(account), decide, actor=account.id, include_deleted=True
        )

    async def archived(self, account: Account, video_id: str, variant: Variant) -> ArchivedObject:
        """Where a completed video's variant lives in the archive, with its size and hash."""
        view = await self.get(account, video_id)
        if view.job_state is not JobState.COMPLETED:
            raise NotReadyError(
                f"video {video_id} is {view.status}; content is available once it is completed",
                field="video_id",
            )
        stored = view.archive.get(variant)
        if stored is None:
            raise NotFoundError(f"{variant} of video", video_id)
        return stored

    def _new_row(
        self, account: Account, request: VideoRequest, idempotency_key: str | None
    ) -> VideoRecord:
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
            raise InputError("Idempotency-Key", "must be 1 to 255 characters")
        now = utcnow()
        return VideoRecord(
            id=new_video_id(now),
            owner_id=account.id,
            provider=self.routes.spec_for(request.model.name).name,
            model=request.model.name,
            prompt=request.prompt,
            size=request.size,
            seconds=int(request.seconds),
            created_at=now,
            updated_at=now,
            next_check_at=now,
            cost_estimate=request.estimate,
            idempotency_key=idempotency_key,
        )

    async def _accept(
        self, account: Account, video: VideoRecord, kind: EventKind
    ) -> tuple[VideoView, bool]:
        async def admission(connection: AsyncConnection, video: VideoRecord) -> VideoRecord | None:
            quota = await queries.lock_quota(connection, account.id, video.created_at)
            if video.idempotency_key is not None:
                earlier = await queries.video_by_idempotency_key(
                    connection, account.id, video.idempotency_key
                )
                if earlier is not None:
                    return _replayed(record_of(earlier), video)
            usage = await usage_of(connection, account.id, quota, video.created_at, moving=True)
            check_limits(usage, video.cost_estimate, video.created_at)
            return None

        accepted, new = await self._lifecycle.accept(video, kind, admission, actor=account.id)
        return queries.to_view(accepted), new


def _scope(account: Account) -> str | None:
    """Whose videos the account may see: its own, or (admins) everyone's."""
    return None if account.is_admin else account.id


def _states_for(statuses: list[str]) -> list[str]:
    allowed = {state.public_status.value for state in JobState}
    states = []
    for status in statuses:
        if status not in allowed:
            raise InputError("status", f"must be one of {', '.join(sorted(allowed))}")
        states += [state.value for state in JobState if state.public_status.value == status]
    return states


def _request_hash(
    kind: str, request: VideoRequest, *, reference: bytes | None, parent: str | None
) -> str:
    canonical = {
        "kind": kind,
        "prompt": request.prompt,
        "model": request.model.name,
        "size": request.size,
        "seconds": request.seconds,
        "reference": hashlib.sha256(reference).hexdigest() if reference else None,
        "parent": parent,
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _replayed(earlier: VideoRecord, attempt: VideoRecord) -> VideoRecord:
    if earlier.request_hash != attempt.request_hash:
        raise ConflictError(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    return earlier
