"""Builds the gateway and its Starlette application."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.broker import Broker, make_broker
from gateway.config import Settings
from gateway.directory import Directory
from gateway.http import auth, calls, ingest, ops, stream, web
from gateway.http.errors import ApiError, api_error_handler
from gateway.http.security import SecurityHeaders
from gateway.metrics import Metrics
from gateway.runtime import DirectoryWatcher, Gateway
from gateway.sources import install_sources
from gateway.tokens import TokenSigner
from gateway.tracker import CallTracker

log = logging.getLogger("gateway")


def build_gateway(
    settings: Settings, directory: Directory | None = None, broker: Broker | None = None
) -> Gateway:
    if directory is None:
        directory = Directory.load(settings.users_file, settings.default_region)
    broker = broker or make_broker(settings)
    metrics = Metrics()
    metrics.gauge(
        "gateway_streams_open", "Open SSE streams in this process", [], lambda: {(): broker.stream_count()}
    )
    secret = settings.secret
    if not secret:
        # One process on the embedded broker: tokens need not outlive it.
        secret = secrets.token_urlsafe(32)
        log.warning("GATEWAY_SECRET not set: session tokens will not survive a restart")
    gw = Gateway(
        settings=settings,
        directory=directory,
        broker=broker,
        metrics=metrics,
        signer=TokenSigner(secret),
        tracker=CallTracker(broker, metrics),
    )
    gw.components.append(DirectoryWatcher(gw))
    install_sources(gw)
    return gw


async def _unknown_api(request: Request) -> Response:
    raise ApiError(404, f"no API route {request.method} {request.url.path}", "no-route")


def create_app(settings: Settings, gateway: Gateway | None = None) -> Starlette:
    gw = gateway or build_gateway(settings)

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

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        route = request.scope.get("route")
        where = getattr(route, "path", "unrouted")
        gw.metrics.rejected.labels(where, exc.reason).inc()
        if exc.status >= 500:
            log.warning("%s %s: %s", request.method, where, exc.message)
        return await api_error_handler(request, exc)

    routes: list[BaseRoute] = [
        *auth.routes,
        *stream.routes,
        *ingest.routes,
        *calls.routes,
        *ops.routes,
        *gw.routes,
        *web.api_routes(settings),
        # Unknown API paths answer JSON like the rest of the API, not the
        # web root's plain 404.
        Route("/api/{rest:path}", _unknown_api, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        # Last: web/ is mounted at the root and would catch everything after it.
        *web.routes(settings),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: on_api_error},
        middleware=[Middleware(SecurityHeaders, frame_ancestors=settings.frame_ancestors)],
    )
    app.state.gateway = gw
    return app
