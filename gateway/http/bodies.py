"""Request bodies, read with a cap: bytes, or a JSON object."""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request

from gateway.http.errors import ApiError
from gateway.jsontext import JsonTextError, loads
from gateway.parsing import parse_decimal

# The page's own requests (login, engagement, dial) are a few fields.
SMALL_BODY = 4096


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it is known to be too large."""
    declared = request.headers.get("content-length")
    if declared is not None:
        length = parse_decimal(declared)
        if length is None:
            raise ApiError(400, "Content-Length is not a number", "bad-length")
        if length > limit:
            raise ApiError(413, f"body larger than {limit} bytes", "too-large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"body larger than {limit} bytes", "too-large")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to read the answer; it is counted all the same.
        raise ApiError(400, "the client went away before the end of its body", "disconnected") from None
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int = SMALL_BODY) -> dict[str, Any]:
    """A JSON object body (an empty body reads as ``{}``)."""
    try:
        data = loads(await read_body(request, limit) or b"{}")
    except JsonTextError as exc:
        raise ApiError(400, f"body is not JSON: {exc}", "bad-json") from None
    if not isinstance(data, dict):
        raise ApiError(422, "body must be a JSON object", "bad-json")
    return data
