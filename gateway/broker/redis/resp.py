"""Redis's wire protocol (RESP2 and RESP3), for the two hot paths only (sans-I/O).

The advance script's pipelines and the pub/sub listener go through here
instead of redis-py's per-command machinery (retry wrapper, timing hooks,
one parse call and one dict per reply or message), which was most of the
Redis path's cost per event (docs/benchmarks.md). Everything else still
uses redis-py. ``pack`` writes a command; ``Replies`` reads whatever the
connection gave so far, replies and pushes alike, as many as are complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias, cast

Value: TypeAlias = "bool | int | float | str | list[Value] | ReplyError | None"

# Nesting deeper than any reply read here (the advance script returns a flat
# list; pub/sub messages are three strings): refused as a ProtocolError, not
# left to Python's recursion limit, whose RecursionError is no Redis trouble
# to the pub/sub listener.
MAX_DEPTH = 32
# Redis's own cap on a bulk string (proto-max-bulk-len's default): a longer
# length is a header out of step, and waiting for it would buffer every
# reply after it as its body.
MAX_BULK = 512 * 1024 * 1024


class ReplyError(Exception):
    """An error reply (``-ERR ...``): a value on the wire, raised by whoever asked."""


class Push(list[Value]):
    """A RESP3 push (``>``): a pub/sub message or confirmation, not the reply to a command."""


class ProtocolError(ValueError):
    """Bytes that are not RESP: the connection is out of step and must be dropped."""


def pack(args: Iterable[str | int]) -> bytes:
    """One command, as RESP's array of bulk strings (encoded once, as UTF-8)."""
    parts = [""]
    for arg in args:
        text = arg if isinstance(arg, str) else str(arg)
        # The usual argument (JSON with ensure_ascii, keys, numbers) is
        # ASCII: its length in bytes is its length.
        size = len(text) if text.isascii() else len(text.encode())
        parts.append(f"${size}\r\n{text}\r\n")
    parts[0] = f"*{len(parts) - 1}\r\n"
    return "".join(parts).encode()


class Replies:
    """Feed it bytes as they arrive; ``take`` returns every value complete so far, in order.

    Bulk strings are decoded as UTF-8 (what the gateway stores is text),
    what is not UTF-8 replaced;
    maps become flat lists (nothing here reads one).

    A value that is not all there yet is parsed again only once enough has
    arrived to complete what stopped it: a large bulk string coming in many
    reads is joined and read once, not once per read (which was quadratic
    in its size). An aggregate of many small values is still read from its
    start after each read that completes one more of them; the hot paths'
    replies are short lists.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []  # what is held, in order, joined only to be read
        self._size = 0
        self._need = 0  # bytes to hold before reading again can get further

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)

    @property
    def pending(self) -> int:
        """Bytes held of a value not yet complete."""
        return self._size

    def take(self) -> list[Value]:
        out: list[Value] = []
        if self._size < self._need or not self._chunks:
            return out
        chunks = self._chunks
        buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        pos, size, need = 0, len(buffer), 0
        while pos < size:
            parsed = _value(buffer, pos)
            if type(parsed) is int:
                need = parsed - pos
                break
            value, pos = cast(tuple[Value, int], parsed)
            out.append(value)
        rest = buffer[pos:] if pos else buffer
        self._chunks = [rest] if rest else []
        self._size, self._need = len(rest), need
        return out


def _line(buffer: bytes, pos: int) -> tuple[bytes, int] | None:
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        return None
    return buffer[pos:end], end + 2


def _count(text: bytes) -> int:
    try:
        return int(text)
    except ValueError:
        raise ProtocolError(f"not a number: {text[:20]!r}") from None


def _length(text: bytes) -> int:
    """A bulk or aggregate length: -1 (null) or 0 to ``MAX_BULK``."""
    size = _count(text)
    if not -1 <= size <= MAX_BULK:
        raise ProtocolError(f"not a length: {text[:20]!r}")
    return size


def _value(buffer: bytes, pos: int, depth: int = 1) -> tuple[Value, int] | int:
    """The value starting at ``pos`` and where the next begins.

    Not all there yet: how long ``buffer`` must be before reading it again
    can get further (an int).
    """
    if depth > MAX_DEPTH:
        raise ProtocolError(f"replies nested deeper than {MAX_DEPTH}")
    kind = buffer[pos : pos + 1]
    found = _line(buffer, pos + 1)
    if found is None:
        return len(buffer) + 1
    head, pos = found
    if kind in (b"$", b"=", b"!"):  # bulk string, verbatim string, bulk error
        size = _length(head)
        if size < 0:
            return None, pos
        end = pos + size
        if len(buffer) < end + 2:
            return end + 2
        if buffer[end : end + 2] != b"\r\n":
            raise ProtocolError("a bulk string not ended by CRLF")
        raw = buffer[pos:end]
        if kind == b"!":
            return ReplyError(raw.decode(errors="replace")), end + 2
        # A verbatim string starts with its format: "txt:".
        # Not UTF-8 (anyone who may publish on Redis could send it): replaced,
        # never an exception in the reader every stream depends on.
        return (raw[4:] if kind == b"=" else raw).decode(errors="replace"), end + 2
    if kind in (b"*", b">", b"~", b"%", b"|"):  # array, push, set, map, attribute
        size = _length(head)
        if size < 0:
            if kind != b"*":  # only RESP2's null array is negative
                raise ProtocolError(f"not a length: {head[:20]!r}")
            return None, pos
        if kind in (b"%", b"|"):
            size *= 2
        items: list[Value] = Push() if kind == b">" else []
        for _ in range(size):
            parsed = _value(buffer, pos, depth + 1)
            if type(parsed) is int:
                return parsed
            item, pos = cast(tuple[Value, int], parsed)
            items.append(item)
        if kind == b"|":
            # Attributes annotate the value that follows; nothing here uses them.
            return _value(buffer, pos, depth + 1)
        return items, pos
    if kind == b"+":
        return head.decode(errors="replace"), pos
    if kind == b"-":
        return ReplyError(head.decode(errors="replace")), pos
    if kind in (b":", b"("):
        return _count(head), pos
    if kind == b"_":
        return None, pos
    if kind == b"#":
        return head == b"t", pos
    if kind == b",":
        try:
            return float(head), pos
        except ValueError:
            raise ProtocolError(f"not a double: {head[:20]!r}") from None
    raise ProtocolError(f"unknown RESP type {kind!r}")
