"""A sans-I/O reader for one SSE response: HTTP head, chunked framing, events.

The bench holds thousands of streams in one process, so each stream is a
plain ``asyncio.Protocol`` feeding bytes to this parser instead of an HTTP
client library with a task and buffers of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ProtocolError(ValueError):
    pass


@dataclass
class SseParser:
    """Feed it bytes; it returns the ``data:`` payloads of completed events."""

    status: int = 0
    opened: bool = False  # the server's first comment (": connected") has arrived
    ended: bool = False
    _head_done: bool = False
    _chunked: bool = False
    _raw: bytearray = field(default_factory=bytearray)
    _need: int = -1  # bytes left in the current chunk (with its CRLF); -1: read a size line
    _text: bytearray = field(default_factory=bytearray)
    _data: list[bytes] = field(default_factory=list)

    def feed(self, data: bytes) -> list[bytes]:
        if self.ended:
            return []
        self._raw += data
        if not self._head_done and not self._read_head():
            return []
        if not self._chunked:
            body, self._raw = bytes(self._raw), bytearray()
            return self._lines(body)
        out: list[bytes] = []
        while self._raw:
            if self._need < 0:
                end = self._raw.find(b"\r\n")
                if end < 0:
                    break
                size = int(self._raw[:end].split(b";")[0], 16)
                del self._raw[: end + 2]
                if size == 0:
                    self.ended = True
                    break
                self._need = size + 2
                continue
            take = min(self._need, len(self._raw))
            piece = bytes(self._raw[:take])
            del self._raw[:take]
            self._need -= take
            if self._need == 0:
                piece, self._need = piece[:-2], -1
            elif self._need == 1:
                piece = piece[:-1]  # the chunk's CR; its LF is still to come
            out.extend(self._lines(piece))
        return out

    def _read_head(self) -> bool:
        end = self._raw.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self._raw[:end]).split(b"\r\n")
        del self._raw[: end + 4]
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0]!r}")
        self.status = int(parts[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
        self._head_done = True
        return True

    def _lines(self, piece: bytes) -> list[bytes]:
        self._text += piece
        out: list[bytes] = []
        while True:
            end = self._text.find(b"\n")
            if end < 0:
                return out
            line = bytes(self._text[:end])
            del self._text[: end + 1]
            if not line:
                if self._data:
                    out.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                self._data.append(line[5:].lstrip(b" "))
            elif line.startswith(b":"):
                self.opened = True
