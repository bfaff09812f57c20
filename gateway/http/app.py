"""The Starlette application around a running ``Gateway`` (see ``gateway.assemble``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.config import Settings
from gateway.http import admin, calls, hubspot, ingest, ops, recordings, sessions, stream, web, webhooks
from gateway.http.errors import ApiError, exception_handlers
from gateway.http.security import SecurityHeaders
from gateway.runtime import Gateway


async def _unknown_api(request: Request) -> Response:
    raise ApiError(404, f"no API route {request.method} {request.url.path}", "no-route")


def create_app(settings: Settings, gw: Gateway) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.broker.start()
        started = []
        try:
            for component in gw.components:
                await component.start()
                started.append(component)
            yield
        finally:
            for component in reversed(started):
                await component.stop()
            await gw.broker.close()

    routes: list[BaseRoute] = [
        *sessions.routes,
        *stream.routes,
        *ingest.routes,
        *calls.routes,
        *ops.routes,
        *admin.routes,
        *webhooks.routes,
        *hubspot.routes,
        *recordings.routes,
        *web.api_routes(settings),
        # Unknown API paths answer JSON like the rest of the API, not the
        # web root's plain 404.
        Route("/api/{rest:path}", _unknown_api, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        *(Mount(path, app) for path, app in gw.mounts.items()),
        # Last: web/ is mounted at the root and would catch everything after it.
        *web.routes(settings),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers(gw.metrics),
        middleware=[Middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)],
    )
    app.state.gateway = gw
    return app
