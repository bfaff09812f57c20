"""How a call ended at the SIP level, as the SDK's ``EndStatus``: the table, owned here.

``end_status(direction, was_confirmed, event, code)`` reads the first row that
matches, top to bottom. ``direction`` is the user's (recipient = INBOUND,
initiator = OUTBOUND), ``event`` the ``<state event=…>`` reason and ``code``
the ``<state code=…>`` SIP response code of the terminated dialog.

| # | was confirmed | event | code | direction | status | transferred |
|---|---|---|---|---|---|---|
| 1 | any | ``replaced`` | any | any | COMPLETED if confirmed, else none | yes |
| 2 | yes | ``error`` | any | any | FAILED | no |
| 3 | yes | anything else | any | any | COMPLETED | no |
| 4 | no | any | 486, 600 | any | BUSY | no |
| 5 | no | any | 603 | any | REJECTED | no |
| 6 | no | any | 408, 480 | any | NO_ANSWER | no |
| 7 | no | any | 487 | inbound | MISSED | no |
| 8 | no | any | 487 | outbound | CANCELED | no |
| 9 | no | any | other 3xx-6xx | any | FAILED | no |
| 10 | no | ``timeout`` | none or 1xx/2xx | any | NO_ANSWER | no |
| 11 | no | ``cancelled``, ``local-bye``, ``remote-bye`` | none or 1xx/2xx | inbound | MISSED | no |
| 12 | no | ``cancelled``, ``local-bye``, ``remote-bye`` | none or 1xx/2xx | outbound | CANCELED | no |
| 13 | no | ``rejected`` | none or 1xx/2xx | any | REJECTED | no |
| 14 | no | ``error`` | none or 1xx/2xx | any | FAILED | no |
| 15 | no | none or unknown | none or 1xx/2xx | any | none | no |

Notes:

- A BYE while early is ``local-bye``/``remote-bye`` (RFC 4235 erratum 1495),
  so an unanswered dialog that ends by BYE gave up like a CANCEL (rows 11-12).
- ``replaced`` (RFC 3891, attended transfer) is not a hang-up: the call goes
  on in another dialog, so it is reported as a transfer (row 1).
- "none" leaves the choice to the call model's ``normalise_end_status``: an
  unanswered inbound call becomes MISSED, an unanswered outbound one
  CANCELED. That is all Asterisk and Kamailio's ``pua_dialoginfo`` ever give
  (they send neither ``event`` nor ``code``), so for them a call answered on
  another phone of a ring group reads as MISSED on the phones that rang.
- The model also makes the proposal consistent with the call: NO_ANSWER on an
  inbound call is reported as MISSED; anything but FAILED on an answered
  call is COMPLETED.
"""

from __future__ import annotations

from gateway.model import Direction, EndStatus

BUSY_CODES = frozenset({486, 600})
REJECTED_CODES = frozenset({603})
NO_ANSWER_CODES = frozenset({408, 480})
CANCELLED_CODE = 487
GAVE_UP_EVENTS = frozenset({"cancelled", "local-bye", "remote-bye"})


def end_status(
    direction: Direction, was_confirmed: bool, event: str | None, code: int | None
) -> tuple[EndStatus | None, bool]:
    """(proposed end status, transferred) of a terminated dialog; see the table above."""
    reason = event.lower() if event else None
    if reason == "replaced":
        return (EndStatus.COMPLETED if was_confirmed else None), True
    if was_confirmed:
        return (EndStatus.FAILED if reason == "error" else EndStatus.COMPLETED), False
    if code is not None and code >= 300:
        return status_for_code(code, direction), False
    if reason == "timeout":
        return EndStatus.NO_ANSWER, False
    if reason in GAVE_UP_EVENTS:
        return _gave_up(direction), False
    if reason == "rejected":
        return EndStatus.REJECTED, False
    if reason == "error":
        return EndStatus.FAILED, False
    return None, False


def status_for_code(code: int | None, direction: Direction | None = None) -> EndStatus | None:
    """The end status a final SIP response code stands for (rows 4-9); None below 300.

    Shared by every source that learns a SIP code (SIP dialogs, Telnyx's
    ``sip_hangup_cause``). Without a direction, 487 reads as CANCELED, which
    the model turns into MISSED for an inbound call.
    """
    if code is None or code < 300:
        return None
    if code in BUSY_CODES:
        return EndStatus.BUSY
    if code in REJECTED_CODES:
        return EndStatus.REJECTED
    if code in NO_ANSWER_CODES:
        return EndStatus.NO_ANSWER
    if code == CANCELLED_CODE:
        return _gave_up(direction)
    return EndStatus.FAILED


def _gave_up(direction: Direction | None) -> EndStatus:
    # Inbound: the caller hung up before the user answered. Outbound: the
    # user hung up before the callee answered.
    return EndStatus.MISSED if direction is Direction.INBOUND else EndStatus.CANCELED
