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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from prometheus_client import Counter

from gateway.model import Direction, Phase, Signal, fact_value
from gateway.sources.context import SourceContext
from gateway.sources.webhooks import dialled, telnyx, twilio, vonage
from gateway.sources.webhooks.common import CallEvent, DialTag, Ignored, WebhookError, signals_for
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


@dataclass(frozen=True)
class UserAnswered:
    """The user picked up their own phone on a dial whose provider must be told to connect the target."""

    tag: DialTag
    user_id: str
    control_id: str  # the provider's handle of the user's leg
    target: str  # E.164, from the dialled call's own state
    caller_id: str
    # The dial had ended unanswered before this answer (refused, timed out, past
    # its deadline): the user's phone is to be hung up, the target never called.
    # (An answer redelivered after the call was answered is not: it connects again, once.)
    over: bool = False


AnswerHandler = Callable[[UserAnswered], Awaitable[None]]
# What ends a call the provider placed for a dial already over: the dial's tag, the provider's call id.
OverHandler = Callable[[DialTag, str], Awaitable[None]]


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
        # provider -> what connects the target once the user answered (a
        # provider whose call flow does it by itself, as Twilio's TwiML and
        # Vonage's NCCO do, has none).
        self._on_user_answered: dict[str, AnswerHandler] = {}
        # provider -> what hangs up a call it placed for a dial that had ended
        # meanwhile (a provider whose call flow connects the target by itself).
        self._on_dial_over: dict[str, OverHandler] = {}

    def on_user_answered(self, provider: str, handler: AnswerHandler) -> None:
        self._on_user_answered[provider] = handler

    def on_dial_over(self, provider: str, handler: OverHandler) -> None:
        self._on_dial_over[provider] = handler

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
        if not isinstance(parsed, Ignored) and parsed and parsed[0].dial is not None:
            return await self._receive_dialled(provider, parsed, parsed[0].dial)
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

    async def _receive_dialled(self, provider: str, events: list[CallEvent], tag: DialTag) -> Outcome:
        """A leg of a call the gateway dialled: joined to that call exactly, once checked.

        The tag came back from the provider, signed with the rest (Twilio:
        the URL; Telnyx: the body) or beside it (Vonage: the URL's query).
        It is trusted only as far as it agrees with what the signed event
        says: the user is found from the event's own numbers (the user leg
        rings the user's number; the target leg presents it), the dial must
        be a call of that user's, and the target leg must call its number.
        """
        directory = self._context.directory()
        region = directory.default_region
        first = events[0]
        ours = to_e164(first.to_number if tag.leg == dialled.USER_LEG else first.from_number, region)
        user = directory.by_number(ours) if ours else None
        if user is None:
            return self._ignored(provider, f"no user has number {ours} (the {tag.leg} leg of a dial)")
        tracker = self._context.tracker
        state = await tracker.get_call(user.id, tag.dial_key)
        if state is None or state.call_direction is not Direction.OUTBOUND:
            return self._ignored(
                provider, f"dial {tag.call_id} is not a call {user.login} dialled", "unknown-dial"
            )
        target = fact_value(state.to_number) or ""
        caller_id = fact_value(state.from_number) or ""
        # Ended, never answered: the provider placed this call too late (the
        # dial timed out), or past the dial's deadline.
        over = state.end is not None and state.answered_ms is None
        if tag.leg == dialled.TARGET_LEG and to_e164(first.to_number, region) != target:
            return self._ignored(
                provider, f"the target leg of dial {tag.call_id} does not call {target}", "unknown-dial"
            )
        event_ids: list[str] = []
        accepted = 0
        for event in events:
            said = dialled.for_dialled_call(event, tag.leg)
            if said is None:
                continue
            ended = said.phase is Phase.ENDED
            signal = Signal(
                source=provider,
                call_id=event.call_id,
                user_id=user.id,
                direction=Direction.OUTBOUND,
                phase=said.phase,
                at_ms=said.at_ms,
                # The dialled call's own numbers: the user leg rings the
                # user, which is not whom HubSpot sees the call go to.
                from_number=caller_id,
                to_number=target,
                end_status=said.end_status if ended else None,
                sip_code=said.sip_code if ended else None,
                duration_ms=said.duration_ms,
            )
            event_ids.extend(e.id for e in await tracker.observe(signal, dial_key=tag.dial_key))
            accepted += 1
        answered = any(e.phase is Phase.ANSWERED for e in events)
        handler = self._on_user_answered.get(provider)
        if tag.leg == dialled.USER_LEG and answered and handler is not None and first.control_id:
            await handler(UserAnswered(tag, user.id, first.control_id, target, caller_id, over))
        hang_up = self._on_dial_over.get(provider)
        going_on = not any(e.phase is Phase.ENDED for e in events)
        if tag.leg == dialled.USER_LEG and over and going_on and hang_up is not None:
            await hang_up(tag, first.call_id)
        self._outcomes.labels(provider, "accepted").inc()
        return Outcome(accepted=accepted, event_ids=tuple(event_ids))

    def _ignored(self, provider: str, reason: str, outcome: str = "unknown-number") -> Outcome:
        self._outcomes.labels(provider, outcome).inc()
        log.info("%s webhook ignored: %s", provider, reason)
        return Outcome(ignored=reason)

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
        events = twilio.parse(params, int(time.time() * 1000), settings.call_ttl_seconds * 1000)
        return _tagged(events, dialled.from_url(delivery.url))

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
        events = vonage.parse(delivery.body, int(time.time() * 1000))
        return _tagged(events, dialled.from_url(delivery.url))


def _tagged(parsed: list[CallEvent] | Ignored, tag: DialTag | None) -> list[CallEvent] | Ignored:
    """The events with the dial tag their callback URL carried (signed with it for Twilio)."""
    if tag is None or isinstance(parsed, Ignored):
        return parsed
    return [replace(event, dial=tag) for event in parsed]
