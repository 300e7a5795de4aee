"""Liveness and readiness routes (metrics: api/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reelforge.api.deps import RuntimeDep
from reelforge.api.edge import EdgeRoute
from reelforge.services.health import readiness

router = APIRouter(tags=["operations"], route_class=EdgeRoute)


class Liveness(BaseModel):
    status: str = "ok"


class CheckReport(BaseModel):
    ok: bool
    ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: str
    checks: dict[str, CheckReport]


@router.get("/health", response_model=Liveness, summary="Liveness: the process answers")
async def health() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: every part answers",
    responses={503: {"model": Readiness, "description": "A part named in `checks` failed."}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    results = await readiness(runtime.checks)
    report = Readiness(
        status="ready" if all(r.ok for r in results) else "unavailable",
        checks={r.name: CheckReport(ok=r.ok, ms=r.ms, error=r.error) for r in results},
    )
    return JSONResponse(report.model_dump(), status_code=200 if report.status == "ready" else 503)
