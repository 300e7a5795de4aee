"""A loopback webhook receiver (a real HTTP server on a thread) and Standard Webhooks signing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelforge.domain.clock import utcnow
from reelforge.domain.ids import new_id
from reelforge.emulator.server import running

# The reference's test vector secret (openai-videos-api.md §9.3).
SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
OTHER_SECRET = "whsec_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0IGtleSEhIQ=="


def signed(
    body: str,
    *,
    secret: str = SECRET,
    at: datetime | None = None,
    webhook_id: str | None = None,
) -> dict[str, str]:
    """Standard Webhooks headers for `body`, as a provider sends them."""
    at = at or utcnow()
    webhook_id = webhook_id or new_id("wh")
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body),
    }


@dataclass
class Receiver:
    """Records every POST; answers `status` (or `statuses` in turn, then `status`)."""

    url: str = ""
    status: int = 204
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.received.append((dict(request.headers), body))
            status = self.statuses.pop(0) if self.statuses else self.status
        headers = {"location": "http://127.0.0.1:9/elsewhere"} if 300 <= status < 400 else {}
        return Response(status_code=status, headers=headers)

    def webhook_ids(self) -> list[str]:
        with self._lock:
            return [headers["webhook-id"] for headers, _ in self.received]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    with running(app) as server:
        receiver.url = f"{server.root}/hook"
        yield receiver


@contextmanager
def silent_receiver() -> Iterator[str]:
    """A URL whose server takes connections (the kernel's backlog does) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
