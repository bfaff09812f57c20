"""The SIP source as a gateway component: listeners, server transactions, routing by method.

``gateway.assemble`` makes one when the settings file has a ``[sip]`` table
with ``listen``; without it SIP is off.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from gateway.ops.metrics import CountByLabel
from gateway.sources.context import SourceContext
from gateway.sources.sip.adapter import Request, Response, serialize
from gateway.sources.sip.click_to_dial import ClickToDial
from gateway.sources.sip.coordination import Coordination
from gateway.sources.sip.message_rules import make_response, transaction_key, unsupported_options
from gateway.sources.sip.message_transport import Inbound, SipTransport
from gateway.sources.sip.publish_rules import PublicationRules
from gateway.sources.sip.publish_server import PublishServer, source_allowed
from gateway.sources.sip.settings import SipSettings
from gateway.sources.sip.subscribe_client import ALLOW, Subscriber, allowed_methods
from gateway.sources.sip.transactions import ClientTransactions, ServerTransactions
from gateway.tasks import cancel_and_wait
from gateway.tracker import BrokerUnavailable
from gateway.users.directory import Directory

log = logging.getLogger("gateway.sip")

MAX_IN_FLIGHT = 4096  # requests being worked on at once

# (response, whether a retransmission of the request may be answered with it)
Answer = tuple[Response, bool]
RequestHandler = Callable[[Request], Awaitable[Answer]]


class SipService:
    def __init__(self, context: SourceContext, settings: SipSettings, coordination: Coordination) -> None:
        self.context = context
        self.settings = settings
        # What the instances share: who holds which AOR, call ids, publications.
        self.coordination = coordination
        self.transport = SipTransport(
            list(settings.listen),
            settings.limits,
            self.on_message,
            on_reject=self._count_reject,
            on_lost=self._on_lost,
        )
        self.server = ServerTransactions(
            lifetime=64 * settings.timers.t1, max_bytes=settings.transaction_cache_bytes
        )
        self.client = ClientTransactions(settings.timers)
        self.subscriber = Subscriber(
            settings,
            self.transport,
            self.client,
            context.tracker,
            context.settings.default_region,
            coordination,
            on_refused_body=lambda: self._count_reject("notify", "Bad dialog-info"),
        )
        # Shared across instances through GATEWAY_SECRET (required with Redis),
        # so that any instance accepts the entity tags another one issued and
        # recognises the click-to-dial legs another one placed.
        self.secret = context.settings.secret or secrets.token_urlsafe(32)
        self.click_to_dial = ClickToDial(
            settings, self.transport, self.client, context.tracker, self.secret.encode()
        )
        self.subscriber.delivery.screen = self.click_to_dial.screen
        self.handlers: dict[str, RequestHandler] = {
            "NOTIFY": self.subscriber.on_notify,
            "OPTIONS": self._options,
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self.max_in_flight = MAX_IN_FLIGHT
        self.publisher: PublishServer | None = None
        # PUBLISH carries no credentials: without a `publish_from` list it is not
        # offered at all (405 and left out of Allow), like any method we do not serve.
        self.allow = allowed_methods(settings)
        if self.allow == ALLOW:
            top = settings.publish_max_expires
            rules = PublicationRules(
                self.secret,
                min_expires=settings.publish_min_expires,
                default_expires=min(3600, top),
                max_expires=top,
            )
            self.publisher = PublishServer(
                rules,
                context.directory,
                context.tracker,
                context.settings.default_region,
                coordination,
            )
            self.publisher.delivery.screen = self.click_to_dial.screen
            self.handlers["PUBLISH"] = self.publisher.on_publish
        self._sweeper: asyncio.Task[None] | None = None
        registry = context.metrics.registry
        messages = Counter(
            "gateway_sip_messages_total", "SIP messages received, by method", ["method"], registry=registry
        )
        self.messages = CountByLabel(messages)
        self.retransmissions = Counter(
            "gateway_sip_retransmissions_total",
            "Retransmitted SIP requests answered from the transaction cache",
            registry=registry,
        )

    async def start(self) -> None:
        await self.transport.start()
        await self.subscriber.sync(self.context.directory())
        if self.publisher is not None:
            self._sweeper = asyncio.create_task(self._sweep(), name="sip-publication-sweeper")

    async def _sweep(self) -> None:
        assert self.publisher is not None
        while True:
            await asyncio.sleep(5)
            try:
                await self.publisher.sweep()
            except Exception:
                log.exception("sip: ending expired publications failed")

    async def stop(self) -> None:
        if self._sweeper is not None:
            await cancel_and_wait(self._sweeper)
        await self.click_to_dial.stop()
        await self.subscriber.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1)
        await self.transport.stop()
        await self.coordination.close()

    async def on_directory(self, old: Directory, new: Directory) -> None:
        await self.subscriber.sync(new)

    async def readiness(self) -> tuple[bool, str]:
        if not self.transport.ready:
            return False, "SIP listeners are not bound"
        return self.subscriber.summary()

    def _count_reject(self, kind: str, reason: str) -> None:
        self.context.metrics.rejected.labels(f"sip/{kind}", reason).inc()

    def _on_lost(self, peer: tuple[str, int]) -> None:
        self.client.on_connection_lost(peer)
        self.subscriber.on_connection_lost(peer)

    # --- requests and responses ---

    def on_message(self, inbound: Inbound) -> None:
        message = inbound.message
        if isinstance(message, Response):
            if self.click_to_dial.on_response(message):
                return
            if not self.client.on_response(message):
                log.debug("sip: stray response %d from %s:%d", message.status_code, *inbound.source)
            return
        self.messages.inc(message.method if message.method in _KNOWN else "other")
        if message.method == "ACK":
            return  # our final answers to non-INVITE requests are never acknowledged
        key = transaction_key(message)
        # OPTIONS is stateless and cheap to answer again: a flood of them
        # (qualify pings, scanners) must not fill the retransmission cache.
        remembered = None if message.method == "OPTIONS" else self.server.begin(key)
        if remembered is not None:
            self.retransmissions.inc()
            if remembered:
                self.transport.reply(inbound, remembered)
            return
        if len(self._tasks) >= self.max_in_flight:
            # A flood, or a broker too slow to keep up: shed load rather than memory.
            self.server.forget(key)
            self._count_reject(inbound.kind, "Overloaded")
            busy = make_response(message, 503, "Service Unavailable", extra=[("Retry-After", "5")])
            self.transport.reply(inbound, serialize(busy))
            return
        task = asyncio.create_task(self._serve(inbound, message, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, inbound: Inbound, request: Request, key: tuple[str, str, str, int]) -> None:
        # Requests inside a click-to-dial leg (its NOTIFYs, the phone's BYE) go to it.
        owned = self.click_to_dial.owns(request)
        handler = self.click_to_dial.on_request if owned else self.handlers.get(request.method)
        reusable = True
        try:
            if handler is None:
                response = make_response(request, 405, "Method Not Allowed", extra=[("Allow", self.allow)])
            elif request.method == "PUBLISH" and not source_allowed(
                inbound.source[0], self.settings.publish_from
            ):
                log.warning("sip PUBLISH from %s:%d refused: not in publish_from", *inbound.source)
                self._count_reject(inbound.kind, "PublishForbidden")
                response = make_response(request, 403, "Forbidden")
            elif unsupported := unsupported_options(request):
                response = make_response(
                    request, 420, "Bad Extension", extra=[("Unsupported", ", ".join(unsupported))]
                )
                if request.method == "NOTIFY":
                    # An error answer ends the subscription at the PBX (RFC 6665 §4.2.2).
                    self.subscriber.on_notify_failed(request, "420 (Require)")
            else:
                response, reusable = await handler(request)
        except BrokerUnavailable:
            # Not remembered: the peer's retransmission gets another try.
            response, reusable = (
                make_response(request, 503, "Service Unavailable", extra=[("Retry-After", "5")]),
                False,
            )
        except Exception:
            log.exception("sip %s from %s:%d failed", request.method, *inbound.source)
            response, reusable = make_response(request, 500, "Server Internal Error"), False
            if request.method == "NOTIFY":
                self.subscriber.on_notify_failed(request)
        if ";tag=" not in (response.headers.get_first("to") or "").replace(" ", ""):
            # A stable tag per transaction: retransmissions see the same dialog id.
            tag = hashlib.blake2s(repr(key).encode(), digest_size=6).hexdigest()
            response.headers.set_single("To", f"{response.headers.get_first('to')};tag={tag}")
        data = serialize(response)
        self.transport.reply(inbound, data)
        if reusable:
            self.server.finish(key, data)
        else:
            self.server.forget(key)

    async def _options(self, request: Request) -> Answer:
        return make_response(
            request, 200, "OK", extra=[("Allow", self.allow), ("Accept", "application/dialog-info+xml")]
        ), True


_KNOWN = frozenset({"NOTIFY", "PUBLISH", "OPTIONS", "ACK", "SUBSCRIBE", "INVITE", "BYE", "CANCEL", "MESSAGE"})
