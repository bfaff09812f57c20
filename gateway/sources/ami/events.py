"""AMI events to the calls of a ``CallBook`` (pure): which event says what about a channel.

Field names and values as Asterisk's manager events document them
(docs.asterisk.org, "Asterisk 18+ Manager Events"; the same fields in 16,
17, 20 and 21): every channel event carries ``Channel``, ``ChannelState``,
``CallerIDNum``/``Name``, ``ConnectedLineNum``/``Name``, ``Exten``,
``Uniqueid`` and ``Linkedid`` (the call); ``Dial*`` events the same for the
dialled channel prefixed ``Dest``.

| event | what it tells the book |
|---|---|
| ``Newchannel``, ``Newstate``, ``NewConnectedLine``, ``NewCallerid`` | a channel; state 6 (Up) answers it |
| ``CoreShowChannel`` (listed on connect) | the same; in a bridge and Up: talking |
| ``DialBegin`` | the dialled channel (as a channel) |
| ``DialEnd`` | ``DialStatus: ANSWER`` answers the dialled channel; any other is how that ring ended |
| ``BridgeEnter`` | the channel is talking (answered, bridged) |
| ``Hangup`` | the channel is gone, with its Q.850 ``Cause`` |
| ``BlindTransfer``, ``AttendedTransfer`` (``Result: Success``) | the transferer's channels handed it on |

``DialStatus`` to a proposed status: BUSY is BUSY, NOANSWER is NO_ANSWER,
CONGESTION, CHANUNAVAIL and INVALIDARGS are FAILED, DONTCALL and TORTURE
(privacy refusals) are REJECTED, CANCEL (the caller gave up, or another
phone answered) proposes nothing: the hang-up cause and the call decide.

Queues and ring groups (FreePBX) ring each member through a ``Local``
channel, which then dials the phone: the Local channels are helpers, the
phones' own channels make the users' legs, and all of them share the
caller's ``Linkedid``. A channel named ``Local/<extension>@<context>`` is
a helper (its device: the extension it dials, which names who a dialled
call rings first); any other ``Tech/resource-suffix`` names the extension
``resource``.
"""

from __future__ import annotations

import re
import time

from gateway.model import EndStatus, Signal
from gateway.sources.ami.protocol import Message
from gateway.sources.pbxcalls import BadEvent as BadEvent  # what apply raises, named here too
from gateway.sources.pbxcalls import CallBook, ChannelInfo
from gateway.sources.q850 import parse_cause, status_for_cause
from gateway.users.directory import Directory

UP = "6"
# The Uniqueid the gateway gives the first channel of a call it originates:
# the call's Linkedid then names the dialled call (docs/pbx.md#click-to-dial).
DIAL_PREFIX = "gwdial-"
_ID = re.compile(r"^[A-Za-z0-9._:@+=/-]{1,128}\Z")
_CHANNEL = re.compile(r"^([A-Za-z0-9_]+)/(.+?)(?:-[0-9A-Fa-f]+)?(?:;[12])?\Z")
DIAL_STATUS: dict[str, EndStatus | None] = {
    "BUSY": EndStatus.BUSY,
    "NOANSWER": EndStatus.NO_ANSWER,
    "CONGESTION": EndStatus.FAILED,
    "CHANUNAVAIL": EndStatus.FAILED,
    "INVALIDARGS": EndStatus.FAILED,
    "DONTCALL": EndStatus.REJECTED,
    "TORTURE": EndStatus.REJECTED,
    "CANCEL": None,
}
CHANNEL_EVENTS = frozenset({"newchannel", "newstate", "newconnectedline", "newcallerid", "coreshowchannel"})


def dial_of(call_id: str) -> str | None:
    """The dial id in a Linkedid the gateway set (``gwdial-<id>``), else None."""
    return (call_id.removeprefix(DIAL_PREFIX) or None) if call_id.startswith(DIAL_PREFIX) else None


def at_ms(message: Message, now_ms: int) -> int:
    """The event's ``Timestamp`` (``timestampevents = yes``) in ms, else the time it arrived."""
    raw = message.get("timestamp")
    try:
        stamp = float(raw)
    except ValueError:
        return now_ms
    return int(stamp * 1000) if 0 < stamp < 2**33 else now_ms


def channel_info(message: Message, prefix: str = "") -> ChannelInfo:
    """The channel an event describes (``prefix="Dest"``: the dialled one)."""
    uid = message.get(prefix + "uniqueid")
    call_id = message.get(prefix + "linkedid") or uid
    if not _ID.match(uid) or not _ID.match(call_id):
        raise BadEvent(f"{message.event or 'event'}: {prefix}Uniqueid/{prefix}Linkedid are not ids")
    name = message.get(prefix + "channel")
    match = _CHANNEL.match(name)
    tech, resource = (match.group(1), match.group(2)) if match else ("", "")
    helper = tech.lower() == "local"
    state = message.get(prefix + "channelstate")
    return ChannelInfo(
        uid=uid,
        call_id=call_id,
        # A Local channel's is the extension it dials (Local/<extension>@<context>).
        device=(resource.split("@", 1)[0] if helper else resource) or None,
        helper=helper,
        caller_num=message.get(prefix + "calleridnum") or None,
        caller_name=message.get(prefix + "calleridname") or None,
        connected_num=message.get(prefix + "connectedlinenum") or None,
        connected_name=message.get(prefix + "connectedlinename") or None,
        exten=message.get(prefix + "exten") or None,
        up=state == UP,
        bridged=state == UP and bool(message.get("bridgeid")),
    )


def apply(book: CallBook, message: Message, directory: Directory, now_ms: int | None = None) -> list[Signal]:
    """The signals one AMI event makes; raises ``BadEvent`` for one with broken ids."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    when = at_ms(message, now)
    kind = message.event.lower()
    if kind in CHANNEL_EVENTS:
        return book.channel(channel_info(message), when, directory)
    if kind == "dialbegin":
        return book.channel(channel_info(message, "dest"), when, directory)
    if kind == "dialend":
        dest = channel_info(message, "dest")
        status = message.get("dialstatus").upper()
        if status == "ANSWER":
            return book.dial_answered(dest.uid, when, directory)
        caller = message.get("uniqueid") or None
        return book.dial_result(caller, dest.uid, DIAL_STATUS.get(status, EndStatus.FAILED), when, directory)
    if kind == "bridgeenter":
        return book.bridged(channel_info(message).uid, when, directory)
    if kind == "hangup":
        info = channel_info(message)
        proposed, elsewhere = status_for_cause(parse_cause(message.get("cause")))
        return book.hangup(info.uid, when, directory, proposed, elsewhere)
    if kind == "blindtransfer" and message.get("result").lower() == "success":
        book.transferred(message.get("transfereruniqueid"))
    if kind == "attendedtransfer" and message.get("result").lower() == "success":
        book.transferred(message.get("origtransfereruniqueid"))
        book.transferred(message.get("secondtransfereruniqueid"))
    return []
