"""Click-to-dial by REFER: the pure decisions (docs/dialling.md#the-sip-route).

The gateway calls the user's own phone (an INVITE asking it to answer by
itself), and once it answers, REFERs it to the number dialled (RFC 3515,
the click-to-dial flow of RFC 5359 §2.17): the phone places that call
itself, through its PBX, as the user. The phone's NOTIFYs (``message/sipfrag``)
say how that call went; then the gateway hangs up its own leg.

This module decides, ``click_to_dial`` does the I/O:

- the gateway's own legs carry a Call-ID that any instance sharing the
  secret recognises (``leg_call_id``/``is_own_leg``), so the user's dialog
  events never report them as calls;
- what a final answer to the INVITE means (``invite_refused``), what a
  sipfrag says (``sipfrag_status``, ``refer_outcome``);
- which dialog-event ends wait for a sipfrag's reason (``awaits_reason``),
  and how such an end travels to the instance that waits for the sipfrag
  (``held_text``/``held_signal``);
- the SDP the gateway offers (media inactive: it never sends or wants audio);
- the route set and the next hop of in-dialog requests (RFC 3261 §12.2.1.1).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.parsing import parse_decimal
from gateway.sources.endstatus import status_for_code

# Headers asking the phone to answer at once. Phones differ in which one they
# honour (and most only when their auto-answer setting allows it), so all
# three go: Call-Info's answer-after, Alert-Info's alert-autoanswer, and
# RFC 5373's Answer-Mode (without Require, so a phone without it still rings).
AUTO_ANSWER = (
    ("Call-Info", "<{domain}>;answer-after=0"),
    ("Alert-Info", "<{domain}>;info=alert-autoanswer;delay=0"),
    ("Answer-Mode", "Auto"),
)
_LEG_PREFIX = "ctd"
_SIPFRAG = re.compile(r"^\s*SIP/2\.0[ \t]+([0-9]{3})(?:[ \t]+([^\r\n]*))?", re.IGNORECASE)
_URI_HOST = re.compile(
    r"^(?:sips?):(?:[^@;>]*@)?(\[[0-9A-Fa-f:.]+\]|[^:;>?\s]+)(?::([0-9]{1,5}))?([^>?\s]*)", re.IGNORECASE
)


def leg_call_id(secret: bytes, nonce: bytes, host: str) -> str:
    """A Call-ID for one of the gateway's own legs: ``ctd.<nonce>.<mac>@<host>``."""
    mark = nonce.hex()
    return f"{_LEG_PREFIX}.{mark}.{_mac(secret, mark)}@{host}"


def is_own_leg(secret: bytes, call_id: str) -> bool:
    """Whether ``call_id`` is one of ours (made with the same secret, by any instance).

    A MAC rather than a bare prefix: callers choose their own Call-IDs, and
    one must not be able to hide a call from the user's log by mimicking ours.
    """
    local = call_id.partition("@")[0]
    parts = local.split(".")
    if len(parts) != 3 or parts[0] != _LEG_PREFIX:
        return False
    return hmac.compare_digest(parts[2], _mac(secret, parts[1]))


def _mac(secret: bytes, mark: str) -> str:
    return hmac.new(secret, f"click-to-dial:{mark}".encode(), hashlib.sha256).hexdigest()[:20]


def target_uri(number: str, domain: str) -> str:
    """Where the phone is sent: the E.164 number at the PBX, as a telephone number."""
    return f"sip:{number}@{domain};user=phone"


def inactive_sdp(host: str, session: int) -> bytes:
    """An offer (or answer) that holds no media: the gateway never sends or receives audio."""
    family = "IP6" if ":" in host else "IP4"
    lines = [
        "v=0",
        f"o=- {session} {session} IN {family} {host}",
        "s=click-to-dial",
        f"c=IN {family} {host}",
        "t=0 0",
        # Port 9 (discard) and inactive: a valid offer that asks for no stream.
        "m=audio 9 RTP/AVP 0 8",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=inactive",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass(frozen=True)
class Refusal:
    """The INVITE to the user's phone failed before it rang: the dial fails, with this sentence."""

    message: str
    status: int = 502  # HTTP status of the dial request


def invite_refused(code: int, reason: str, aor: str) -> Refusal:
    """One sentence for a final answer >= 300 to the INVITE that reached no ringing phone."""
    said = f"{code} {reason}".strip()
    if code in (401, 407, 403):
        return Refusal(
            f"the PBX refused the gateway's call to your phone {aor} ({said}): check its credentials"
        )
    if code == 404:
        return Refusal(f"the PBX does not know your phone {aor} ({said})")
    if code in (480, 408):
        return Refusal(f"your phone {aor} is not reachable ({said}): is it registered at the PBX?")
    if code in (486, 600, 603):
        return Refusal(f"your phone {aor} is busy or declined the call ({said})")
    return Refusal(f"your phone {aor} could not be called ({said})")


def sipfrag_status(body: bytes) -> tuple[int, str] | None:
    """The status line of a ``message/sipfrag`` body (RFC 3420): ``(486, "Busy Here")``."""
    text = body.decode("utf-8", "replace")
    match = _SIPFRAG.match(text)
    if match is None:
        return None
    code = parse_decimal(match.group(1), max_digits=3)
    if code is None or not 100 <= code <= 699:
        return None
    return code, (match.group(2) or "").strip()


@dataclass(frozen=True)
class Connected:
    """The phone's call to the number was answered: the gateway is done."""


@dataclass(frozen=True)
class Ended:
    """The dialled call is over, with this status (``None``: let the model decide)."""

    status: EndStatus | None
    why: str


Outcome = Connected | Ended


def refer_outcome(code: int, reason: str) -> Outcome | None:
    """What a final status in a sipfrag means for the dialled call; ``None`` while provisional.

    486/600 BUSY, 603 REJECTED, 408/480 NO_ANSWER, 487 CANCELED (the user
    hung up while it rang), any other failure FAILED: the table of
    ``gateway.sources.endstatus``, read for an outbound call.
    """
    if code < 200:
        return None
    if code < 300:
        return Connected()
    return Ended(status_for_code(code, Direction.OUTBOUND), f"the number answered {code} {reason}".strip())


def awaits_reason(signal: Signal) -> str | None:
    """The number whose click-to-dial sipfrag may explain this dialog-event signal; else None.

    The end of an outbound call to a number, with no reason from the PBX
    (no end status, no SIP code): if the user's phone was REFERred to that
    number, the sipfrag says why it ended.
    """
    if (
        signal.phase is Phase.ENDED
        and signal.direction is Direction.OUTBOUND
        and signal.end_status is None
        and signal.sip_code is None
    ):
        return signal.to_number
    return None


def held_text(signal: Signal) -> str:
    """A held end as text for the broker (any instance may deliver it: ``held_signal``)."""
    fields: dict[str, Any] = {
        "source": signal.source,
        "call_id": signal.call_id,
        "user_id": signal.user_id,
        "at_ms": signal.at_ms,
        "from_number": signal.from_number,
        "to_number": signal.to_number,
        "remote_name": signal.remote_name,
        "duration_ms": signal.duration_ms,
        "transferred": signal.transferred,
    }
    return json.dumps(fields, separators=(",", ":"))


def held_signal(text: str) -> Signal | None:
    """The end ``held_text`` made; None for text it did not make."""
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    strings = ("source", "call_id", "user_id")
    optional = ("from_number", "to_number", "remote_name")
    at_ms, duration = fields.get("at_ms"), fields.get("duration_ms")
    if (
        not all(isinstance(fields.get(name), str) for name in strings)
        or not all(fields.get(name) is None or isinstance(fields.get(name), str) for name in optional)
        or type(at_ms) is not int
        or not (duration is None or type(duration) is int)
        or not isinstance(fields.get("transferred"), bool)
    ):
        return None
    return Signal(
        source=fields["source"],
        call_id=fields["call_id"],
        user_id=fields["user_id"],
        direction=Direction.OUTBOUND,
        phase=Phase.ENDED,
        at_ms=at_ms,
        from_number=fields["from_number"],
        to_number=fields["to_number"],
        remote_name=fields["remote_name"],
        duration_ms=duration,
        transferred=fields["transferred"],
    )


def route_set(record_routes: list[str], *, uac: bool = True) -> list[str]:
    """The route set of a dialog from the Record-Route values of the message that made it.

    Each value may hold several comma-separated entries; a UAC reverses them.
    """
    entries = [entry.strip() for value in record_routes for entry in _split_addresses(value)]
    entries = [entry for entry in entries if entry]
    return entries[::-1] if uac else entries


def _split_addresses(value: str) -> list[str]:
    """Split a header value on commas outside ``<...>`` and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    current: list[str] = []
    for char in value:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            depth += 1
        elif not quoted and char == ">":
            depth = max(0, depth - 1)
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def uri_of(address: str) -> str:
    """The URI of a name-addr (``"Bob" <sip:b@h>;tag=1``) or of a bare addr-spec."""
    value = address.strip()
    if "<" in value and ">" in value:
        return value[value.index("<") + 1 : value.index(">")]
    return value.split(";")[0].strip()


@dataclass(frozen=True)
class Hop:
    host: str
    port: int
    transport: str  # "udp" | "tcp"


def next_hop(routes: list[str], remote_target: str, default_transport: str) -> Hop | None:
    """Where an in-dialog request goes: the first route (loose routing), else the remote target."""
    uri = uri_of(routes[0]) if routes else remote_target
    match = _URI_HOST.match(uri.strip())
    if match is None:
        return None
    host, port, params = match.groups()
    number = parse_decimal(port, max_digits=5) if port else 5060
    if number is None or not 0 < number < 65536:
        return None
    transport = default_transport
    found = re.search(r";\s*transport\s*=\s*(udp|tcp)\b", params or "", re.IGNORECASE)
    if found:
        transport = found.group(1).lower()
    return Hop(host.strip("[]"), number, transport)


def tag_of(address: str | None) -> str | None:
    """The ``tag`` parameter of a From or To value (outside the ``<...>``)."""
    if not address:
        return None
    tail = address[address.rindex(">") + 1 :] if ">" in address else address
    found = re.search(r";\s*tag\s*=\s*([^;\s,]+)", tail, re.IGNORECASE)
    return found.group(1) if found else None


def subscription_terminated(value: str | None) -> bool:
    return (value or "").split(";")[0].strip().lower() == "terminated"
