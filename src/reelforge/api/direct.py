"""Direct routes: declared and documented like any route, answered ahead of FastAPI's router.

Every seek of a player and every thumbnail of a gallery is a signed-URL request, which needs no
credential, body, model or dependency: only the route's own endpoint, the app's error handlers,
and the observability and security middleware every response passes. A `DirectRoute`'s
endpoint takes the request and answers it, with nothing solved for it (FastAPI's custom
APIRoute pattern), and `DirectRoutes` runs it as soon as the request reaches the innermost
middleware, past FastAPI's per-request layers (its router, included routers, exit stacks and
request handler), whose share of such a request's CPU is in bench/delivery.md.

The route stays in its router too: that is what documents it in OpenAPI, and what answers a
method the route does not offer (405, with every allowed method).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, ExceptionHandler, Receive, Scope, Send


class DirectRoute(APIRoute):
    """A route whose endpoint is `async (Request) -> Response`, documented by its decorator's
    `openapi_extra` (its parameters are read by the endpoint, not declared in its signature)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


class DirectRoutes:
    """Middleware answering every request a `DirectRoute` of `routes` matches fully (path and
    method), its errors shaped by `handlers` as the app's exception middleware shapes them;
    every other request goes on to `app`."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Sequence[BaseRoute],
        handlers: Mapping[Any, ExceptionHandler],
    ) -> None:
        self.app = app
        self.routes = tuple(route for route in routes if isinstance(route, DirectRoute))
        # Each route's literal start: every other request (a status read among them) is let
        # through on one string test instead of a regular expression per route.
        self.prefixes = tuple(route.path.partition("{")[0] for route in self.routes)
        self.answer = ExceptionMiddleware(self._endpoint, handlers=handlers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    # What the router would set: the path parameters, and the route (whose
                    # template labels the request's metrics and access log).
                    scope.update(child_scope)
                    await self.answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        route: DirectRoute = scope["route"]
        response = await route.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)
