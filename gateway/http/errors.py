"""Every refusal is a JSON body with one precise sentence, counted by route and reason.

Handlers raise ``ApiError``; a broker that cannot be reached
(``BrokerUnavailable``), a call that kept changing (``Conflict``) or an
outbox whose store cannot be written (``StoreUnavailable``) becomes a 503
here, once for every route, so that the sender retries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.broker import BrokerUnavailable, Conflict
from gateway.ops.metrics import Metrics
from gateway.outbox.store import StoreUnavailable

log = logging.getLogger("gateway")

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, reason: str = "", headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # A short label for the rejection metric; the message may vary.
        self.reason = reason or str(status)
        self.headers = headers


def bearer_refused(message: str, reason: str) -> ApiError:
    """401 for a missing or bad session credential (RFC 6750's challenge)."""
    return ApiError(401, message, reason, {"WWW-Authenticate": 'Bearer realm="gateway"'})


def as_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, BrokerUnavailable):
        return ApiError(503, f"event broker unavailable: {exc}", "broker-down")
    if isinstance(exc, Conflict):
        return ApiError(503, str(exc), "conflict")
    if isinstance(exc, StoreUnavailable):
        return ApiError(503, f"job store unavailable: {exc}", "outbox-down")
    raise TypeError(f"no API answer for {type(exc).__name__}")


def exception_handlers(metrics: Metrics) -> dict[type[Exception], ExceptionHandler]:
    async def refuse(request: Request, exc: Exception) -> Response:
        error = as_api_error(exc)
        route = request.scope.get("route")
        where = getattr(route, "path", "unrouted")
        metrics.rejected.labels(where, error.reason).inc()
        if error.status >= 500:
            log.warning("%s %s: %s", request.method, where, error.message)
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    return {ApiError: refuse, BrokerUnavailable: refuse, Conflict: refuse, StoreUnavailable: refuse}
