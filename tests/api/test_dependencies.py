"""Every dependency of every route is a coroutine: FastAPI runs a plain `def` dependency in a
worker thread, a thread hop per request that cost more CPU than the hot route's own work."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from reelforge.api import accounts, admin, gateway, health, videos, webhooks


def _dependencies(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependencies(sub)


def _routes() -> list[APIRoute]:
    routers = [module.router for module in (accounts, admin, gateway, health, videos, webhooks)]
    return [route for router in routers for route in router.routes if isinstance(route, APIRoute)]


@pytest.mark.parametrize("kind", ["dependency", "endpoint"])
def test_no_route_runs_in_a_worker_thread(kind: str) -> None:
    routes = _routes()
    assert len(routes) > 20
    threaded = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', call)}"
            for route in routes
            for call in (
                _dependencies(route.dependant) if kind == "dependency" else [route.endpoint]
            )
            if call is not None and not inspect.iscoroutinefunction(call)
        }
    )
    assert threaded == []
