"""The studio's pages for everyone signed in: sign-in, gallery, create, a video, compare."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from reelforge.api.auth import optional_account
from reelforge.api.deps import RuntimeDep
from reelforge.api.errors import ApiError
from reelforge.api.schemas import VideoOut
from reelforge.domain.accounts import Account
from reelforge.domain.catalog import Feature, ModelSpec
from reelforge.domain.errors import InputError, NotFoundError
from reelforge.domain.states import VideoStatus
from reelforge.domain.videos import VideoView
from reelforge.services.lineage import Lineage
from reelforge.services.links import FileLinks
from reelforge.web.templating import STATIC_DIR, render, static_url, templates

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 24
# The guide's prompt tips (its creator page), shown beside the prompt.
PROMPT_TIPS = (
    "Be specific about the scene, setting, and actions",
    "Include details about lighting, camera angles, and mood",
    "Mention specific colors, textures, and movements",
)


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def maybe_account(request: Request, runtime: RuntimeDep) -> Account | None:
    """The signed-in account, or None; a stale or broken credential is simply no one."""
    try:
        return await optional_account(request, runtime)
    except ApiError:
        return None


async def page_account(
    request: Request, account: Annotated[Account | None, Depends(maybe_account)]
) -> Account:
    if account is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return account


MaybeAccount = Annotated[Account | None, Depends(maybe_account)]
PageAccount = Annotated[Account, Depends(page_account)]


def not_found(request: Request, account: Account | None, what: str = "page") -> HTMLResponse:
    return render(request, "not_found.html", account, {"what": what}, status_code=404)


def video_json(view: VideoView, links: FileLinks) -> dict[str, Any]:
    """A video as the API (and its live streams) show it, for the page's script."""
    return VideoOut.of(view, links).model_dump(mode="json")


def model_json(model: ModelSpec) -> dict[str, Any]:
    return {
        "name": model.name,
        "description": model.description,
        "sizes": list(model.sizes),
        "seconds": list(model.seconds),
        "default_size": model.default_size,
        "default_seconds": model.default_seconds,
        "image_input": model.supports(Feature.IMAGE_INPUT),
        "price_per_second": {size: str(model.price(size, 1)) for size in model.sizes},
    }


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, account: MaybeAccount, next: str = "/") -> Response:
    # Only a path of this site: "//host" and "/\\host" would leave it.
    target = next if next.startswith("/") and not next.startswith(("//", "/\\")) else "/"
    if account is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", None, {"next": target})


@router.get("/", response_class=HTMLResponse)
async def gallery(
    request: Request,
    account: PageAccount,
    runtime: RuntimeDep,
    status: Annotated[str, Query(max_length=20)] = "",
    model: Annotated[str, Query(max_length=80)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str, Query(max_length=80)] = "",
) -> HTMLResponse:
    error = None
    try:
        page = await runtime.videos.page(
            account,
            after=cursor or None,
            limit=PAGE_SIZE,
            status=[status] if status else None,
            model=model or None,
            text=q or None,
        )
        items, has_more = page.items, page.has_more
    except InputError as exc:
        error = f"{'cursor' if exc.field == 'after' else exc.field}: {exc.message}"
        items, has_more = [], False
    filters = {"status": status, "model": model, "q": q}
    shown = {name: value for name, value in filters.items() if value}
    next_url = None
    if has_more and items:
        next_url = f"/?{urlencode({**shown, 'cursor': items[-1].id})}"
    return render(
        request,
        "gallery.html",
        account,
        {
            "videos": items,
            "videos_json": [video_json(v, runtime.links) for v in items],
            "filters": filters,
            "filtered": any(filters.values()),
            "statuses": list(VideoStatus),
            "models": list(runtime.videos.spec.models),
            "error": error,
            "first_url": f"/?{urlencode(shown)}" if shown else "/",
            "next_url": next_url,
            "paged": bool(cursor),
        },
        status_code=400 if error else 200,
    )


@router.get("/create", response_class=HTMLResponse)
async def create_page(
    request: Request,
    account: PageAccount,
    runtime: RuntimeDep,
    source: Annotated[str, Query(alias="from", max_length=80)] = "",
) -> HTMLResponse:
    spec = runtime.videos.spec
    limit = runtime.settings.max_prompt_length
    models = [model_json(model) for model in spec.models.values()]
    chosen = {"prompt": "", "model": spec.default_model, "size": "", "seconds": ""}
    origin = None
    if source:
        try:
            origin = await runtime.videos.get(account, source)
        except NotFoundError:
            return not_found(request, account, "video")
        # "Run this prompt again" on another model: the same request, the next model.
        others = [name for name in spec.models if name != origin.model]
        chosen = {
            "prompt": origin.prompt,
            "model": others[0] if others else origin.model,
            "size": origin.size,
            "seconds": origin.seconds,
        }
    return render(
        request,
        "create.html",
        account,
        {
            "provider": spec,
            "models": models,
            "chosen": chosen,
            "origin": origin,
            "usage": await runtime.quotas.usage(account),
            "max_prompt_length": limit,
            "tips": [
                *PROMPT_TIPS,
                f"Keep it under {runtime.settings.max_prompt_length} characters",
            ],
        },
    )


@router.get("/videos/{video_id}", response_class=HTMLResponse)
async def video_page(
    video_id: str, request: Request, account: PageAccount, runtime: RuntimeDep
) -> HTMLResponse:
    try:
        view = await runtime.videos.get(account, video_id)
        events = await runtime.videos.events(account, video_id)
        lineage = await runtime.lineages.of(account, video_id)
    except NotFoundError:
        return not_found(request, account, "video")
    return render(
        request,
        "video.html",
        account,
        {
            "video": view,
            "video_json": video_json(view, runtime.links),
            "events": events,
            "lineage": lineage,
            "compare_with": _compare_candidates(lineage, view),
        },
    )


def _compare_candidates(lineage: Lineage, view: VideoView) -> list[VideoView]:
    return [
        other
        for other in lineage.videos()
        if other.id != view.id and other.status is VideoStatus.COMPLETED
    ]


@router.get("/compare", response_class=HTMLResponse)
async def compare_page(
    request: Request,
    account: PageAccount,
    runtime: RuntimeDep,
    a: Annotated[str, Query(max_length=80)],
    b: Annotated[str, Query(max_length=80)],
) -> HTMLResponse:
    try:
        lineage = await runtime.lineages.of(account, a)
    except NotFoundError:
        return not_found(request, account, "video")
    members = {video.id: video for video in lineage.videos()}
    left, right = members.get(a), members.get(b)
    if left is None or right is None or a == b:
        return not_found(request, account, "pair of videos from one lineage")
    ready = left.status is VideoStatus.COMPLETED and right.status is VideoStatus.COMPLETED
    return render(
        request,
        "compare.html",
        account,
        {"left": left, "right": right, "ready": ready, "lineage": lineage},
    )


@router.get("/manifest.webmanifest")
async def manifest() -> JSONResponse:
    return JSONResponse(
        {
            "name": "Reelforge Studio",
            "short_name": "Reelforge",
            "description": "Write a prompt, get a video, keep it.",
            "start_url": "/",
            "scope": "/",
            "display": "standalone",
            "background_color": "#0c0d12",
            "theme_color": "#0c0d12",
            "icons": [
                {"src": static_url("icons/icon.svg"), "sizes": "any", "type": "image/svg+xml"},
                {"src": static_url("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
                {"src": static_url("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            ],
        },
        media_type="application/manifest+json",
    )


# What the offline page needs; the service worker keeps these (and nothing else) for offline.
OFFLINE_ASSETS = ("css/app.css", "icons/icon.svg", "icons/icon-192.png")


@router.get("/offline")
async def offline(request: Request) -> HTMLResponse:
    """Shown by the service worker when a page can't be reached; no one's data on it."""
    return render(request, "offline.html", None)


@router.get("/sw.js")
async def service_worker(request: Request) -> Response:
    """The service worker, at the root so its scope is the whole studio; revalidated on every
    visit so a new release takes over (its cache name follows the assets' hashes)."""
    assets = [static_url(path) for path in OFFLINE_ASSETS]
    version = hashlib.sha256(" ".join(assets).encode()).hexdigest()[:10]
    body = templates.get_template("sw.js").render(version=version, assets=assets)
    return Response(
        body,
        media_type="text/javascript",
        headers={"cache-control": "no-cache"},
    )


def install(app: FastAPI) -> None:
    """Mount the static files and the pages; an anonymous page view goes to the sign-in."""
    from reelforge.web import admin_pages, docs

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)

    app.add_exception_handler(LoginRequired, login_required)
    docs.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
    app.include_router(admin_pages.router)
