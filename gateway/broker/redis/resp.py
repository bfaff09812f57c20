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
from typing import TypeAlias

Value: TypeAlias = "bool | int | float | str | list[Value] | ReplyError | None"

# Nesting deeper than any reply read here (the advance script returns a flat
# list; pub/sub messages are three strings): a reply out of step, refused as
# a ProtocolError (which the pub/sub listener takes for Redis trouble), and
# the aggregates held open while a reply comes in stay few.
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

    Every byte is read about once, however the reply is cut into reads. A
    value that is not all there yet is read again only once enough has
    arrived to complete what stopped it: a large bulk string coming in many
    reads is joined and read once. An aggregate coming in many reads (an
    XRANGE or HGETALL of thousands of entries) is kept as far as it was
    read, with the aggregates it is nested in, and the next read goes on
    from there: read again from its start after each read, it was
    quadratic in its number of values.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []  # what is held, in order, joined only to be read
        self._size = 0
        self._need = 0  # bytes to hold before reading again can get further
        self._open: list[_Open] = []  # the aggregates begun and not complete, outermost first
        self._begun = 0  # bytes of the value begun already read into ``_open``

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)

    @property
    def pending(self) -> int:
        """Bytes of a value not yet complete (held, or read into the aggregates begun)."""
        return self._begun + self._size

    def take(self) -> list[Value]:
        out: list[Value] = []
        if self._size < self._need or not self._chunks:
            return out
        chunks = self._chunks
        buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        pos, need, done = _values(buffer, self._open, out)
        rest = buffer[pos:] if pos else buffer
        self._chunks = [rest] if rest else []
        self._size, self._need = len(rest), need - pos if need else 0
        # The value begun started where the last complete one ended (or
        # before this buffer, if none did).
        self._begun = ((0 if out else self._begun) + pos - done) if self._open else 0
        return out


class _Open:
    """An aggregate begun: the values read of it, and how many more it holds."""

    __slots__ = ("attribute", "items", "left")

    def __init__(self, items: list[Value], left: int, attribute: bool) -> None:
        self.items = items
        self.left = left
        # Attributes annotate the value that follows, read as their last
        # item and taken for the whole; nothing here uses them.
        self.attribute = attribute


def _values(buffer: bytes, stack: list[_Open], out: list[Value]) -> tuple[int, int, int]:
    """Read ``buffer``'s values into ``out`` (those complete) and ``stack`` (the aggregates begun).

    Returns where reading stopped (the start of the first value not all
    there), how long ``buffer`` must be before reading again can get
    further (0: it stopped at the end), and where the last value added to
    ``out`` ended. Iterative, not recursive: a value is read once, whether
    its aggregate is complete or not.
    """
    size, pos, done = len(buffer), 0, 0
    while pos < size:
        kind = buffer[pos : pos + 1]
        end = buffer.find(b"\r\n", pos + 1)
        if end < 0:
            return pos, size + 1, done
        head = buffer[pos + 1 : end]
        value: Value
        if kind in (b"$", b"=", b"!"):  # bulk string, verbatim string, bulk error
            length = _length(head)
            if length < 0:
                value, after = None, end + 2
            else:
                after = end + 2 + length + 2
                if size < after:
                    return pos, after, done
                if buffer[after - 2 : after] != b"\r\n":
                    raise ProtocolError("a bulk string not ended by CRLF")
                raw = buffer[end + 2 : after - 2]
                if kind == b"!":
                    value = ReplyError(raw.decode(errors="replace"))
                else:
                    # A verbatim string starts with its format: "txt:".
                    # Not UTF-8 (anyone who may publish on Redis could send
                    # it): replaced, never an exception in the reader every
                    # stream depends on.
                    value = (raw[4:] if kind == b"=" else raw).decode(errors="replace")
        elif kind in (b"*", b">", b"~", b"%", b"|"):  # array, push, set, map, attribute
            length = _length(head)
            after = end + 2
            if length < 0:
                if kind != b"*":  # only RESP2's null array is negative
                    raise ProtocolError(f"not a length: {head[:20]!r}")
                value = None
            else:
                items: list[Value] = Push() if kind == b">" else []
                if kind in (b"%", b"|"):  # a key and a value per entry
                    length *= 2
                attribute = kind == b"|"
                if length or attribute:
                    if len(stack) + 1 >= MAX_DEPTH:
                        raise ProtocolError(f"replies nested deeper than {MAX_DEPTH}")
                    stack.append(_Open(items, length + attribute, attribute))
                    pos = after
                    continue
                value = items
        else:
            value, after = _simple(kind, head), end + 2
        pos = after
        # The value completes the aggregates it ends, innermost first; one
        # that is in none (the loop not broken) is a whole reply or push.
        while stack:
            top = stack[-1]
            top.items.append(value)
            top.left -= 1
            if top.left:
                break
            stack.pop()
            value = top.items[-1] if top.attribute else top.items
        else:
            out.append(value)
            done = pos
    return pos, 0, done


def _simple(kind: bytes, head: bytes) -> Value:
    """A value all on its line."""
    if kind == b"+":
        return head.decode(errors="replace")
    if kind == b"-":
        return ReplyError(head.decode(errors="replace"))
    if kind in (b":", b"("):
        return _count(head)
    if kind == b"_":
        return None
    if kind == b"#":
        return head == b"t"
    if kind == b",":
        try:
            return float(head)
        except ValueError:
            raise ProtocolError(f"not a double: {head[:20]!r}") from None
    raise ProtocolError(f"unknown RESP type {kind!r}")


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
