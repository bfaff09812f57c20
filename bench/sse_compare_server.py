"""The server side of ``bench.sse_compare``: one response layer over the gateway's broker.

    python -m bench.sse_compare_server --port P --response own|sse-starlette [--send-timeout S]

Everything but the response is the gateway's own: a ``MemoryBroker`` whose
``StreamQueue`` (bounded, closes on overflow) feeds the stream, events made
by the ``CallTracker`` as ingest makes them, uvicorn with uvloop and
httptools, the collector pacer of ``gateway serve``. Only ``/api/stream``
differs: the gateway's ``EventStream``, or sse-starlette's
``EventSourceResponse`` around a generator awaiting the same subscription.
One process serves one response layer, so its RSS and CPU time are that
layer's alone.

Bench-only routes, loopback only, no authentication: ``/readyz``,
``/bench/stats`` (open responses and subscriptions) and ``/bench/publish``
(start publishing events to a user from inside the process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bench.streams import call_id
from gateway.assemble import build_gateway
from gateway.broker.memory import MemoryBroker
from gateway.broker.stream_queue import StreamQueue
from gateway.config import Settings
from gateway.http.stream import EventStream
from gateway.model import Direction, Phase, Signal
from gateway.ops.gcpacer import CollectorPacer
from gateway.runtime import Gateway
from gateway.users.directory import Directory

RESPONSES = ("own", "sse-starlette")


@dataclass(frozen=True)
class ServerOptions:
    port: int
    response: str = "own"
    stream_buffer: int = 256  # the gateway's default GATEWAY_STREAM_BUFFER
    heartbeat: float = 15.0  # the gateway's heartbeat; sse-starlette's ping interval
    send_timeout: float | None = None  # sse-starlette only


class Counted(Response):
    """Counts the responses still running: a stream is dropped when its response returns.

    The subscription count alone would not tell: an sse-starlette response
    blocked in ``send`` keeps its generator (and so its subscription) alive.
    """

    running = 0

    def __init__(self, inner: Response) -> None:
        # No Response.__init__: this wrapper renders no body of its own.
        self._inner = inner
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        Counted.running += 1
        try:
            await self._inner(scope, receive, send)
        finally:
            Counted.running -= 1


def make_gateway(options: ServerOptions) -> Gateway:
    """The parts of a gateway a stream touches, with the gateway's defaults."""
    settings = Settings(
        host="127.0.0.1",
        port=options.port,
        stream_buffer=options.stream_buffer,
        heartbeat_seconds=options.heartbeat,
        # The bench opens thousands of streams for one user to fan out to.
        streams_per_user=1_000_000,
        secret=secrets.token_urlsafe(32),
    )
    return build_gateway(settings, Directory(), MemoryBroker(settings))


async def sse_starlette_events(gw: Gateway, sub: StreamQueue) -> AsyncIterator[ServerSentEvent]:
    """The same bytes ``EventStream`` writes, one ``ServerSentEvent`` per event.

    Heartbeats are sse-starlette's own ping task, so the generator only waits
    for events (the wait's timeout merely loops).
    """
    try:
        yield ServerSentEvent(comment="connected", retry=gw.settings.retry_ms, sep="\n")
        if sub.head_id:
            yield ServerSentEvent("{}", event="hello", id=sub.head_id, sep="\n")
        while not sub.closed:
            for envelope in await sub.wait(gw.settings.heartbeat_seconds):
                yield ServerSentEvent(envelope.data, event="sdk", id=envelope.id, sep="\n")
    finally:
        gw.broker.unsubscribe(sub)


def stream_response(gw: Gateway, sub: StreamQueue, options: ServerOptions) -> Response:
    if options.response == "own":
        return EventStream(gw, sub)
    # sep "\n" makes the wire format identical to EventStream's (its default is CRLF).
    return EventSourceResponse(
        sse_starlette_events(gw, sub),
        ping=options.heartbeat,
        sep="\n",
        send_timeout=options.send_timeout,
        headers={"cache-control": "no-cache, no-store, no-transform"},
    )


async def publish(gw: Gateway, user: str, events: int, rate: float, pad: int) -> None:
    """``events`` ringing calls for ``user`` at ``rate`` per second, as ingest would make them.

    Each call id carries its number and send time (``bench.streams.call_id``),
    so the client's ``Deliveries`` can count them and time their delivery.
    """
    name = "N" * pad if pad else None
    start = time.monotonic()
    for seq in range(events):
        delay = start + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        signal = Signal(
            source="bench",
            call_id=call_id(seq, time.monotonic_ns()),
            user_id=user,
            direction=Direction.INBOUND,
            phase=Phase.RINGING,
            at_ms=int(time.time() * 1000),
            from_number="+15555550100",
            remote_name=name,
        )
        await gw.tracker.observe(signal)


def build_app(options: ServerOptions) -> Starlette:
    gw = make_gateway(options)
    pacer = CollectorPacer(gw.settings.gc_freeze_seconds, gw.settings.gc_full_seconds)
    publishers: set[asyncio.Task[None]] = set()

    async def stream(request: Request) -> Response:
        # The bench's "token" is the user id: both sides skip authentication alike.
        user = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or "u0"
        sub = await gw.broker.subscribe(user, request.headers.get("last-event-id"))
        return Counted(stream_response(gw, sub, options))

    async def start_publishing(request: Request) -> Response:
        query = request.query_params
        task = asyncio.create_task(
            publish(gw, query["user"], int(query["events"]), float(query["rate"]), int(query["pad"]))
        )
        publishers.add(task)
        task.add_done_callback(publishers.discard)
        return PlainTextResponse("publishing\n", status_code=202)

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {
                "responses": Counted.running,
                "subscriptions": gw.broker.stream_count(),
                "publishing": len(publishers),
            }
        )

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ready\n")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pacer.start()
        try:
            yield
        finally:
            for task in publishers:
                task.cancel()
            await gw.broker.close()
            await pacer.stop()

    routes = [
        Route("/api/stream", stream, methods=["GET"]),
        Route("/bench/publish", start_publishing, methods=["POST"]),
        Route("/bench/stats", stats, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse_compare_server", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--response", choices=RESPONSES, default="own")
    parser.add_argument("--stream-buffer", type=int, default=ServerOptions.stream_buffer)
    parser.add_argument("--heartbeat", type=float, default=ServerOptions.heartbeat)
    parser.add_argument("--send-timeout", type=float, default=None)
    args = parser.parse_args(argv)
    options = ServerOptions(
        port=args.port,
        response=args.response,
        stream_buffer=args.stream_buffer,
        heartbeat=args.heartbeat,
        send_timeout=args.send_timeout,
    )
    # As `gateway serve` runs it (gateway/cli.py), minus the proxy settings.
    uvicorn.run(
        build_app(options),
        host="127.0.0.1",
        port=options.port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
