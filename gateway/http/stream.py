"""The per-user server-sent event stream: ``GET /api/stream``, and what the
pages report about passing its events on to HubSpot (``/api/stream/claim``,
``/api/stream/ack``).

What is written (events, ``retry:``, heartbeats, ``gap`` and ``hello``) is
defined in ``gateway.wire``; this module decides when, and cuts off a client
that stops reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from gateway.broker.stream_queue import StreamQueue
from gateway.http.bodies import read_json_object
from gateway.http.errors import ApiError
from gateway.http.sessions import current_user, gateway_of, user_from_ticket
from gateway.model import LOGGED_BY_GATEWAY
from gateway.runtime import Gateway
from gateway.users.directory import User
from gateway.wire import (
    SSE_HEARTBEAT,
    event_call_key,
    format_event_id,
    parse_event_id,
    sse_events,
    sse_opening,
)

log = logging.getLogger("gateway.stream")

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store, no-transform"),
    # nginx and similar proxies would otherwise buffer the stream.
    (b"x-accel-buffering", b"no"),
]


class EventStream(Response):
    """Writes a subscription to the client until either side closes it.

    A client that stops reading leaves the server blocked in ``send`` (the
    connection's write buffer is full). Its subscription then overflows and
    closes, and the close cancels that blocked write, so the connection is
    dropped and its memory freed instead of waiting for the peer.
    """

    def __init__(self, gw: Gateway, sub: StreamQueue) -> None:
        self.gw = gw
        self.sub = sub
        self.status_code = 200
        self.background = None
        self._task: asyncio.Task[object] | None = None
        self._writing = False
        self._aborted = False

    def _on_close(self, sub: StreamQueue) -> None:
        if sub.reason == "overflow":
            self.gw.metrics.overflows.inc()
            log.info("stream of %s cut off: client too slow; it will resume from history", sub.user_id)
        if self._writing and self._task is not None:
            self._aborted = True
            self._task.cancel()

    async def _write(self, send: Send, body: bytes) -> None:
        self._writing = True
        try:
            await send({"type": "http.response.body", "body": body, "more_body": True})
        finally:
            self._writing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gw, sub = self.gw, self.sub
        self._task = asyncio.current_task()
        sub.on_close = self._on_close
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await self._write(send, sse_opening(gw.settings.retry_ms, sub.gap, sub.head_id))
            heartbeat = gw.settings.heartbeat_seconds
            while not sub.closed:
                ready = await sub.wait(heartbeat)
                if ready:
                    await self._write(send, sse_events(ready))
                elif not sub.closed:
                    await self._write(send, SSE_HEARTBEAT)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._aborted or task is None:
                raise
            task.uncancel()
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            gw.broker.unsubscribe(sub)
            # Break the stream <-> subscription <-> task cycle now, so a closed
            # stream is freed by reference counting rather than waiting for
            # a full collection (which the collector pacer makes rare).
            sub.on_close = None
            self._task = None

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self.sub.close("disconnected")
                return


async def _stream_user(request: Request, gw: Gateway) -> User:
    ticket = request.query_params.get("ticket")
    if ticket:
        return await user_from_ticket(gw, ticket)
    return current_user(request, gw)


async def stream(request: Request) -> Response:
    gw = gateway_of(request)
    user = await _stream_user(request, gw)
    # EventSource sends Last-Event-ID itself on reconnect; a page that opens a
    # new EventSource (fresh ticket) passes it in the query instead.
    last = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    sub = await gw.broker.subscribe(user.id, last)
    return EventStream(gw, sub)


def _event_id(value: object, name: str) -> str:
    parsed = parse_event_id(value) if isinstance(value, str) else None
    if parsed is None:
        raise ApiError(422, f"{name} must be an event id such as 1732490000000-0", "bad-field")
    return format_event_id(parsed)


async def claim(request: Request) -> JSONResponse:
    """``{eventId}`` -> ``{deliver}``: true for the first page that asks, on any instance.

    A page asks just before it passes an event on to HubSpot; a page that is
    told false (another tab, or the page before a reload, passed it on) only
    shows it. An event of a call the gateway logged itself is never passed
    on (docs/call-logging.md#the-widget-and-the-gateway): the SDK would make
    a second engagement.
    """
    gw = gateway_of(request)
    user = current_user(request, gw)
    event_id = _event_id((await read_json_object(request)).get("eventId"), "eventId")
    if gw.call_logger is not None and await _logged_by_gateway(gw, user.id, event_id):
        return JSONResponse({"deliver": False, "loggedBy": LOGGED_BY_GATEWAY})
    return JSONResponse({"deliver": await gw.broker.claim_event(user.id, event_id)})


async def _logged_by_gateway(gw: Gateway, user_id: str, event_id: str) -> bool:
    envelope = await gw.broker.history_event(user_id, event_id)
    call_key = None if envelope is None else event_call_key(envelope.data)
    if call_key is None:
        return False
    state = await gw.tracker.get_call(user_id, call_key)
    return state is not None and state.logged_by == LOGGED_BY_GATEWAY


async def acknowledge(request: Request) -> JSONResponse:
    """``{lastEventId}``: every event up to it was passed on; the position held comes back."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    event_id = _event_id((await read_json_object(request)).get("lastEventId"), "lastEventId")
    return JSONResponse({"lastEventId": await gw.broker.acknowledge(user.id, event_id)})


async def acknowledged(request: Request) -> JSONResponse:
    """Where a page that opens resumes: ``{lastEventId}``, null before any acknowledgement."""
    gw = gateway_of(request)
    user = current_user(request, gw)
    return JSONResponse({"lastEventId": await gw.broker.acknowledged(user.id)})


routes = [
    Route("/api/stream", stream, methods=["GET"]),
    Route("/api/stream/claim", claim, methods=["POST"]),
    Route("/api/stream/ack", acknowledge, methods=["POST"]),
    Route("/api/stream/ack", acknowledged, methods=["GET"]),
]
