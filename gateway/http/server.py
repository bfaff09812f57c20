"""The HTTP server around the app: uvicorn, configured here for the command and the tests alike.

httptools buffers a request's head (request line and headers) for as long
as it keeps coming, whatever its size, and re-copies the header being read
on every packet: a 64 MB header took ten seconds of CPU and was then
served. ``BoundedHeadProtocol`` counts the head's bytes as they arrive and
answers 431 once they pass ``MAX_HEAD_BYTES``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import Settings

log = logging.getLogger("gateway.http")

# Browsers send a few kilobytes; proxies commonly refuse past 8 to 16 KiB
# per header line. The gateway's own largest header is a JWT of under 1 KiB.
MAX_HEAD_BYTES = 64 * 1024
# After refusing, input is read and dropped this long before the socket
# closes: closing on unread input would reset the connection and could
# destroy the answer before the client reads it.
_LINGER_SECONDS = 2.0
_REFUSAL = b"request head (request line and headers) larger than %d bytes" % MAX_HEAD_BYTES


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools with a cap on the request head: past it, 431 and the connection closes.

    A head that is complete is measured from the parser's callbacks, before
    the app sees it. One still arriving is measured by the bytes read since
    it began, as soon as they pass the cap; that count starts at the first
    read after the previous request, so it is loose by at most one read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_read = 0  # bytes read while a head was arriving
        self._head_size = 0  # the current head's request line and headers
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: read and dropped
        if self._in_head:
            self._head_read += len(data)
        super().data_received(data)
        if self._in_head and self._head_read > MAX_HEAD_BYTES:
            self._refused = True
        if self._refused and not self.transport.is_closing():
            self._refuse_head()

    # Parser callbacks: after a refusal the rest of what was read is dropped.
    def on_message_begin(self) -> None:
        if not self._refused:
            self._head_size = 0
            super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            self._head_size += len(url)
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            self._head_size += len(name) + len(value) + 4
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        self._head_read = 0
        if self._head_size > MAX_HEAD_BYTES:
            self._refused = True
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._in_head = True
            super().on_message_complete()

    def _refuse_head(self) -> None:
        client = self.client[0] if self.client else "unknown"
        log.info("request head from %s over %d bytes: answered 431", client, MAX_HEAD_BYTES)
        if self.cycle is not None and not self.cycle.response_complete:
            # A response of an earlier request on this connection is still
            # being written: an answer now would land inside it.
            self.transport.close()
            return
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(_REFUSAL), _REFUSAL)
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(_LINGER_SECONDS, self.transport.close)


def server_config(
    app: Starlette,
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
    graceful_seconds: int = 5,
) -> uvicorn.Config:
    """How ``gateway serve`` runs the app; the tests serve it the same way."""
    return uvicorn.Config(
        app,
        host=settings.host if host is None else host,
        port=settings.port if port is None else port,
        http=BoundedHeadProtocol,
        lifespan="on",
        # The default access log would print query strings, and stream
        # tickets travel in one.
        access_log=False,
        log_level=log_level,
        # Client addresses (for login throttling) come from X-Forwarded-For
        # only when the peer is a trusted proxy.
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=graceful_seconds,
    )
