"""The client commands' view of a Reelforge server: its /api over HTTP, errors as exit codes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from reelforge.cli.config import API_KEY_ENV, ClientConfig
from reelforge.cli.exits import CommandError, ExitCode, for_status

Video = dict[str, Any]

TERMINAL = frozenset({"completed", "failed", "cancelled"})
# A variant's file name ending when --output is not given.
SUFFIXES = {"video": ".mp4", "thumbnail": ".webp", "spritesheet": ".jpg"}
_CONTENT_SUFFIXES = {"video/mp4": ".mp4", "image/webp": ".webp", "image/jpeg": ".jpg"}


class Remote:
    """One server, one API key; every method raises CommandError with the right exit code."""

    def __init__(self, config: ClientConfig, *, timeout: float = 30.0) -> None:
        self.url = config.url
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.client = httpx.Client(base_url=config.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def require_key(self) -> None:
        if "authorization" not in self.client.headers:
            raise CommandError(
                ExitCode.AUTH, f"no API key: run `reelforge login` or set {API_KEY_ENV}"
            )

    def call(self, method: str, path: str, **options: Any) -> Any:
        """The `data` of the envelope a route answers, or a CommandError for its error."""
        response = self._send(method, path, **options)
        return response.json().get("data")

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **options)
        except httpx.TransportError as exc:
            raise CommandError(
                ExitCode.UNAVAILABLE, f"cannot reach {self.url}: {exc or type(exc).__name__}"
            ) from None
        if response.is_success:
            return response
        raise _failure(response)

    def video(self, video_id: str) -> Video:
        found: Video = self.call("GET", f"/api/videos/{video_id}")
        return found

    def create(
        self, fields: dict[str, str], image: Path | None, idempotency_key: str | None
    ) -> Video:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if image is None:
            created: Video = self.call("POST", "/api/videos", json=fields, headers=headers)
            return created
        with image.open("rb") as handle:
            files = {"input_reference": (image.name, handle, _image_type(image))}
            uploaded: Video = self.call(
                "POST", "/api/videos", data=fields, files=files, headers=headers
            )
        return uploaded

    def page(self, params: dict[str, Any]) -> tuple[list[Video], str | None]:
        response = self._send("GET", "/api/videos", params=params)
        body = response.json()
        return body["data"], body["pagination"]["next_cursor"]

    @contextmanager
    def stream(self, video_id: str, silence: float) -> Iterator[Iterator[str] | None]:
        """The names of the video's server-sent events, or None where the server has no
        stream for it (anything but 200 text/event-stream): the caller polls instead. The
        events end, without an error, when the connection does or is `silence` s quiet."""
        request = self.client.build_request(
            "GET",
            f"/api/videos/{video_id}/stream",
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(self.client.timeout.connect, read=silence),
        )
        try:
            response = self.client.send(request, stream=True)
        except httpx.TransportError:
            yield None
            return
        try:
            kind = response.headers.get("content-type", "")
            if response.status_code != 200 or not kind.startswith("text/event-stream"):
                yield None
            else:
                yield _event_names(response)
        finally:
            response.close()

    def download(self, video_id: str, variant: str, output: Path | None) -> Path:
        """Stream a variant to `output` (default: `<id><suffix>` here) through a temporary
        file beside it, so an interrupted download never leaves a truncated file."""
        path = f"/api/videos/{video_id}/download"
        try:
            with self.client.stream(
                "GET", path, params={"variant": variant}, follow_redirects=True
            ) as response:
                if not response.is_success:
                    response.read()
                    raise _failure(response)
                kind = response.headers.get("content-type", "").split(";")[0].strip()
                target = output or Path(
                    video_id + _CONTENT_SUFFIXES.get(kind, SUFFIXES.get(variant, ""))
                )
                draft = target.with_name(f".{target.name}.part")
                try:
                    with draft.open("wb") as sink:
                        for chunk in response.iter_bytes():
                            sink.write(chunk)
                    os.replace(draft, target)
                finally:
                    draft.unlink(missing_ok=True)
        except httpx.TransportError as exc:
            raise CommandError(
                ExitCode.UNAVAILABLE, f"download from {self.url} failed: {exc}"
            ) from None
        return target


def _event_names(response: httpx.Response) -> Iterator[str]:
    from httpx_sse import EventSource

    try:
        for event in EventSource(response).iter_sse():
            yield event.event
    except httpx.TransportError:
        return


def _failure(response: httpx.Response) -> CommandError:
    """/api's error: `error` is the text, with `code` and `field` beside it."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("error") or response.reason_phrase or f"HTTP {response.status_code}")
    field = body.get("field")
    code = body.get("code")
    where = f" [{field}]" if field else ""
    label = f"{code}: " if code else ""
    detail = f"{label}{message}{where} (HTTP {response.status_code})"
    return CommandError(for_status(response.status_code), detail)


def _image_type(image: Path) -> str:
    return {
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".webp": "image/webp",
    }.get(image.suffix.lower(), "application/octet-stream")
