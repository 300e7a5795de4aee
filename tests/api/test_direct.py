"""Direct routes answered ahead of the router: the same answers, errors, headers, logs and
metrics as a routed request, and every other request left to the app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry

from reelforge.api import errors
from reelforge.api.direct import DirectRoute, DirectRoutes
from reelforge.api.observability import HttpMetrics, ObservabilityMiddleware
from reelforge.domain.errors import InputError, NotFoundError
from reelforge.storage import StorageError
from reelforge.web import security
from tests.support.api import MakeCaller, archive, runtime_of

pytestmark = pytest.mark.anyio

SIGNED_ROUTE = "/api/files/{video_id}/{variant}"


async def test_a_signed_file_is_logged_measured_and_hardened_like_any_request(
    app: FastAPI, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    ada = await make_caller("ada@example.org")
    made = (await ada.client.post("/api/videos", json={"prompt": "a fox"})).json()["data"]
    await archive(runtime_of(app), made["id"], {"video": b"mp4", "thumbnail": b"webp"})
    video = (await ada.client.get(f"/api/videos/{made['id']}")).json()["data"]

    response = await client.get(video["file_url"], headers={"x-request-id": "seek-1"})
    refused = await client.get(video["file_url"].replace("signature=", "signature=x"))

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "seek-1"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert refused.headers["x-content-type-options"] == "nosniff"
    text = (await client.get("/metrics")).text
    assert f'method="GET",route="{SIGNED_ROUTE}",status="200"}} 1.0' in text
    assert f'method="GET",route="{SIGNED_ROUTE}",status="403"}} 1.0' in text


direct = APIRouter(route_class=DirectRoute)
routed = APIRouter()


@direct.get("/direct/{name}")
async def named(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "missing":
        raise NotFoundError("greeting", name)
    if name == "invalid":
        raise InputError("name", "must not be invalid")
    if name == "unavailable":
        raise StorageError("the disk at /srv/secret is gone")
    if name == "broken":
        raise RuntimeError("a bug")
    # Starlette's router marks every request it routes with itself.
    answered_by = "router" if "router" in request.scope else "direct"
    headers = {"X-Route": request.scope["route"].path, "X-Answered-By": answered_by}
    return Response(f"hello {name}", headers=headers)


@routed.get("/routed")
async def plain() -> dict[str, str]:
    return {"answered": "by the router"}


@pytest.fixture
async def small() -> AsyncIterator[httpx.AsyncClient]:
    """An app put together as `create_app` puts Reelforge's: handlers, direct routes innermost,
    then observability and security headers."""
    app = FastAPI()
    errors.install(app)
    app.add_middleware(DirectRoutes, routes=direct.routes, handlers=errors.exception_handlers(app))
    app.add_middleware(ObservabilityMiddleware, metrics=HttpMetrics(CollectorRegistry()))
    app.include_router(direct)
    app.include_router(routed)
    errors.answer_405_with_every_method(app, [*direct.routes, *routed.routes])
    security.install(app, [])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://direct.test") as client:
        yield client


async def test_a_direct_route_answers_with_its_path_parameters(small: httpx.AsyncClient) -> None:
    response = await small.get("/direct/ada")

    assert (response.status_code, response.text) == (200, "hello ada")
    assert response.headers["x-route"] == "/direct/{name}"
    assert response.headers["x-answered-by"] == "direct"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("missing", 404, "not_found"),
        ("invalid", 400, "invalid_value"),
        ("unavailable", 503, "storage_unavailable"),
        ("broken", 500, "internal_error"),
    ],
)
async def test_a_direct_routes_errors_take_the_apps_shapes(
    small: httpx.AsyncClient, name: str, status: int, code: str
) -> None:
    response = await small.get(f"/direct/{name}")

    assert response.status_code == status
    assert response.json()["success"] is False
    assert response.json()["code"] == code
    assert "/srv/secret" not in response.text


async def test_another_method_is_left_to_the_router_which_answers_405(
    small: httpx.AsyncClient,
) -> None:
    response = await small.delete("/direct/ada")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["code"] == "method_not_allowed"


async def test_every_other_request_goes_on_to_the_app(small: httpx.AsyncClient) -> None:
    routed_answer = await small.get("/routed")
    nowhere = await small.get("/direct/ada/more")

    assert routed_answer.json() == {"answered": "by the router"}
    assert nowhere.status_code == 404
    assert nowhere.json()["code"] == "not_found"
