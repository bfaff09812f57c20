"""How a call leg ended by its ITU-T Q.850 cause, as a proposed ``EndStatus`` (pure; the PBX sources).

Asterisk reports the cause number (AMI ``Hangup`` ``Cause``), FreeSWITCH its
name (``Hangup-Cause``, e.g. ``USER_BUSY``) and the number
(``variable_hangup_cause_q850``). ``status_for_cause`` reads:

| cause | meaning | proposed status |
|---|---|---|
| 0, 16, 31, 127 | none given, normal clearing, normal unspecified, interworking | none (the model decides) |
| 17 | user busy | BUSY |
| 18, 19, 20 | no user responding, no answer, subscriber absent | NO_ANSWER |
| 21 | call rejected | REJECTED |
| 26 | non-selected user clearing (another phone answered) | CANCELED, answered elsewhere |
| any other | a failure of the number, the network or the PBX | FAILED |

"Answered elsewhere" is told to the model with
``gateway.model.ANSWERED_ELSEWHERE_CODE``, so such a ring is not MISSED.
"""

from __future__ import annotations

from gateway.model import EndStatus

NONE_GIVEN = frozenset({0, 16, 31, 127})
BUSY = 17
NO_ANSWER = frozenset({18, 19, 20})
REJECTED = 21
ANSWERED_ELSEWHERE = 26

# FreeSWITCH's cause names (its "Hangup Cause Code Table") for the causes
# above; FreeSWITCH's own causes beyond Q.850 are read by the ESL source.
CAUSE_NAMES: dict[str, int] = {
    "NONE": 0,
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_DESTINATION": 3,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22,
    "NON_SELECTED_USER_CLEARING": 26,
    "DESTINATION_OUT_OF_ORDER": 27,
    "INVALID_NUMBER_FORMAT": 28,
    "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "INCOMPATIBLE_DESTINATION": 88,
    "RECOVERY_ON_TIMER_EXPIRE": 102,
    "INTERWORKING": 127,
}


def status_for_cause(cause: int | None) -> tuple[EndStatus | None, bool]:
    """(proposed status, answered elsewhere) for a Q.850 cause; see the table above."""
    if cause is None or cause in NONE_GIVEN:
        return None, False
    if cause == BUSY:
        return EndStatus.BUSY, False
    if cause in NO_ANSWER:
        return EndStatus.NO_ANSWER, False
    if cause == REJECTED:
        return EndStatus.REJECTED, False
    if cause == ANSWERED_ELSEWHERE:
        return EndStatus.CANCELED, True
    return EndStatus.FAILED, False


def parse_cause(raw: str | None) -> int | None:
    """A cause number as sent (digits, 0-999), else None."""
    text = (raw or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 3:
        return None
    return int(text)
