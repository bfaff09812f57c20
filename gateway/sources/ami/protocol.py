"""The Asterisk Manager Interface on the wire, sans-I/O: bytes in, messages out; actions to bytes.

As Asterisk documents AMI (docs.asterisk.org, "Asterisk Manager Interface
(AMI)"; the manager actions and events pages): on connecting the server
sends one banner line (``Asterisk Call Manager/<version>``); after that
every message, in both directions, is a block of ``Key: Value`` lines ended
by CRLF, closed by an empty line. A message is a ``Response`` to an action
(correlated by the ``ActionID`` the action carried) or an ``Event``; list
actions (``CoreShowChannels``) answer with a ``Response`` saying
``EventList: start``, then one event per item, then a ``...Complete`` event.

What the PBX sends is bounded here: a line or a message over the limits is
a ``ProtocolError`` (the connection is dropped and made again, which also
re-learns the calls); a line that is not ``Key: Value`` makes its message
``Malformed`` (logged and skipped). Values written into an action must not
hold CR or LF, so nothing from a user can add a header to an action.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

MAX_LINE_BYTES = 8192
MAX_MESSAGE_BYTES = 65536
MAX_FIELDS = 256


class ProtocolError(ValueError):
    """The byte stream is not AMI, or breaks the limits: the connection cannot go on."""


@dataclass(frozen=True)
class Message:
    """One AMI message; field names compare case-insensitively (the first of a repeated name wins)."""

    fields: Mapping[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name.lower(), default)

    @property
    def event(self) -> str:
        return self.get("event")

    @property
    def response(self) -> str:
        return self.get("response")

    @property
    def action_id(self) -> str:
        return self.get("actionid")


@dataclass(frozen=True)
class Malformed:
    """A block that was not all ``Key: Value`` lines; ``reason`` says what was wrong (no values)."""

    reason: str


class AmiParser:
    """Frames the server's byte stream: the banner, then messages."""

    def __init__(
        self,
        max_line: int = MAX_LINE_BYTES,
        max_message: int = MAX_MESSAGE_BYTES,
        max_fields: int = MAX_FIELDS,
    ) -> None:
        self.banner: str | None = None
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._message_bytes = 0
        self._max_line = max_line
        self._max_message = max_message
        self._max_fields = max_fields

    def feed(self, data: bytes) -> list[Message | Malformed]:
        self._buffer += data
        out: list[Message | Malformed] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self._max_line:
                    raise ProtocolError(f"a line longer than {self._max_line} bytes")
                return out
            if end > self._max_line:
                raise ProtocolError(f"a line longer than {self._max_line} bytes")
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if self.banner is None:
                self.banner = _text(line)
                if not self.banner.startswith("Asterisk Call Manager/"):
                    raise ProtocolError("the server's first line is not an AMI banner")
                continue
            if line:
                self._message_bytes += len(line) + 2
                if self._message_bytes > self._max_message:
                    raise ProtocolError(f"a message longer than {self._max_message} bytes")
                if len(self._lines) >= self._max_fields:
                    raise ProtocolError(f"a message with more than {self._max_fields} lines")
                self._lines.append(line)
                continue
            if self._lines:
                out.append(_message(self._lines))
            self._lines, self._message_bytes = [], 0


def _text(raw: bytes) -> str:
    # AMI is text; a PBX with a Latin-1 caller name must not stop the stream.
    return raw.decode("utf-8", "replace")


def _message(lines: list[bytes]) -> Message | Malformed:
    fields: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        key, colon, value = _text(raw).partition(":")
        key = key.strip()
        if not colon or not key or any(c.isspace() for c in key):
            return Malformed(f"line {number} is not 'Key: Value'")
        fields.setdefault(key.lower(), value.strip())
    return Message(fields)


def action(name: str, action_id: str, fields: Mapping[str, str] | None = None) -> bytes:
    """One action as bytes; raises ``ValueError`` for a value with a line break in it."""
    lines = [("Action", name), ("ActionID", action_id), *(fields or {}).items()]
    out = []
    for key, value in lines:
        if any(c in key + value for c in "\r\n") or not key:
            raise ValueError(f"AMI field {key!r} holds a line break")
        out.append(f"{key}: {value}\r\n")
    return ("".join(out) + "\r\n").encode()


def challenge_key(challenge: str, secret: str) -> str:
    """The ``Key`` of an MD5 ``Login``: hex MD5 of the challenge followed by the secret."""
    return hashlib.md5((challenge + secret).encode(), usedforsecurity=False).hexdigest()


def is_success(message: Message) -> bool:
    return message.response.lower() in ("success", "follows", "goodbye")
