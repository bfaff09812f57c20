"""The generic signal format, for in-house scripts and PBX dialplan hooks.

Sans-I/O: bytes in, signals (or a precise error) out. A request carries one
signal object, or ``{"signals": [...]}`` with up to ``MAX_BATCH``; either all
of them are accepted or none is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway import jsontext
from gateway.model import Direction, EndStatus, Phase, Signal
from gateway.users.directory import Directory
from gateway.users.phone import to_e164

MAX_BATCH = 100
_CALL_ID = re.compile(r"^[A-Za-z0-9._:@+=/-]{1,128}\Z")
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}\Z")
_KNOWN = {
    "source",
    "callId",
    "user",
    "aor",
    "userNumber",
    "direction",
    "phase",
    "at",
    "from",
    "to",
    "remoteName",
    "endStatus",
    "sipCode",
    "durationMs",
    "transferred",
}

# What each choice accepts, made once rather than per signal.
_DIRECTIONS = {d.value: d for d in Direction}
_PHASES = {p.name.lower(): p for p in Phase}
_END_STATUSES = {s.value: s for s in EndStatus}


@dataclass
class IngestError(ValueError):
    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def parse_signals(body: bytes, directory: Directory, now_ms: int) -> list[Signal]:
    try:
        data = jsontext.loads(body)
    except ValueError as exc:  # bad UTF-8, bad JSON, or an integer too long to read
        raise IngestError(400, f"body is not JSON: {exc}") from None
    if isinstance(data, dict) and "signals" in data:
        items = data["signals"]
        if not isinstance(items, list) or not items:
            raise IngestError(422, '"signals" must be a non-empty list')
        if len(items) > MAX_BATCH:
            raise IngestError(413, f"at most {MAX_BATCH} signals per request")
    else:
        items = [data]
    return [_signal(item, i, directory, now_ms) for i, item in enumerate(items)]


def _signal(item: Any, index: int, directory: Directory, now_ms: int) -> Signal:
    where = f"signal {index}"
    if not isinstance(item, dict):
        raise IngestError(422, f"{where}: must be an object")
    unknown = sorted(set(item) - _KNOWN)
    if unknown:
        raise IngestError(422, f"{where}: unknown field(s) {', '.join(unknown)}")

    def text(name: str, required: bool = False, limit: int = 256) -> str | None:
        value = item.get(name)
        if value is None:
            if required:
                raise IngestError(422, f"{where}: {name} is required")
            return None
        if not isinstance(value, str) or not value or len(value) > limit:
            raise IngestError(422, f"{where}: {name} must be a string of 1-{limit} characters")
        return value

    def integer(name: str, lo: int, hi: int) -> int | None:
        value = item.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise IngestError(422, f"{where}: {name} must be an integer from {lo} to {hi}")
        return value

    def choice(name: str, allowed: dict[str, Any], required: bool = False) -> Any:
        value = text(name, required)
        if value is None:
            return None
        if value not in allowed:
            raise IngestError(422, f"{where}: {name} must be one of {', '.join(allowed)}")
        return allowed[value]

    source = text("source") or "ingest"
    if not _SOURCE.match(source):
        raise IngestError(422, f"{where}: source must match {_SOURCE.pattern}")
    call_id = text("callId", required=True)
    assert call_id is not None
    if not _CALL_ID.match(call_id):
        raise IngestError(422, f"{where}: callId must match {_CALL_ID.pattern}")
    direction = choice("direction", _DIRECTIONS, required=True)
    phase = choice("phase", _PHASES, required=True)
    end_status = choice("endStatus", _END_STATUSES)
    transferred = item.get("transferred", False)
    if not isinstance(transferred, bool):
        raise IngestError(422, f"{where}: transferred must be true or false")
    if (end_status is not None or transferred) and phase is not Phase.ENDED:
        raise IngestError(422, f"{where}: endStatus and transferred go with phase ended")

    login, aor, number = text("user"), text("aor"), text("userNumber")
    if sum(x is not None for x in (login, aor, number)) != 1:
        raise IngestError(422, f"{where}: give exactly one of user, aor, userNumber")
    user = (
        directory.by_login(login)
        if login
        else directory.by_aor(aor)
        if aor
        else directory.by_number(number or "")
    )
    if user is None:
        raise IngestError(404, f"{where}: no such user {login or aor or number!r}")

    region = directory.default_region
    at = integer("at", 0, 2**53)
    own = user.own_number
    from_number = to_e164(text("from", limit=128), region)
    to_number = to_e164(text("to", limit=128), region)
    if direction is Direction.INBOUND:
        to_number = to_number or own
    else:
        from_number = from_number or own
    return Signal(
        source=source,
        call_id=call_id,
        user_id=user.id,
        direction=direction,
        phase=phase,
        at_ms=now_ms if at is None else at,
        from_number=from_number,
        to_number=to_number,
        remote_name=text("remoteName", limit=128),
        end_status=end_status,
        sip_code=integer("sipCode", 100, 699),
        duration_ms=integer("durationMs", 0, 7 * 86400 * 1000),
        transferred=transferred,
    )
