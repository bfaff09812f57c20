"""Health, readiness and metrics, for orchestrators and scrapers."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.http.sessions import gateway_of


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    gw = gateway_of(request)
    checks: dict[str, dict[str, object]] = {}

    async def broker() -> tuple[bool, str]:
        return await gw.broker.ping(), gw.settings.broker_kind

    named = {"broker": broker, **gw.readiness}
    results = await asyncio.gather(
        *(asyncio.wait_for(check(), 3) for check in named.values()), return_exceptions=True
    )
    for name, result in zip(named, results, strict=True):
        if isinstance(result, BaseException):
            checks[name] = {"ok": False, "detail": f"{type(result).__name__}: {result}"}
        else:
            checks[name] = {"ok": result[0], "detail": result[1]}
    ready = all(c["ok"] for c in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    gw = gateway_of(request)
    return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
