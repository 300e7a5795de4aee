"""`/docs`: Swagger UI served from a Python package's copy of its assets, never from a CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from reelforge.web.templating import templates

SWAGGER_ASSETS = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "docs.html", {"openapi_url": "/openapi.json"})


def install(app: FastAPI) -> None:
    app.mount("/static/docs", StaticFiles(directory=SWAGGER_ASSETS), name="swagger-assets")
    app.include_router(router)
