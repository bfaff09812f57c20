"""The end-status table, row by row (the rows are numbered as in endstatus.py)."""

from __future__ import annotations

import pytest

from gateway.model import Direction, EndStatus
from gateway.sources.endstatus import end_status, status_for_code

IN = Direction.INBOUND
OUT = Direction.OUTBOUND

ROWS = [
    # (row, direction, was_confirmed, event, code, status, transferred)
    ("1-replaced-after-answer", IN, True, "replaced", None, EndStatus.COMPLETED, True),
    ("1-replaced-while-early", OUT, False, "replaced", None, None, True),
    ("2-error-after-answer", IN, True, "error", 500, EndStatus.FAILED, False),
    ("3-remote-bye-after-answer", IN, True, "remote-bye", None, EndStatus.COMPLETED, False),
    ("3-local-bye-after-answer", OUT, True, "local-bye", None, EndStatus.COMPLETED, False),
    ("3-no-reason-after-answer", IN, True, None, None, EndStatus.COMPLETED, False),
    ("4-busy-486", OUT, False, "rejected", 486, EndStatus.BUSY, False),
    ("4-busy-600", OUT, False, "rejected", 600, EndStatus.BUSY, False),
    ("4-busy-inbound-dnd", IN, False, "rejected", 486, EndStatus.BUSY, False),
    ("5-rejected-603", IN, False, "rejected", 603, EndStatus.REJECTED, False),
    ("6-no-answer-408", OUT, False, "rejected", 408, EndStatus.NO_ANSWER, False),
    ("6-no-answer-480", OUT, False, "rejected", 480, EndStatus.NO_ANSWER, False),
    ("7-inbound-487-missed", IN, False, "cancelled", 487, EndStatus.MISSED, False),
    ("8-outbound-487-canceled", OUT, False, "cancelled", 487, EndStatus.CANCELED, False),
    ("9-other-4xx-failed", OUT, False, "rejected", 404, EndStatus.FAILED, False),
    ("9-5xx-failed", OUT, False, "rejected", 503, EndStatus.FAILED, False),
    ("9-other-6xx-failed", OUT, False, "rejected", 604, EndStatus.FAILED, False),
    ("9-3xx-failed", OUT, False, "rejected", 302, EndStatus.FAILED, False),
    ("9-300-is-the-first-failure-code", OUT, False, None, 300, EndStatus.FAILED, False),
    ("15-299-is-no-failure-code", OUT, False, None, 299, None, False),
    ("10-timeout", OUT, False, "timeout", None, EndStatus.NO_ANSWER, False),
    ("11-inbound-cancelled-missed", IN, False, "cancelled", None, EndStatus.MISSED, False),
    ("11-inbound-bye-while-early-missed", IN, False, "remote-bye", None, EndStatus.MISSED, False),
    ("12-outbound-cancelled-canceled", OUT, False, "cancelled", None, EndStatus.CANCELED, False),
    ("12-outbound-bye-while-early-canceled", OUT, False, "local-bye", None, EndStatus.CANCELED, False),
    ("13-rejected-without-code", IN, False, "rejected", None, EndStatus.REJECTED, False),
    ("14-error-without-code", OUT, False, "error", None, EndStatus.FAILED, False),
    ("15-no-reason-inbound", IN, False, None, None, None, False),
    ("15-no-reason-outbound", OUT, False, None, None, None, False),
    ("15-unknown-reason", IN, False, "noresource", None, None, False),
    ("15-provisional-code-ignored", OUT, False, None, 180, None, False),
]


@pytest.mark.parametrize(
    ("direction", "was_confirmed", "event", "code", "status", "transferred"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_end_status_row(
    direction: Direction,
    was_confirmed: bool,
    event: str | None,
    code: int | None,
    status: EndStatus | None,
    transferred: bool,
) -> None:
    assert end_status(direction, was_confirmed, event, code) == (status, transferred)


def test_reason_is_compared_case_insensitively() -> None:
    assert end_status(IN, False, "Cancelled", None) == (EndStatus.MISSED, False)


@pytest.mark.parametrize(
    ("code", "direction", "status"),
    [
        (None, None, None),
        (299, None, None),
        (300, None, EndStatus.FAILED),
        (487, None, EndStatus.CANCELED),
        (487, Direction.INBOUND, EndStatus.MISSED),
        (600, None, EndStatus.BUSY),
        (699, None, EndStatus.FAILED),
    ],
)
def test_a_final_code_alone_reads_as_the_tables_status(
    code: int | None, direction: Direction | None, status: EndStatus | None
) -> None:
    assert status_for_code(code, direction) is status
