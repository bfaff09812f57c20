"""The log check every running gateway is under: a traceback or an ERROR fails the test.

``running_gateway`` watches the log while the gateway runs and, when it
stops, fails with every record that carried a traceback (``exc_info``) or
was logged at ERROR or above, unless a test declared it first:

    with expect_log("gateway.sip", "body refused"):
        ...  # at least one matching record must be logged in here

A record is matched by logger name (the logger or a child of it) and a
regular expression searched in its message.
"""

from __future__ import annotations

import contextlib
import logging
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

# Where records of the gateway and of the server under it end up: uvicorn's
# own loggers do not propagate to the root once uvicorn configured them.
_WATCHED = ("", "uvicorn")


@dataclass
class Expected:
    logger: str
    pattern: re.Pattern[str]
    seen: int = 0

    def matches(self, record: logging.LogRecord) -> bool:
        name = record.name
        within = not self.logger or name == self.logger or name.startswith(self.logger + ".")
        return within and self.pattern.search(record.getMessage()) is not None


_expected: list[Expected] = []


def _counts(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or bool(record.exc_info)


@contextlib.contextmanager
def expect_log(logger: str, pattern: str, *, required: bool = True) -> Iterator[Expected]:
    """Declare a traceback or ERROR the code under test must (or may) log inside the block."""
    expected = Expected(logger, re.compile(pattern))
    _expected.append(expected)
    try:
        yield expected
    finally:
        _expected.remove(expected)
    if required:
        assert expected.seen, f"expected a log record of {logger!r} matching {pattern!r}; none came"


def describe(record: logging.LogRecord) -> str:
    text = f"{record.levelname} {record.name}: {record.getMessage()}"
    if record.exc_info:
        text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
    return text


class LogWatch:
    """The records that count and that no test declared, while it is installed."""

    def __init__(self) -> None:
        self.unexpected: list[logging.LogRecord] = []

    def take(self, record: logging.LogRecord) -> None:
        if not _counts(record):
            return
        for expected in _expected:
            if expected.matches(record):
                expected.seen += 1
                return
        self.unexpected.append(record)

    @contextlib.contextmanager
    def installed(self) -> Iterator[LogWatch]:
        """Watch from now on; install after uvicorn configured its loggers (that drops handlers)."""
        _watches.append(self)
        for name in _WATCHED:
            logging.getLogger(name).addHandler(_DISPATCH)
        try:
            yield self
        finally:
            _watches.remove(self)
            if not _watches:
                for name in _WATCHED:
                    logging.getLogger(name).removeHandler(_DISPATCH)

    def check(self) -> None:
        if self.unexpected:
            found = "\n\n".join(describe(r) for r in self.unexpected)
            raise AssertionError(
                f"the gateway logged {len(self.unexpected)} unexpected traceback(s) or error(s) "
                f"(declare one with tests.support.logcheck.expect_log):\n{found}"
            )


class _Dispatch(logging.Handler):
    """One handler for every watch: two gateways in one test both see each record."""

    def emit(self, record: logging.LogRecord) -> None:
        for watch in _watches:
            watch.take(record)


_watches: list[LogWatch] = []
_DISPATCH = _Dispatch(logging.NOTSET)


def reset() -> None:
    """Forget every declaration (between tests)."""
    _expected.clear()
