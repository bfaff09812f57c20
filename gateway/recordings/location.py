"""Where a call's recording is, and its stored form (pure)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from gateway import jsontext


@dataclass(frozen=True)
class Recording:
    """One call's recording: the provider's media URL and what the gateway knows of it.

    ``external_id`` is the call's key, the SDK's ``externalCallId`` and the
    engagement's ``hs_call_external_id``. The media URL is fetched with the
    provider's credentials (``provider`` says which); it is never handed out.
    """

    external_id: str
    provider: str  # "twilio", "telnyx", "vonage", "pbx"
    recording_id: str
    media_url: str
    content_type: str
    channels: int | None = None
    portal_id: int | None = None  # the tenant, for a PBX's basic auth and for HubSpot
    # The user whose leg of the call was talked on (a call may ring several):
    # only that leg's engagement gets the recording, also once the call's
    # states are gone. None in a recording kept before it was noted.
    user_id: str | None = None


def encode(recording: Recording) -> str:
    return json.dumps(asdict(recording), separators=(",", ":"))


def decode(raw: str) -> Recording | None:
    """The stored recording, or None for anything that is not one (an older form)."""
    try:
        data = jsontext.loads(raw.encode())
        return Recording(**data) if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None
