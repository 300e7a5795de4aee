"""A fake of fal's queue REST protocol (submit, status, result, cancel), its media CDN, and
the key set (JWKS) its webhooks are signed with."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.providers.fakes.media import tiny_mp4

API_KEY = "fal-test-key"


@dataclass
class FalJob:
    app: str
    endpoint: str
    input: dict[str, Any]
    # The statuses successive status calls walk through; the last one repeats.
    steps: list[str] = field(default_factory=lambda: ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"])
    error: str | None = None
    error_type: str | None = None
    result_error: tuple[int, dict[str, Any]] | None = None
    expired: bool = False
    junk: bool = False
    cancelled: bool = False
    polls: int = 0
    webhook_url: str | None = None
    # A status answer has said COMPLETED (from then on the output URL is live, until it expires).
    completed_reported: bool = False
    # Where the job stands while it waits: one place nearer the front with every status call.
    queue_position: int = 2
    # The log lines a running job has written so far (fal sends them all, oldest first).
    logs: list[dict[str, str]] = field(default_factory=list)


@dataclass
class FalFake:
    root: str = ""
    jobs: dict[str, FalJob] = field(default_factory=dict)
    submissions: list[str] = field(default_factory=list)
    # Answers the next submits get instead of a job: (status, body, headers).
    refuse_submits: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    malformed_status: bool = False
    fail_next: tuple[str, str] | None = None
    result_error_next: tuple[int, dict[str, Any]] | None = None
    expire_next: bool = False
    # The statuses the next jobs walk through (default: queued, running, completed).
    steps_next: list[str] | None = None
    # The next job's "video" is bytes no decoder reads.
    junk_next: bool = False
    # The key fal signs webhooks with; `jwks` publishes its public half.
    signing_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    jwks_fetches: int = 0
    jwks_down: bool = False
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/jwks.json", self.jwks, methods=["GET"]),
                Route("/files/{name}", self.cdn, methods=["GET", "HEAD"]),
                Route("/{owner}/{alias}/requests/{rid}/status", self.status, methods=["GET"]),
                Route("/{owner}/{alias}/requests/{rid}/cancel", self.cancel, methods=["PUT"]),
                Route("/{owner}/{alias}/requests/{rid}", self.result, methods=["GET"]),
                Route("/{endpoint:path}", self.submit, methods=["POST"]),
            ]
        )

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Key {API_KEY}":
            return JSONResponse({"detail": "Invalid credentials"}, status_code=401)
        return None

    async def submit(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        endpoint = request.path_params["endpoint"]
        if self.refuse_submits:
            status, body, headers = self.refuse_submits.pop(0)
            return JSONResponse(body, status_code=status, headers=headers)
        body = await request.json()
        rid = str(uuid.UUID(int=next(self._ids) + 1))
        owner, alias = endpoint.split("/")[:2]
        job = FalJob(app=f"{owner}/{alias}", endpoint=endpoint, input=body)
        job.webhook_url = request.query_params.get("fal_webhook")
        if self.fail_next is not None:
            job.error_type, job.error = self.fail_next
            self.fail_next = None
        job.result_error, self.result_error_next = self.result_error_next, None
        job.expired, self.expire_next = self.expire_next, False
        job.junk, self.junk_next = self.junk_next, False
        if self.steps_next is not None:
            job.steps = list(self.steps_next)
        self.jobs[rid] = job
        self.submissions.append(rid)
        base = f"{self.root}/{owner}/{alias}/requests/{rid}"
        return JSONResponse(
            {
                "request_id": rid,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            }
        )

    def _job(self, request: Request) -> FalJob | None:
        job = self.jobs.get(request.path_params["rid"])
        app = f"{request.path_params['owner']}/{request.path_params['alias']}"
        return job if job is not None and job.app == app else None

    async def status(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        if self.malformed_status:
            return PlainTextResponse("<html>bad gateway page</html>", status_code=200)
        job = self._job(request)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        state = job.steps[min(job.polls, len(job.steps) - 1)]
        job.polls += 1
        body: dict[str, Any] = {"status": state, "response_url": str(request.url)}
        if state == "IN_QUEUE":
            body["queue_position"] = job.queue_position
            job.queue_position = max(0, job.queue_position - 1)
        else:
            if state == "IN_PROGRESS":
                job.logs.append(_log_line(f"step {len(job.logs) + 1}: denoising"))
            if request.query_params.get("logs") == "1":
                body["logs"] = list(job.logs)
        if state == "COMPLETED":
            job.completed_reported = True
            body["metrics"] = {"inference_time": 1.0}
            if job.error:
                body["error"], body["error_type"] = job.error, job.error_type
        return JSONResponse(body)

    async def result(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        job = self._job(request)
        if job is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        if job.result_error is not None:
            status, body = job.result_error
            return JSONResponse(body, status_code=status)
        rid = request.path_params["rid"]
        return JSONResponse(
            {"video": {"url": f"{self.root}/files/{rid}.mp4", "content_type": "video/mp4"}}
        )

    async def cancel(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        job = self._job(request)
        if job is None:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        if job.steps[min(job.polls, len(job.steps) - 1)] == "COMPLETED" and job.polls:
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        job.cancelled = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def cdn(self, request: Request) -> Response:
        rid = request.path_params["name"].removesuffix(".mp4")
        job = self.jobs.get(rid)
        if job is None or job.expired:
            return PlainTextResponse("Not Found", status_code=404)
        data = b"\x00\x00\x00\x18ftypmp42 not really a video" if job.junk else tiny_mp4()
        if request.method == "HEAD":
            return Response(headers={"content-length": str(len(data))}, media_type="video/mp4")
        return Response(data, media_type="video/mp4")

    async def jwks(self, request: Request) -> Response:
        self.jwks_fetches += 1
        if self.jwks_down:
            return PlainTextResponse("upstream connect error", status_code=503)
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return JSONResponse({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x}]})

    def webhook(
        self,
        request_id: str,
        *,
        status: str = "OK",
        timestamp: int | None = None,
        key: Ed25519PrivateKey | None = None,
        body: bytes | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery for `request_id` as fal sends it: the body and signed headers.

        `key` signs with another key (a forgery), `body` replaces what was signed (tampering).
        """
        payload: dict[str, Any] = {
            "request_id": request_id,
            "gateway_request_id": request_id,
            "status": status,
            "payload": {"video": {"url": f"{self.root}/files/{request_id}.mp4"}},
        }
        if status == "ERROR":
            payload["error"] = "Invalid status code: 422"
        signed = json.dumps(payload).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        user_id = "fal-user-1"
        digest = hashlib.sha256(signed).hexdigest()
        message = "\n".join((request_id, user_id, stamp, digest)).encode()
        signature = (key or self.signing_key).sign(message).hex()
        headers = {
            "content-type": "application/json",
            "x-fal-webhook-request-id": request_id,
            "x-fal-webhook-user-id": user_id,
            "x-fal-webhook-timestamp": stamp,
            "x-fal-webhook-signature": signature,
        }
        return (signed if body is None else body), headers


def _log_line(message: str) -> dict[str, str]:
    """One entry of a status answer's `logs`, with the fields fal's queue documents."""
    stamp = datetime.now(UTC).isoformat()
    return {"message": message, "level": "INFO", "source": "user", "timestamp": stamp}
