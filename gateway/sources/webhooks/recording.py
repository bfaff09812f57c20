"""A provider's word that a call's recording is saved: where it is, and what it is.

Sans-I/O. Each provider module reads its own recording callback into a
``RecordingEvent`` (``twilio.recording``, ``telnyx.recording``,
``vonage.recording``); ``gateway.recordings`` keeps it for the call and
serves it to HubSpot. The media URL is the provider's: fetching it may need
the provider's credentials, which never leave the gateway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.sources.webhooks.common import DialTag, WebhookError

# Provider recording ids are opaque; refuse only what could not be one.
_RECORDING_ID = re.compile(r"^[\x21-\x7e]{1,128}\Z")

CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "mp4": "audio/mp4"}


@dataclass(frozen=True)
class RecordingEvent:
    """One saved recording of one call leg, as the provider reported it."""

    provider: str
    call_id: str  # the provider's id of the leg: the call key is ``provider:call_id``
    recording_id: str
    media_url: str
    content_type: str
    channels: int | None = None
    # A leg of a call the gateway dialled (its call key is then the dial's).
    dial: DialTag | None = None
    # Vonage names the conversation, not the leg; the leg is found from it.
    conversation_id: str | None = None

    @property
    def call_key(self) -> str:
        return self.dial.dial_key if self.dial is not None else f"{self.provider}:{self.call_id}"


def recording_id(value: object, field: str) -> str:
    if not isinstance(value, str) or not _RECORDING_ID.match(value):
        raise WebhookError(400, f"{field} must be 1-128 printable characters", "bad-payload")
    return value


def https_url(value: object, field: str) -> str:
    """A media URL: absolute http(s), no spaces or control characters, at most 2048 characters."""
    if (
        not isinstance(value, str)
        or len(value) > 2048
        or not value.startswith(("https://", "http://"))
        or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value)
    ):
        raise WebhookError(400, f"{field} must be an absolute http(s) URL", "bad-payload")
    return value
