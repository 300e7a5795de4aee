"""Upstream types: what a video provider tells us about a job, and how its calls fail.

These are the provider layer's vocabulary, free of any SDK: the job engine branches on them
and the database stores them. Everything is immutable; timestamps are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

# The protocol's header for when to poll again (openai-videos-api.md).
POLL_AFTER_HEADER = "openai-poll-after-ms"


class UpstreamStatus(StrEnum):
    """The protocol's four job statuses (there is no `cancelled` upstream)."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (UpstreamStatus.COMPLETED, UpstreamStatus.FAILED)


class Variant(StrEnum):
    """A downloadable output of a completed job."""

    VIDEO = "video"
    THUMBNAIL = "thumbnail"
    SPRITESHEET = "spritesheet"

    @property
    def default_content_type(self) -> str:
        """The media type the protocol promises, for when upstream sends none."""
        return _VARIANT_TYPES[self]

    @property
    def extension(self) -> str:
        """The file extension of that media type (archive keys, download file names)."""
        return _VARIANT_EXTENSIONS[self]


_VARIANT_EXTENSIONS = {Variant.VIDEO: "mp4", Variant.THUMBNAIL: "webp", Variant.SPRITESHEET: "jpg"}
_VARIANT_TYPES = {
    Variant.VIDEO: "video/mp4",
    Variant.THUMBNAIL: "image/webp",
    Variant.SPRITESHEET: "image/jpeg",
}


@dataclass(frozen=True)
class ImageBytes:
    """An input image we upload ourselves (the first frame); its size must equal the video's."""

    data: bytes
    content_type: str
    filename: str = "input_reference"

    def __repr__(self) -> str:  # never dump megabytes into logs
        return f"ImageBytes({self.content_type}, {len(self.data)} bytes, {self.filename!r})"


@dataclass(frozen=True)
class ImageUrl:
    """An input image the provider fetches itself: an https URL or a `data:` URL."""

    url: str


InputReference = ImageBytes | ImageUrl


@dataclass(frozen=True)
class CreateRequest:
    """One generation request, already resolved against the catalog (no defaults left)."""

    prompt: str
    model: str
    size: str
    seconds: str
    input_reference: InputReference | None = None


@dataclass(frozen=True)
class UpstreamVideo:
    """A provider's view of one job, as of one response."""

    id: str
    status: UpstreamStatus
    model: str
    size: str
    seconds: str
    progress: int
    prompt: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    remixed_from_video_id: str | None = None
    poll_after_ms: int | None = None
    """The provider's hint (`openai-poll-after-ms`) for when to look again, if it gave one."""
    queue_position: int | None = None
    """Where a queued job stands in the vendor's queue (0 is next), where the vendor says."""
    log_message: str | None = None
    """The vendor's latest log line about a running job, where the vendor shares its logs."""

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    def with_error(self, code: str, message: str) -> UpstreamVideo:
        """This view with a failure's code and message, cut to what a video row keeps."""
        return replace(self, error_code=code[:80], error_message=message[:2000])


@dataclass(frozen=True)
class UpstreamPage:
    """One page of a provider's job list; pass `last_id` as `after` for the next one."""

    items: tuple[UpstreamVideo, ...]
    first_id: str | None
    last_id: str | None
    has_more: bool


class ProviderError(Exception):
    """An upstream call did not give us an answer we can use.

    Keeps what upstream said (`status`, `code`, `message`, `param`) and what it asked for
    (`retry_after` seconds, `request_id` to quote in a support ticket). Callers branch on the
    subclass, or on two properties:

    - `retryable`: the same call may succeed later (after `retry_after`, if set).
    - `outcome_unknown`: the request may have taken effect upstream although we got no usable
      answer. It matters only for calls that create something (create, remix, edit, extend):
      never repeat those blindly, look upstream (list) for the job first.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.request_id = request_id

    @property
    def retryable(self) -> bool:
        return False

    @property
    def outcome_unknown(self) -> bool:
        return False

    def __str__(self) -> str:
        parts = [str(self.status) if self.status is not None else type(self).__name__]
        if self.code:
            parts.append(self.code)
        text = " ".join(parts) + f": {self.message}"
        if self.param:
            text += f" (param {self.param})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, param={self.param!r}, "
            f"retry_after={self.retry_after!r}, request_id={self.request_id!r})"
        )


class ProviderRejected(ProviderError):
    """Upstream refused the request as given (400, 409, 422, other 4xx): bad input, moderation,
    a video not ready for download. Repeating it unchanged fails the same way; `param` names the
    offending field when upstream says which. Nothing was created."""


class ProviderNotFound(ProviderError):
    """Upstream does not know this id (404): never existed, deleted, or expired. Final."""


class ProviderAuthError(ProviderError):
    """Upstream refused our credentials or our access (401/403). Final until an operator fixes
    the key, the organization or the project; every other call will fail the same way."""


class ProviderRateLimited(ProviderError):
    """Upstream asked us to slow down (429). Retry after `retry_after` seconds when given, else
    back off; the request was not acted on. An exhausted quota (`code` `insufficient_quota`)
    is not retryable: no waiting cures it, an operator must."""

    @property
    def retryable(self) -> bool:
        return self.code != "insufficient_quota"


class ProviderUnavailable(ProviderError):
    """Upstream is failing (5xx), unreachable, or busy (408/409). Retry with backoff.

    A 5xx may come after the server acted on the request, so the outcome of a create is
    unknown. With no `status`, no connection was made (refused, DNS): nothing reached
    upstream. A 408/409 says the request was not acted on.
    """

    @property
    def retryable(self) -> bool:
        return True

    @property
    def outcome_unknown(self) -> bool:
        return self.status is not None and self.status >= 500


class ProviderTimeout(ProviderError):
    """No answer in time, or the connection broke after the request was sent.

    The request may have reached upstream and been acted on: for a create, look for the job
    before creating again. Reads are simply retried.
    """

    @property
    def retryable(self) -> bool:
        return True

    @property
    def outcome_unknown(self) -> bool:
        return True


class ProviderProtocolError(ProviderError):
    """Upstream answered, but not in the protocol's shape (not JSON, missing or mistyped fields,
    an unknown status). Likely a misconfigured base URL or a proxy page; it may be transient, so
    it counts as retryable within the caller's attempt budget, and since upstream did answer, a
    create's outcome is unknown."""

    @property
    def retryable(self) -> bool:
        return True

    @property
    def outcome_unknown(self) -> bool:
        return True
