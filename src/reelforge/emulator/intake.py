"""Making jobs: a create, remix, edit or extend body checked against the catalog, then submitted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from reelforge.domain.catalog import CatalogError, Feature, ModelSpec, ProviderSpec
from reelforge.emulator.bodies import Body, optional_string, reject_unknown, required_string
from reelforge.emulator.errors import (
    FAILED,
    NOT_READY,
    EmulatorError,
    from_catalog,
    invalid_value,
)
from reelforge.emulator.faults import MODERATION, FaultState, PromptTags, fail_message, parse_tags
from reelforge.emulator.jobs import Engine, EngineClosed
from reelforge.emulator.references import check_image, reference_bytes
from reelforge.emulator.render import RenderSpec
from reelforge.emulator.requests import (
    CREATE_FIELDS,
    EDIT_FIELDS,
    EXTEND_FIELDS,
    MAX_PROMPT,
    REMIX_FIELDS,
    character_ids,
    derive_seed,
    dimensions,
    extension_seconds,
    require_feature,
    source_video,
)
from reelforge.emulator.settings import EmulatorSettings
from reelforge.emulator.store import (
    EmulatorClock,
    Job,
    JobStore,
    Kind,
    Status,
    new_video_id,
    sha256_hex,
)


class Retrieve(Protocol):
    """The emulator's one lookup of a video by id, so a missing source fails as a read does."""

    def __call__(self, video_id: str, *, param: str | None = None) -> Job: ...


@dataclass(eq=False)
class Intake:
    """The requests that make a job; the Emulator owns the parts and delegates to this."""

    settings: EmulatorSettings
    catalog: ProviderSpec
    store: JobStore
    clock: EmulatorClock
    faults: FaultState
    engine: Engine
    retrieve: Retrieve

    def _prompt(self, body: Body, route: str) -> tuple[str, PromptTags]:
        prompt = required_string(body, "prompt", max_length=MAX_PROMPT)
        tags = parse_tags(prompt)
        self.faults.check_tagged(route, prompt, tags)
        if tags.moderation_at_create:
            raise EmulatorError(
                400, fail_message(MODERATION), param="prompt", code="moderation_blocked"
            )
        return prompt, tags

    def _plan_failure(self, tags: PromptTags) -> str | None:
        if tags.fail_code:
            return tags.fail_code
        if self.faults.moderated(tags.text):
            return MODERATION
        return "video_generation_failed" if self.faults.draw_failure() else None

    def _new_job(
        self,
        *,
        kind: Kind,
        model: str,
        model_spec: ModelSpec,
        size: str,
        seconds: str,
        billed_seconds: int,
        prompt: str,
        tags: PromptTags,
        spec: RenderSpec,
        source: Job | None,
    ) -> Job:
        now = int(self.clock.now())
        faults = self.faults.current()
        job = Job(
            id=new_video_id(now),
            seq=self.store.next_seq(),
            kind=kind,
            created_at=now,
            model=model,
            model_spec=model_spec,
            size=size,
            seconds=seconds,
            billed_seconds=billed_seconds,
            prompt=prompt,
            tags=tags,
            spec=spec,
            source_id=source.id if source else None,
            extension_count=(source.extension_count if source else 0)
            + (1 if kind == Kind.EXTENSION else 0),
            cost=model_spec.price(size, billed_seconds),
            latency_seconds=(
                tags.latency_seconds if tags.latency_seconds is not None else faults.latency_seconds
            ),
            ttl_seconds=tags.ttl_seconds or self.settings.ttl_seconds,
            planned_failure=self._plan_failure(tags),
        )
        job.created_view = job.to_video()
        self.store.add(job)
        try:
            self.engine.submit(job)
        except EngineClosed:
            self.store.remove(job.id, evicted=True)
            raise EmulatorError(
                503, "The emulator is shutting down.", type="server_error"
            ) from None
        return job

    def late_create_delay(self, tags: PromptTags) -> float:
        if tags.late_create_seconds is not None:
            return tags.late_create_seconds
        return self.faults.current().late_create_seconds

    async def create(self, body: Body) -> Job:
        reject_unknown(body, CREATE_FIELDS)
        prompt, tags = self._prompt(body, "videos.create")
        model = optional_string(body, "model")
        size = optional_string(body, "size")
        seconds = optional_string(body, "seconds")
        try:
            model_spec, size, seconds = self.catalog.resolve(model, size, seconds)
        except CatalogError as exc:
            raise from_catalog(exc) from None
        width, height = dimensions(size)
        reference: bytes | None = None
        if body.fields.get("input_reference") is not None:
            require_feature(model_spec, Feature.IMAGE_INPUT, "input_reference")
            reference = await reference_bytes(
                body.fields["input_reference"],
                multipart=body.multipart,
                fetch_urls=self.settings.fetch_image_urls,
                limit=self.settings.max_upload_bytes,
            )
            check_image(reference, width, height)
        self._check_characters(body.fields.get("characters"))
        seed = derive_seed(
            self.settings.seed,
            "create",
            model_spec.name,
            tags.text,
            size,
            seconds,
            sha256_hex(reference) if reference is not None else None,
        )
        spec = RenderSpec(
            prompt=tags.text,
            width=width,
            height=height,
            seconds=int(seconds),
            seed=seed,
            reference_image=reference,
        )
        return self._new_job(
            kind=Kind.CREATE,
            model=model or self.catalog.default_model,
            model_spec=model_spec,
            size=size,
            seconds=seconds,
            billed_seconds=int(seconds),
            prompt=prompt,
            tags=tags,
            spec=spec,
            source=None,
        )

    def _check_characters(self, value: Any) -> None:
        for param, character_id in character_ids(value):
            with self.store.lock:
                known = character_id in self.store.characters
            if not known:
                raise invalid_value(param, f"Character '{character_id}' not found.")

    def _completed_source(self, video_id: str, action: str, param: str | None) -> Job:
        job = self.retrieve(video_id, param=param)
        if job.status == Status.FAILED:
            raise EmulatorError(
                400,
                f"Video '{video_id}' failed and cannot be {action}.",
                param=param,
                code=FAILED,
            )
        if job.status != Status.COMPLETED:
            raise EmulatorError(
                400,
                f"Video '{video_id}' is not completed yet (status: {job.status.value}); "
                f"only completed videos can be {action}.",
                param=param,
                code=NOT_READY,
            )
        return job

    def _source_from_body(self, body: Body, action: str) -> Job:
        video = source_video(body)
        if isinstance(video, str):
            return self._completed_source(video, action, "video")
        with self.store.lock:
            video_id = self.store.by_video_sha256.get(sha256_hex(video.data))
        if video_id is None:
            raise invalid_value(
                "video",
                "Invalid 'video': this emulator can only work on videos it generated; pass "
                '{"id": "video_..."} or upload a video downloaded from it.',
            )
        return self._completed_source(video_id, action, "video")

    def _check_model(self, body: Body) -> None:
        # Edits and extensions infer the model from the source; a given name must still exist.
        model = optional_string(body, "model")
        if model is not None:
            try:
                self.catalog.model(model)
            except CatalogError as exc:
                raise from_catalog(exc) from None

    async def remix(self, video_id: str, body: Body) -> Job:
        reject_unknown(body, REMIX_FIELDS)
        source = self._completed_source(video_id, "remixed", None)
        require_feature(source.model_spec, Feature.REMIX, None)
        prompt, tags = self._prompt(body, "videos.remix")
        return self._derived(Kind.REMIX, source, prompt, tags)

    async def edit(self, body: Body) -> Job:
        reject_unknown(body, EDIT_FIELDS)
        self._check_model(body)
        source = self._source_from_body(body, "edited")
        require_feature(source.model_spec, Feature.EDIT, "video")
        prompt, tags = self._prompt(body, "videos.edit")
        return self._derived(Kind.EDIT, source, prompt, tags)

    def _derived(self, kind: Kind, source: Job, prompt: str, tags: PromptTags) -> Job:
        """Remix and edit: a new job with the source's model, size and length, same scene."""
        total = source.spec.total_seconds
        seed = derive_seed(
            self.settings.seed, kind.value, source.model_spec.name, tags.text, source.spec.seed
        )
        spec = RenderSpec(
            prompt=tags.text,
            width=source.spec.width,
            height=source.spec.height,
            seconds=total,
            seed=seed,
            parent=source.spec,
        )
        return self._new_job(
            kind=kind,
            model=source.model,
            model_spec=source.model_spec,
            size=source.size,
            seconds=str(total),
            billed_seconds=total,
            prompt=prompt,
            tags=tags,
            spec=spec,
            source=source,
        )

    async def extend(self, body: Body) -> Job:
        reject_unknown(body, EXTEND_FIELDS)
        self._check_model(body)
        source = self._source_from_body(body, "extended")
        require_feature(source.model_spec, Feature.EXTEND, "video")
        prompt, tags = self._prompt(body, "videos.extend")
        seconds = extension_seconds(
            body, source.id, source.spec.total_seconds, source.extension_count
        )
        total = source.spec.total_seconds + int(seconds)
        seed = derive_seed(
            self.settings.seed, "extension", source.model_spec.name, tags.text, source.spec.seed
        )
        spec = RenderSpec(
            prompt=tags.text,
            width=source.spec.width,
            height=source.spec.height,
            seconds=int(seconds),
            seed=seed,
            extends=source.spec,
        )
        return self._new_job(
            kind=Kind.EXTENSION,
            model=source.model,
            model_spec=source.model_spec,
            size=source.size,
            seconds=str(total),
            billed_seconds=int(seconds),
            prompt=prompt,
            tags=tags,
            spec=spec,
            source=source,
        )
