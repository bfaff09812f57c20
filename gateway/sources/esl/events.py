"""Event socket events to the calls of a ``CallBook`` (pure): which FreeSWITCH event says what.

Headers as FreeSWITCH sends them in ``text/event-plain`` ("Event List" and
"Channel Variables" in the FreeSWITCH documentation): ``Unique-ID`` (the
channel), ``Channel-Call-UUID`` (the call: the first leg's uuid, shared by
the legs it bridges to), ``Channel-Name`` (``sofia/<profile>/<user>@<host>``),
``Call-Direction`` (``inbound`` into the switch, ``outbound`` from it),
``Caller-Caller-ID-Number``/``Name``, ``Caller-Destination-Number``,
``Answer-State``, and on ``CHANNEL_HANGUP_COMPLETE`` ``Hangup-Cause`` and
every ``variable_*``.

| event | what it tells the book |
|---|---|
| ``CHANNEL_CREATE``, ``CHANNEL_PROGRESS``, ``CHANNEL_PROGRESS_MEDIA`` | a channel, its numbers |
| ``CHANNEL_ANSWER`` | the channel answered |
| ``CHANNEL_BRIDGE`` | both ``Bridge-A-Unique-ID`` and ``Bridge-B-Unique-ID`` are talking |
| ``CHANNEL_HANGUP_COMPLETE`` | the channel is gone: ``Hangup-Cause`` (below); a transfer first |
| ``CUSTOM`` ``sofia::transferor`` | the channel's user transferred the call |

A channel the switch placed (``Call-Direction: outbound``, a b-leg) shows
the caller it was given (``Caller-Caller-ID-Number``) as the phone's
connected line. ``Hangup-Cause`` names: the Q.850 names of
``gateway.sources.q850``; ``ORIGINATOR_CANCEL`` (the caller gave up) proposes
nothing; ``LOSE_RACE`` and ``PICKED_OFF`` (another phone of a group, or a
pickup, took the call) are answered elsewhere; ``ALLOTTED_TIMEOUT`` is
NO_ANSWER; ``ATTENDED_TRANSFER``, ``BLIND_TRANSFER``, or a
``variable_sip_refer_to`` (the phone sent a REFER) make the leg transferred;
any other name is FAILED. ``loopback/...`` channels are helpers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.model import EndStatus, Signal
from gateway.sources.esl.protocol import Event
from gateway.sources.pbxcalls import BadEvent as BadEvent  # what apply raises, named here too
from gateway.sources.pbxcalls import CallBook, ChannelInfo
from gateway.sources.q850 import CAUSE_NAMES, parse_cause, status_for_cause
from gateway.users.directory import Directory

_ID = re.compile(r"^[A-Za-z0-9._:@+=/-]{1,128}\Z")
_NAME = re.compile(r"^([A-Za-z0-9_.]+)/(?:[^/]+/)?(?:sips?:)?([^@/;:]+)")
_DIAL_UUID = re.compile(r"^([0-9a-f]{8})-([0-9a-f]{4})-4([0-9a-f]{3})-a([0-9a-f])67-67776469616c\Z")
ELSEWHERE = frozenset({"LOSE_RACE", "PICKED_OFF"})
TRANSFERS = frozenset({"ATTENDED_TRANSFER", "BLIND_TRANSFER"})
GAVE_UP = frozenset({"ORIGINATOR_CANCEL", *TRANSFERS})
HELPERS = frozenset({"loopback"})
CHANNEL_EVENTS = frozenset(
    {"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_CALLSTATE"}
)
# What the gateway subscribes to (``event plain ...``).
SUBSCRIBED = (
    "CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER CHANNEL_BRIDGE "
    "CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB CUSTOM sofia::transferor"
)


def dial_uuid(dial_id: str) -> str:
    """The ``origination_uuid`` of a call the gateway dials: a UUID that carries the dial id (16 hex)."""
    c = dial_id.lower()
    if not re.fullmatch(r"[0-9a-f]{16}", c):
        raise ValueError(f"dial id {dial_id!r} is not 16 hex digits")
    return f"{c[0:8]}-{c[8:12]}-4{c[12:15]}-a{c[15]}67-67776469616c"


def dial_of(call_id: str) -> str | None:
    """The dial id a call uuid the gateway chose carries, else None."""
    match = _DIAL_UUID.match(call_id)
    return "".join(match.groups()) if match else None


def _device(name: str) -> tuple[str | None, bool]:
    match = _NAME.match(name)
    if not match:
        return None, False
    tech, user = match.groups()
    if tech.lower() in HELPERS:
        return None, True
    return user, False


def _info(get: Mapping[str, str] | Any, *, listed: bool = False) -> ChannelInfo:
    def field(event_name: str, row_name: str) -> str:
        return str(get.get(row_name if listed else event_name.lower(), "") or "")

    uid = field("Unique-ID", "uuid")
    call_id = field("Channel-Call-UUID", "call_uuid") or uid
    if not _ID.match(uid) or not _ID.match(call_id):
        raise BadEvent("Unique-ID/Channel-Call-UUID are not ids")
    device, helper = _device(field("Channel-Name", "name"))
    placed = field("Call-Direction", "direction").lower() == "outbound"
    caller_num = field("Caller-Caller-ID-Number", "cid_num") or None
    caller_name = field("Caller-Caller-ID-Name", "cid_name") or None
    if listed:
        up = field("", "callstate").upper() == "ACTIVE"
    else:
        up = field("Answer-State", "").lower() == "answered"
    return ChannelInfo(
        uid=uid,
        call_id=call_id,
        device=device,
        helper=helper,
        caller_num=caller_num,
        caller_name=caller_name,
        connected_num=caller_num if placed else field("Caller-Callee-ID-Number", "callee_num") or None,
        connected_name=caller_name if placed else field("Caller-Callee-ID-Name", "callee_name") or None,
        exten=field("Caller-Destination-Number", "dest") or None,
        up=up,
        bridged=up and listed,
    )


def hangup_status(event: Event) -> tuple[EndStatus | None, bool]:
    """(proposed status, answered elsewhere) from ``Hangup-Cause``; see the module's notes."""
    cause = event.get("hangup-cause").upper()
    if cause in GAVE_UP:
        return None, False
    if cause in ELSEWHERE:
        return EndStatus.CANCELED, True
    if cause == "ALLOTTED_TIMEOUT":
        return EndStatus.NO_ANSWER, False
    if cause in CAUSE_NAMES:
        return status_for_cause(CAUSE_NAMES[cause])
    number = parse_cause(event.get("variable_hangup_cause_q850"))
    return status_for_cause(number) if number is not None else (EndStatus.FAILED, False)


def apply(book: CallBook, event: Event, directory: Directory, now_ms: int) -> list[Signal]:
    """The signals one event makes; raises ``BadEvent`` for one with broken ids."""
    name = event.name.upper()
    when = _at_ms(event, now_ms)
    if name in CHANNEL_EVENTS:
        return book.channel(_info(event.headers), when, directory)
    if name == "CHANNEL_ANSWER":
        info = _info(event.headers)
        return book.channel(info, when, directory) + book.answered(info.uid, when, directory)
    if name == "CHANNEL_BRIDGE":
        out = book.channel(_info(event.headers), when, directory)
        for uid in (event.get("bridge-a-unique-id"), event.get("bridge-b-unique-id")):
            out += book.bridged(uid, when, directory)
        return out
    if name == "CHANNEL_HANGUP_COMPLETE":
        info = _info(event.headers)
        cause = event.get("hangup-cause").upper()
        if cause in TRANSFERS or event.get("variable_sip_refer_to"):
            book.transferred(info.uid)
        proposed, elsewhere = hangup_status(event)
        return book.hangup(info.uid, when, directory, proposed, elsewhere)
    if name == "CUSTOM" and event.get("event-subclass").lower() == "sofia::transferor":
        book.transferred(event.get("unique-id"))
    return []


def listed(book: CallBook, body: str, directory: Directory, now_ms: int) -> list[Signal]:
    """The channels of ``show channels as json``, each as a channel event; bad rows skipped."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadEvent("show channels did not answer JSON") from None
    rows = data.get("rows", []) if isinstance(data, dict) else []
    out: list[Signal] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        try:
            info = _info(row, listed=True)
        except BadEvent:
            continue
        out += book.channel(info, now_ms, directory)
    return out


def _at_ms(event: Event, now_ms: int) -> int:
    # Event-Date-Timestamp: microseconds since the epoch.
    raw = event.get("event-date-timestamp")
    if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**53:
        return int(raw) // 1000
    return now_ms
