"""Twilio's RecordingStatusCallback as Twilio posts it, for the gateway's recording route."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.support.cpaas import PUBLIC_URL, TWILIO_TOKEN, twilio_sign
from tests.support.twilio_api import ACCOUNT_SID

TWILIO_RECORDING = "RE" + "7" * 32
TWILIO_MEDIA = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{TWILIO_RECORDING}"
TWILIO_RECORDING_URL = PUBLIC_URL + "/webhooks/twilio/recording-status"


def twilio_recording(
    twilio_url: str, sid: str, token: str = TWILIO_TOKEN, **extra: str
) -> tuple[bytes, dict[str, str]]:
    """A RecordingStatusCallback as Twilio posts it (form, signed over the callback URL)."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid,
        "RecordingSid": TWILIO_RECORDING,
        "RecordingUrl": twilio_url + TWILIO_MEDIA,
        "RecordingStatus": "completed",
        "RecordingDuration": "1",
        "RecordingChannels": "2",
        "RecordingSource": "DialVerb",
        "RecordingStartTime": "Tue, 01 Dec 2026 10:00:00 +0000",
    }
    params.update(extra)
    return urlencode(params).encode(), {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_sign(token, TWILIO_RECORDING_URL, params),
    }
