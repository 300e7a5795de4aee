"""The Jinja2 environment of the studio's pages: its filters and cache-busted static URLs."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from reelforge.domain.accounts import Account
from reelforge.domain.upstream import Variant

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")

_STATUS_LABELS = {
    "queued": "Queued",
    "in_progress": "Rendering",
    "completed": "Ready",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


@cache
def static_url(path: str) -> str:
    """`/static/<path>?v=<content hash>`: files may be cached for good, and still change."""
    digest = hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:10]
    return f"/static/{path}?v={digest}"


def money(amount: Decimal | None) -> str:
    return "—" if amount is None else f"${amount.quantize(Decimal('0.01'))}"


def status_label(status: str) -> str:
    return _STATUS_LABELS.get(status, status.replace("_", " ").capitalize())


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


def short_time(moment: datetime | None) -> str:
    """A server-side fallback; the page's script rewrites it in the reader's own time zone."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def span(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    seconds = max(0, int((end - start).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@pass_context
def file_url(context: Context, video_id: str, variant: str) -> str:
    """A signed URL of an archived file (the media of a page need no credential lookup)."""
    request: Request = context["request"]
    url: str = request.app.state.runtime.links.url(video_id, Variant(variant))
    return url


templates.env.globals["static"] = static_url
templates.env.globals["file_url"] = file_url
templates.env.filters["money"] = money
templates.env.filters["status_label"] = status_label
templates.env.filters["iso"] = iso
templates.env.filters["short_time"] = short_time
templates.env.globals["span"] = span


def render(
    request: Request,
    name: str,
    account: Account | None,
    context: dict[str, object] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """A page; a signed-in page is never stored by caches (it shows one person's data)."""
    response = templates.TemplateResponse(
        request, name, {"account": account, **(context or {})}, status_code=status_code
    )
    if account is not None:
        response.headers["cache-control"] = "no-store"
    return response
