"""A fake of the Gemini API's Veo surface: predictLongRunning, operations, file download."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.providers.fakes.media import tiny_mp4

API_KEY = "gemini-test-key"
# Real answers name files on Google's host; the SDK takes the id and downloads from its base URL.
FILE_HOST = "https://generativelanguage.googleapis.com/v1beta/files"
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"


@dataclass
class VeoOperation:
    model: str
    body: dict[str, Any]
    polls_left: int = 1
    outcome: str = "video"  # "video", "filtered", "error" or "empty" (malformed)
    file_id: str = ""
    # An answer has said `done` (from then on the file is downloadable, until it expires).
    done_reported: bool = False


@dataclass
class VeoFake:
    operations: dict[str, VeoOperation] = field(default_factory=dict)
    refuse_next: tuple[int, Any] | None = None
    outcome_next: str = "video"
    deleted_files: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1beta/files/{name}", self.download, methods=["GET"]),
                Route("/v1beta/models/{rest:path}", self.models, methods=["GET", "POST"]),
            ]
        )

    def _denied(self, request: Request) -> Response | None:
        if request.headers.get("x-goog-api-key") != API_KEY:
            return _error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            )
        return None

    async def models(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        rest = request.path_params["rest"]
        if request.method == "POST" and rest.endswith(":predictLongRunning"):
            return await self._start(request, rest.removesuffix(":predictLongRunning"))
        if "/operations/" in rest:
            return self._operation(f"models/{rest}")
        return JSONResponse({"name": f"models/{rest}", "displayName": rest})

    async def _start(self, request: Request, model: str) -> Response:
        if self.refuse_next is not None:
            (status, body), self.refuse_next = self.refuse_next, None
            return JSONResponse(body, status_code=status)
        name = f"models/{model}/operations/op{next(self._ids)}"
        self.operations[name] = VeoOperation(
            model=model, body=await request.json(), outcome=self.outcome_next
        )
        self.outcome_next = "video"
        return JSONResponse({"name": name})

    def _operation(self, name: str) -> Response:
        operation = self.operations.get(name)
        if operation is None:
            return _error(404, "NOT_FOUND", f"Operation {name} not found")
        if operation.polls_left > 0:
            operation.polls_left -= 1
            return JSONResponse({"name": name, "done": False})
        operation.done_reported = True
        answer: dict[str, Any] = {"name": name, "done": True}
        if operation.outcome == "error":
            answer["error"] = {"code": 3, "message": "The input image is not supported"}
        elif operation.outcome == "empty":
            pass  # done, with neither `response` nor `error`: not a shape Google documents
        elif operation.outcome == "filtered":
            answer["response"] = {
                "@type": RESPONSE_TYPE,
                "generateVideoResponse": {
                    "raiMediaFilteredCount": 1,
                    "raiMediaFilteredReasons": ["The prompt could not be submitted."],
                },
            }
        else:
            operation.file_id = name.rsplit("/", 1)[-1]
            uri = f"{FILE_HOST}/{operation.file_id}:download?alt=media"
            answer["response"] = {
                "@type": RESPONSE_TYPE,
                "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]},
            }
        return JSONResponse(answer)

    async def download(self, request: Request) -> Response:
        if (denied := self._denied(request)) is not None:
            return denied
        file_id = request.path_params["name"].removesuffix(":download")
        if file_id in self.deleted_files:
            return _error(404, "NOT_FOUND", "File not found")
        return Response(tiny_mp4(), media_type="video/mp4")


def _error(code: int, status: str, message: str, details: list[Any] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=code)


def rate_limited(seconds: int) -> tuple[int, dict[str, Any]]:
    """Google's 429: RESOURCE_EXHAUSTED with a google.rpc.RetryInfo."""
    return (
        429,
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{seconds}s",
                    }
                ],
            }
        },
    )
