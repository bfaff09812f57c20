"""Webhooks of calls the gateway dialled through a CPaaS: the tag, and what each leg means.

Sans-I/O. A CPaaS route places a dial as two legs: first a call to the
user's own phone (``user``), then, once the user answers, a call to the
number dialled (``target``), connected to it. The route gives the provider
a tag naming our dial and the leg, which the provider carries back in every
webhook of that leg: in the status callback URL's query (Twilio signs the
URL; Vonage's signature covers only the body) or in Telnyx's
``client_state`` (inside the signed body).

What a leg's event means for the dialled call (one call for HubSpot):

- the target leg is the call HubSpot sees: its ringing, answer and end
  (busy, no answer, completed, canceled when the user hung up first) are
  the dialled call's;
- the user leg only decides when the user never talked: their phone
  was busy, declined, never answered or failed, and the number was never
  dialled (CANCELED, or FAILED). Its answer is not the call's answer, and
  its end after an answer is left to the target leg, whose own end says
  what happened (and may reach us after the user leg's).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace
from urllib.parse import parse_qsl, urlencode, urlsplit

from gateway.model import EndStatus, Phase
from gateway.sources.webhooks.common import CallEvent, DialTag

USER_LEG = "user"
TARGET_LEG = "target"
LEGS = (USER_LEG, TARGET_LEG)

# Our dial ids are hex (``secrets.token_hex``); anything else is not a tag of ours.
_DIAL_ID = re.compile(r"^[0-9a-f]{8,64}\Z")


def _tag(call_id: str | None, leg: str | None) -> DialTag | None:
    if call_id is None or leg not in LEGS or not _DIAL_ID.match(call_id):
        return None
    return DialTag(call_id, leg)


def query(tag: DialTag) -> str:
    """The tag as URL query parameters (no leading ``?``)."""
    return urlencode({"dial": tag.call_id, "leg": tag.leg})


def from_url(url: str) -> DialTag | None:
    """The tag in a callback URL's query, if it has one of ours."""
    params = dict(parse_qsl(urlsplit(url).query))
    return _tag(params.get("dial"), params.get("leg"))


def client_state(tag: DialTag) -> str:
    """The tag as Telnyx ``client_state``: base64 of the same query text."""
    return base64.b64encode(query(tag).encode()).decode()


def from_client_state(value: object) -> DialTag | None:
    if not isinstance(value, str) or not value or len(value) > 512:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        return None  # someone else's client_state: not a dial of ours
    params = dict(parse_qsl(text))
    return _tag(params.get("dial"), params.get("leg"))


def for_dialled_call(event: CallEvent, leg: str) -> CallEvent | None:
    """What one leg's event says about the dialled call; None when nothing."""
    if leg == TARGET_LEG:
        return event
    if event.phase is Phase.RINGING:
        return event
    if event.phase is Phase.ANSWERED:
        return None  # the user picked up: the number is dialled next
    if event.end_status is EndStatus.COMPLETED:
        return None  # the user talked: the target leg's end decides
    status = EndStatus.FAILED if event.end_status is EndStatus.FAILED else EndStatus.CANCELED
    return replace(event, end_status=status, duration_ms=None)
