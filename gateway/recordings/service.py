"""Recordings from the sources to HubSpot: what the web layer calls.

In: a provider's recording callback (``receive``), verified as that
provider signs its webhooks, read into a ``RecordingEvent`` and kept for
the call (``RecordingStore``). Out: the authenticated URL HubSpot asks for
(``authed_url``, a short-lived link of ``links``) and the media behind it
(``media``, fetched by ``MediaFetcher``). Told: HubSpot hears once per
recording (``RecordingAnnouncer``) as soon as both the recording and the
call's engagement are known, whichever came first (``on_engagement`` is
the engagement's side). docs/recordings.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from prometheus_client import Counter

from gateway.config import Settings
from gateway.hubspot.crm import CallRecords, Leg
from gateway.hubspot.errors import HubSpotError
from gateway.model import CallState, engagement_properties
from gateway.ops.metrics import Metrics
from gateway.recordings import ranges
from gateway.recordings.announce import RecordingAnnouncer
from gateway.recordings.links import LinkSigner
from gateway.recordings.location import Recording
from gateway.recordings.media import Media, MediaFetcher, MediaUnavailable
from gateway.recordings.settings import RecordingSettings
from gateway.recordings.store import RecordingStore
from gateway.sources.webhooks import dialled, telnyx, twilio, vonage
from gateway.sources.webhooks.common import Ignored, WebhookError
from gateway.sources.webhooks.receiver import Delivery
from gateway.sources.webhooks.recording import RecordingEvent
from gateway.tracker import CallTracker
from gateway.users.directory import Directory, User

log = logging.getLogger("gateway.recordings")

CPAAS = ("twilio", "telnyx", "vonage")
# (user id, external call id, the leg's properties): the leg the gateway's
# call logger logs the user's call as (its owner fixed when the call was
# settled), None when it has not settled the call.
LoggedLeg = Callable[[str, str, Mapping[str, object]], Awaitable[Leg | None]]


@dataclass(frozen=True)
class Received:
    """What came of a verified recording callback."""

    external_id: str | None = None
    ignored: str | None = None


class RecordingService:
    def __init__(
        self,
        settings: Settings,
        recordings: RecordingSettings,
        store: RecordingStore,
        fetcher: MediaFetcher,
        links: LinkSigner,
        tracker: CallTracker,
        directory: Callable[[], Directory],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.recordings = recordings
        self._store = store
        self._fetcher = fetcher
        self._links = links
        self._tracker = tracker
        self._directory = directory
        self._telnyx_key: Ed25519PublicKey | None = (
            telnyx.load_public_key(settings.telnyx_public_key) if settings.telnyx_public_key else None
        )
        # Set when the gateway has its HubSpot connection (the merge plugs both).
        self.announcer: RecordingAnnouncer | None = None
        self.records: CallRecords | None = None
        self.logged_leg: LoggedLeg | None = None  # set when the gateway logs calls itself
        self._outcomes = Counter(
            "gateway_recordings_total",
            "Recording callbacks verified, by provider and outcome",
            ["provider", "outcome"],
            registry=metrics.registry,
        )

    # -- lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._fetcher.close()

    # -- in: the providers' recording callbacks -----------------------------------
    def disabled_reason(self, provider: str) -> str | None:
        setting = {
            "twilio": ("twilio_auth_token", "GATEWAY_TWILIO_AUTH_TOKEN"),
            "telnyx": ("telnyx_public_key", "GATEWAY_TELNYX_PUBLIC_KEY"),
            "vonage": ("vonage_signature_secret", "GATEWAY_VONAGE_SIGNATURE_SECRET"),
        }[provider]
        if getattr(self.settings, setting[0]):
            return None
        return f"{provider} recording callbacks are not configured: set {setting[1]}"

    def _read(self, provider: str, delivery: Delivery) -> RecordingEvent | Ignored:
        """Verify the delivery as the provider signs its webhooks; read its recording."""
        settings, now_s = self.settings, int(time.time())
        if provider == "twilio":
            params = twilio.verify(
                settings.twilio_auth_token,
                delivery.url,
                delivery.body,
                delivery.headers.get("x-twilio-signature"),
            )
            event = twilio.recording(params)
            # A dialled call's tag rides in the callback URL, signed with it.
            tag = dialled.from_url(delivery.url)
            return replace(event, dial=tag) if tag is not None and not isinstance(event, Ignored) else event
        if provider == "telnyx":
            assert self._telnyx_key is not None
            telnyx.verify(
                self._telnyx_key,
                delivery.headers.get("telnyx-timestamp"),
                delivery.headers.get("telnyx-signature-ed25519"),
                delivery.body,
                now_s,
                settings.replay_window_seconds,
            )
            return telnyx.recording(delivery.body)
        vonage.verify(
            settings.vonage_signature_secret,
            delivery.headers.get("authorization"),
            delivery.body,
            now_s,
            settings.replay_window_seconds,
        )
        return vonage.recording(delivery.body)

    async def receive(self, provider: str, delivery: Delivery) -> Received:
        """Verify, read and keep one recording callback; ``WebhookError`` if refused."""
        disabled = self.disabled_reason(provider)
        if disabled:
            raise WebhookError(404, disabled, "disabled")
        event = self._read(provider, delivery)
        if isinstance(event, Ignored):
            return self._ignored(provider, event.reason)
        if event.conversation_id is not None and not event.call_id:
            leg = await self._store.leg_of(event.conversation_id)
            if leg is None:
                return self._ignored(provider, f"no call of conversation {event.conversation_id} was seen")
            event = replace(event, call_id=leg)
        found = await self._find_call(event.call_key)
        if found is None:
            return self._ignored(provider, f"call {event.call_key} is not one of the gateway's calls")
        user, state = found
        recording = Recording(
            external_id=event.call_key,
            provider=event.provider,
            recording_id=event.recording_id,
            media_url=event.media_url,
            content_type=event.content_type,
            channels=event.channels,
            portal_id=user.tenant,
            user_id=user.id,
        )
        await self._store.keep(recording)
        self._outcomes.labels(provider, "accepted").inc()
        log.info("%s recording %s kept for call %s", provider, event.recording_id, event.call_key)
        # Read again now that the recording is kept: an engagement reported
        # since the first read found no recording to announce (on_engagement).
        state = await self._tracker.get_call(user.id, event.call_key) or state
        engagement = (
            str(state.engagement_id)
            if state.engagement_id is not None
            else await self._logged_engagement(user, state, recording)
        )
        await self._announce(recording, engagement)
        return Received(external_id=event.call_key)

    async def note_vonage_status(self, body: bytes) -> None:
        """A verified Vonage status event: remember which leg its conversation is."""
        pair = vonage.conversation(body)
        if pair is not None:
            await self._store.remember_conversation(pair[1], pair[0])

    def _ignored(self, provider: str, reason: str) -> Received:
        self._outcomes.labels(provider, "ignored").inc()
        log.info("%s recording callback ignored: %s", provider, reason)
        return Received(ignored=reason)

    # -- the engagement's side ------------------------------------------------------
    async def on_engagement(self, portal_id: int, user_id: str, external_id: str, engagement_id: int) -> None:
        """The engagement of the user's leg of the call is known (the widget's, or the gateway's).

        The recording is the leg's that was talked on: told by the call's
        states while they are kept, else by the recording (whose leg it was
        found on when it came).
        """
        recording = await self.find(external_id)
        if recording is None:
            return
        talked = _talked(await self._legs(external_id))
        if recording.provider == "pbx" and talked is not None and talked[1].answered_ms is None:
            return  # a template names a file for every call; a PBX records only talk
        talker = talked[0].id if talked is not None else recording.user_id
        if talker is not None and talker != user_id:
            return  # another user's leg (the call rang them too): its engagement has no recording
        if recording.provider == "pbx":
            # A template's recording is found through the call's state, which
            # expires long before users stop playing it: kept as a provider's is.
            await self._store.keep(recording)
        await self._announce(recording, str(engagement_id), portal_id)

    async def _announce(
        self, recording: Recording, engagement: str | None, portal_id: int | None = None
    ) -> None:
        portal = portal_id if portal_id is not None else recording.portal_id
        if self.announcer is None or portal is None or engagement is None:
            return  # with no engagement yet, on_engagement announces it once there is one
        if await self._store.first_announcement(recording):
            try:
                await self.announcer.on_recording(portal, recording.external_id, engagement)
            except BaseException:
                # Not handed on (the outbox's store down): marked as told,
                # HubSpot would never hear of it. The provider retries a
                # callback answered 503, and that one announces it.
                await self._store.announcement_failed(recording)
                raise

    async def _logged_engagement(self, user: User, state: CallState, recording: Recording) -> str | None:
        """The engagement the gateway's own log made for the user's leg of the call.

        Every user a call rang has an engagement of their own under its one
        ``hs_call_external_id``; the owner tells them apart, else what the
        log wrote of the leg, as in the log job (docs/call-logging.md): the
        owner the log job writes, fixed when the call was settled, not the
        user's owner now. Not found (or an owner HubSpot will not name): the
        log job's engagement reaches ``on_engagement`` when it is made.
        """
        status = state.end_status()
        if self.records is None or self.announcer is None or status is None:
            return None  # the gateway logs a call only once it ended
        properties = engagement_properties(state, status)
        try:
            leg = (
                await self.logged_leg(user.id, recording.external_id, properties)
                if self.logged_leg is not None
                else None
            )
            if leg is None:
                # No owner kept for the leg: a call logged by a version that
                # did not keep it (or no call logger here): its owner now.
                owner = (
                    await self.records.owner_id(user.tenant, user.hubspot_user_id)
                    if user.hubspot_user_id is not None
                    else None
                )
                leg = Leg.of(owner, properties)
            return await self.records.find_owned_call(user.tenant, recording.external_id, leg)
        except HubSpotError as exc:
            log.warning("looking up the engagement of call %s failed (%s)", recording.external_id, exc.reason)
            return None

    # -- out: HubSpot's authed URL and the media ---------------------------------
    async def find(self, external_id: str) -> Recording | None:
        """The call's recording: one a provider reported, else its tenant's PBX template's."""
        kept = await self._store.find(external_id)
        if kept is not None:
            return kept
        source = external_id.partition(":")[0]
        if source in CPAAS or not self.recordings.pbx:
            return None
        found = await self._find_call(external_id)
        if found is None:
            return None
        pbx = self.recordings.pbx.get(found[0].tenant)
        if pbx is None:
            return None
        return Recording(
            external_id=external_id,
            provider="pbx",
            recording_id=external_id,
            media_url=pbx.url_for(external_id),
            content_type=pbx.content_type,
            portal_id=found[0].tenant,
            user_id=found[0].id,
        )

    async def authed_url(self, external_id: str, base_url: str) -> str | None:
        """A link under ``base_url`` to the call's recording that works ``link_seconds``; None if none."""
        if await self.find(external_id) is None:
            return None
        token = self._links.issue(external_id, int(time.time()) + self.recordings.link_seconds)
        return f"{base_url}/recordings/{token}"

    def link_target(self, token: str) -> str:
        """The external id a media link names; ``LinkRefused`` if it is not a live link of ours."""
        return self._links.verify(token, int(time.time()))

    async def media(self, external_id: str, range_header: str | None) -> Media:
        recording = await self.find(external_id)
        if recording is None:
            raise MediaUnavailable(404, "the call has no recording any more")
        return await self._fetcher.open(recording, ranges.parse(range_header))

    async def _find_call(self, call_key: str) -> tuple[User, CallState] | None:
        """The user whose call this is, and its state (``_talked``)."""
        return _talked(await self._legs(call_key))

    async def _legs(self, call_key: str) -> list[tuple[User, CallState]]:
        """Every user's leg of the call: each user's calls are asked in turn.

        The broker keeps calls per user; a recording callback names only the
        call. One lookup per user is fine for the directories this serves.
        """
        legs = []
        for user in self._directory():
            state = await self._tracker.get_call(user.id, call_key)
            if state is not None:
                legs.append((user, state))
        return legs


def _talked(legs: list[tuple[User, CallState]]) -> tuple[User, CallState] | None:
    """The leg the recording is of: of a call that rang several users (a ring group), the answered one."""
    return next((leg for leg in legs if leg[1].answered_ms is not None), legs[0] if legs else None)
