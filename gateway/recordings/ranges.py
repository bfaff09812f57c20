"""HTTP Range requests for one file (pure), as RFC 9110 section 14 has them.

Only a single ``bytes`` range is served as such; a header with several
ranges or another unit is ignored (the whole file, 200), which section 14.2
allows. A syntactically wrong header is ignored too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})\Z")


@dataclass(frozen=True)
class Requested:
    """``first-last`` (``last`` None: to the end), or the final ``suffix`` bytes."""

    first: int | None
    last: int | None

    def header(self) -> str:
        return f"bytes={'' if self.first is None else self.first}-{'' if self.last is None else self.last}"


@dataclass(frozen=True)
class Span:
    """Bytes ``start`` to ``end`` inclusive of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse(header: str | None) -> Requested | None:
    """The one range asked for, or None to serve the whole file."""
    if not header:
        return None
    found = _SINGLE.match(header.strip().replace(" ", ""))
    if found is None:
        return None
    first = int(found.group(1)) if found.group(1) else None
    last = int(found.group(2)) if found.group(2) else None
    if first is None and last is None:
        return None
    if first is not None and last is not None and last < first:
        return None  # invalid: ignored, per section 14.1.1
    return Requested(first, last)


def resolve(requested: Requested, size: int) -> Span | None:
    """The bytes served for the request, or None if the range is unsatisfiable (416)."""
    if requested.first is None:
        suffix = requested.last or 0
        if suffix == 0 or size == 0:
            return None
        return Span(max(0, size - suffix), size - 1, size)
    if requested.first >= size:
        return None
    last = size - 1 if requested.last is None else min(requested.last, size - 1)
    return Span(requested.first, last, size)


def unsatisfied(size: int) -> str:
    """``Content-Range`` of a 416 answer."""
    return f"bytes */{size}"
