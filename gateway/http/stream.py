"""The per-user server-sent event stream.

Wire format, one event per SDK call::

    id: <event id>
    event: sdk
    data: {"type": "incomingCall", "externalCallId": ..., "payload": {...}, "call": {...}}

plus ``retry:`` once at the start, ``: hb`` comments as heartbeats (they keep
proxies from timing the stream out and reveal dead peers), ``event: gap``
when the events after the client's Last-Event-ID are no longer all held, and
on a fresh stream (no Last-Event-ID) ``event: hello`` with an ``id:`` that
stands for "now": a client that drops before its first event resumes from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from gateway.broker.base import BrokerUnavailable, Envelope, Subscription
from gateway.directory import User
from gateway.http.auth import current_user, gateway_of, user_from_ticket
from gateway.http.errors import ApiError
from gateway.runtime import Gateway

log = logging.getLogger("gateway.stream")

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store, no-transform"),
    # nginx and similar proxies would otherwise buffer the stream.
    (b"x-accel-buffering", b"no"),
]


def _frame(envelopes: list[Envelope]) -> bytes:
    return "".join(f"id: {e.id}\nevent: sdk\ndata: {e.data}\n\n" for e in envelopes).encode()


class EventStream(Response):
    """Writes a subscription to the client until either side closes it.

    A client that stops reading leaves the server blocked in ``send`` (the
    connection's write buffer is full). Its subscription then overflows and
    closes, and the close cancels that blocked write, so the connection is
    dropped and its memory freed instead of waiting for the peer.
    """

    def __init__(self, gw: Gateway, sub: Subscription) -> None:
        self.gw = gw
        self.sub = sub
        self.status_code = 200
        self.background = None
        self._task: asyncio.Task[object] | None = None
        self._writing = False
        self._aborted = False

    def _on_close(self, sub: Subscription) -> None:
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
            opening = f"retry: {gw.settings.retry_ms}\n: connected\n\n"
            if sub.gap:
                opening += "event: gap\ndata: {}\n\n"
            if sub.head_id:
                # Sets the client's last event id without being an SDK event.
                opening += f"event: hello\nid: {sub.head_id}\ndata: {{}}\n\n"
            await self._write(send, opening.encode())
            heartbeat = gw.settings.heartbeat_seconds
            while not sub.closed:
                ready = await sub.wait(heartbeat)
                if ready:
                    await self._write(send, _frame(ready))
                elif not sub.closed:
                    await self._write(send, b": hb\n\n")
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

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                self.sub.close("disconnected")
                return


def _stream_user(request: Request, gw: Gateway) -> User:
    ticket = request.query_params.get("ticket")
    if ticket:
        return user_from_ticket(gw, ticket)
    return current_user(request, gw)


async def stream(request: Request) -> Response:
    gw = gateway_of(request)
    user = _stream_user(request, gw)
    # EventSource sends Last-Event-ID itself on reconnect; a page that opens a
    # new EventSource (fresh ticket) passes it in the query instead.
    last = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    try:
        sub = await gw.broker.subscribe(user.id, last)
    except BrokerUnavailable as exc:
        raise ApiError(503, f"event broker unavailable: {exc}", "broker-down") from None
    return EventStream(gw, sub)


routes = [Route("/api/stream", stream, methods=["GET"])]
