"""FreeSWITCH's event socket on the wire, sans-I/O: bytes in, frames out; commands to bytes.

As mod_event_socket documents it (developer.signalwire.com, FreeSWITCH
"mod_event_socket"; "Event List" for the events): every frame is a block of
``Name: value`` header lines ended by an empty line (LF), followed by a body
of exactly ``Content-Length`` bytes when that header is there. The frame's
``Content-Type`` says what it is:

- ``auth/request``: the server wants ``auth <password>``;
- ``command/reply``: the answer to a command, ``Reply-Text: +OK ...`` or
  ``-ERR ...`` (``bgapi`` adds ``Job-UUID``);
- ``api/response``: the body is an ``api`` command's output;
- ``text/event-plain``: the body is one event: its own header lines, values
  URL-encoded, an empty line, and its own body when it has a ``Content-Length``
  (``BACKGROUND_JOB``: the job's output);
- ``text/disconnect-notice``: the server is closing the connection.

Replies carry no id: the server answers a connection's commands in the
order they were sent. A header block or a body over the limits is a
``ProtocolError`` (the connection is made again); a line that is not
``Name: value`` makes its frame ``Malformed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

MAX_HEADER_BYTES = 65536
MAX_BODY_BYTES = 4 * 1024 * 1024  # "show channels as json" on a busy switch
MAX_FIELDS = 512


class ProtocolError(ValueError):
    """The byte stream is not the event socket, or breaks the limits."""


@dataclass(frozen=True)
class Frame:
    headers: Mapping[str, str]  # lower-cased names
    body: bytes = b""

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        return self.get("content-type").lower()


@dataclass(frozen=True)
class Event:
    """A ``text/event-plain`` body: its headers, URL-decoded, and its own body."""

    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""

    def get(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def name(self) -> str:
        return self.get("event-name")


@dataclass(frozen=True)
class Malformed:
    reason: str


def _headers(block: bytes, decode: bool) -> dict[str, str] | Malformed:
    out: dict[str, str] = {}
    lines = block.decode("utf-8", "replace").split("\n")
    if len(lines) > MAX_FIELDS:
        return Malformed(f"more than {MAX_FIELDS} header lines")
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r")
        if not line:
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name or any(c.isspace() for c in name):
            return Malformed(f"line {number} is not 'Name: value'")
        value = value.strip()
        out.setdefault(name.lower(), unquote(value) if decode else value)
    return out


class EslParser:
    """Frames the server's byte stream."""

    def __init__(self, max_header: int = MAX_HEADER_BYTES, max_body: int = MAX_BODY_BYTES) -> None:
        self._buffer = bytearray()
        self._pending: dict[str, str] | None = None  # headers waiting for their body
        self._length = 0
        self._max_header = max_header
        self._max_body = max_body

    def feed(self, data: bytes) -> list[Frame | Malformed]:
        self._buffer += data
        out: list[Frame | Malformed] = []
        while True:
            if self._pending is not None:
                if len(self._buffer) < self._length:
                    return out
                body = bytes(self._buffer[: self._length])
                del self._buffer[: self._length]
                out.append(Frame(self._pending, body))
                self._pending = None
                continue
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > self._max_header:
                    raise ProtocolError(f"a header block longer than {self._max_header} bytes")
                return out
            if end > self._max_header:
                raise ProtocolError(f"a header block longer than {self._max_header} bytes")
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            if not block.strip():
                continue  # stray blank lines between frames
            headers = _headers(block, decode=False)
            if isinstance(headers, Malformed):
                out.append(headers)
                continue
            raw_length = headers.get("content-length")
            if raw_length is None:
                out.append(Frame(headers))
                continue
            if not raw_length.isascii() or not raw_length.isdigit() or int(raw_length) > self._max_body:
                raise ProtocolError(f"a Content-Length of {raw_length[:20]!r} (at most {self._max_body})")
            self._pending, self._length = headers, int(raw_length)


def event_of(frame: Frame) -> Event | Malformed:
    """The event a ``text/event-plain`` frame carries."""
    head, _, rest = frame.body.partition(b"\n\n")
    headers = _headers(head, decode=True)
    if isinstance(headers, Malformed):
        return headers
    if not headers.get("event-name"):
        return Malformed("an event without Event-Name")
    body = b""
    length = headers.get("content-length", "")
    if length.isascii() and length.isdigit():
        body = rest[: int(length)]
    return Event(headers, body.decode("utf-8", "replace"))


def command(text: str, headers: Mapping[str, str] | None = None) -> bytes:
    """One command as bytes; ``ValueError`` for a line break anywhere in it."""
    lines = [text, *(f"{name}: {value}" for name, value in (headers or {}).items())]
    if any(c in line for line in lines for c in "\r\n"):
        raise ValueError("an event socket command holds a line break")
    return ("\n".join(lines) + "\n\n").encode()


def reply_ok(frame: Frame) -> bool:
    return frame.get("reply-text").startswith("+OK")
