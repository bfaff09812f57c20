"""One CPaaS webhook delivery, from the bytes the provider sent to the tracker.

Each delivery goes: signature -> payload -> direction -> user -> tracker.
No web framework here: the HTTP layer (``gateway.http.webhooks``) hands over
the URL the provider requested, the headers and the body, and turns a
``WebhookError`` into its status. Verified deliveries are counted in
``gateway_webhooks_total`` by provider and outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from prometheus_client import Counter

from gateway.model import Direction
from gateway.sources.context import SourceContext
from gateway.sources.webhooks import telnyx, twilio, vonage
from gateway.sources.webhooks.common import CallEvent, Ignored, WebhookError, signals_for
from gateway.users.phone import to_e164

log = logging.getLogger("gateway.webhooks")


@dataclass(frozen=True)
class Delivery:
    """What the provider sent, as the receiver needs it."""

    url: str  # as the provider requested it, path and query still escaped
    headers: Mapping[str, str]  # names in lower case
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """What came of a verified delivery: the events emitted, or why it was ignored."""

    accepted: int = 0
    event_ids: tuple[str, ...] = ()
    ignored: str | None = None


Reader = Callable[[Delivery], list[CallEvent] | Ignored]


class WebhookReceiver:
    def __init__(self, context: SourceContext) -> None:
        self._context = context
        settings = context.settings
        self._outcomes = Counter(
            "gateway_webhooks_total",
            "Verified CPaaS webhook deliveries, by provider and outcome",
            ["provider", "outcome"],
            registry=context.metrics.registry,
        )
        self._telnyx_key = (
            telnyx.load_public_key(settings.telnyx_public_key) if settings.telnyx_public_key else None
        )
        # provider -> (reader, or None when off; the setting that turns it on)
        self._readers: dict[str, tuple[Reader | None, str]] = {
            "twilio": (self._twilio if settings.twilio_auth_token else None, "GATEWAY_TWILIO_AUTH_TOKEN"),
            "telnyx": (self._telnyx if self._telnyx_key else None, "GATEWAY_TELNYX_PUBLIC_KEY"),
            "vonage": (
                self._vonage if settings.vonage_signature_secret else None,
                "GATEWAY_VONAGE_SIGNATURE_SECRET",
            ),
        }

    def disabled_reason(self, provider: str) -> str | None:
        """Why the provider's deliveries are refused, or None when they are taken."""
        reader, setting = self._readers[provider]
        return None if reader is not None else f"{provider} webhooks are not configured: set {setting}"

    async def receive(self, provider: str, delivery: Delivery) -> Outcome:
        """Verify, read and hand over one delivery; ``WebhookError`` if refused.

        ``BrokerUnavailable`` and ``Conflict`` pass through: the provider
        retries, and a retry is harmless.
        """
        reader, _ = self._readers[provider]
        if reader is None:
            raise WebhookError(404, self.disabled_reason(provider) or "", "disabled")
        parsed = reader(delivery)
        if not isinstance(parsed, Ignored):
            parsed = [await self._settle_direction(provider, event) for event in parsed]
        signals = signals_for(parsed, provider, self._context.directory())
        if isinstance(signals, Ignored):
            # Answered 2xx: the delivery was genuine, and retrying it cannot help.
            self._outcomes.labels(provider, signals.outcome).inc()
            log.info("%s webhook ignored: %s", provider, signals.reason)
            return Outcome(ignored=signals.reason)
        event_ids = await self._context.tracker.observe_all(signals)
        self._outcomes.labels(provider, "accepted").inc()
        return Outcome(accepted=len(signals), event_ids=tuple(event_ids))

    async def _settle_direction(self, provider: str, event: CallEvent) -> CallEvent:
        """An event without a direction between two users' numbers belongs to
        the user whose side already holds the call (the leg's initiating
        event said which); only a leg never seen before is taken as inbound."""
        if event.direction is not None:
            return event
        directory = self._context.directory()
        region = directory.default_region
        to_user = directory.by_number(to_e164(event.to_number, region) or "")
        from_user = directory.by_number(to_e164(event.from_number, region) or "")
        if to_user is None or from_user is None or to_user is from_user:
            return event
        key = f"{provider}:{event.call_id}"
        tracker = self._context.tracker
        if await tracker.get_call(to_user.id, key) is None and await tracker.get_call(from_user.id, key):
            return replace(event, direction=Direction.OUTBOUND)
        return event

    def _twilio(self, delivery: Delivery) -> list[CallEvent] | Ignored:
        settings = self._context.settings
        params = twilio.verify(
            settings.twilio_auth_token,
            delivery.url,
            delivery.body,
            delivery.headers.get("x-twilio-signature"),
        )
        return twilio.parse(params, int(time.time() * 1000), settings.call_ttl_seconds * 1000)

    def _telnyx(self, delivery: Delivery) -> list[CallEvent] | Ignored:
        assert self._telnyx_key is not None
        telnyx.verify(
            self._telnyx_key,
            delivery.headers.get("telnyx-timestamp"),
            delivery.headers.get("telnyx-signature-ed25519"),
            delivery.body,
            int(time.time()),
            self._context.settings.replay_window_seconds,
        )
        return telnyx.parse(delivery.body)

    def _vonage(self, delivery: Delivery) -> list[CallEvent] | Ignored:
        vonage.verify(
            self._context.settings.vonage_signature_secret,
            delivery.headers.get("authorization"),
            delivery.body,
            int(time.time()),
            self._context.settings.replay_window_seconds,
        )
        return vonage.parse(delivery.body, int(time.time() * 1000))
