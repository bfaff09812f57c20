"""Every refusal is a JSON body with one precise sentence."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


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


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to be too large."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "Content-Length is not a number", "bad-length")
        if int(declared) > limit:
            raise ApiError(413, f"body larger than {limit} bytes", "too-large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body larger than {limit} bytes", "too-large")
        chunks.append(chunk)
    return b"".join(chunks)
