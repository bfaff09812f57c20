"""Seeded mutations of SIP messages, and an independent judge of which must be answered.

Written apart from the gateway's SIP code, like the fake PBX: the judge
(``must_answer``) is deliberately strict, so that a request it calls
answerable is one every SIP stack would answer; anything it is unsure of
is only checked for what the gateway must never do (a 5xx, a traceback).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

# Numbers as hostile peers write them: non-ASCII digits that str.isdigit() or
# int() accept, signs, separators, overflow, nothing at all.
ODD_NUMBERS = [
    "0",
    "-1",
    "9" * 30,
    "\u00b2",
    "\uff11\uff12",
    "\u0663",
    "1e3",
    "0x10",
    "+5",
    " 5 ",
    "",
    "4294967296",
    "2147483648",
    "1_000",
    "0" * 40 + "1",
    "18446744073709551616",
    "5.5",
]
NON_ASCII = [
    b"\xb2",
    b"\xff\xfe",
    "\u00e9".encode(),
    "\u00b2".encode(),
    b"\x00",
    "\u202e".encode(),
    "\U0001f600".encode(),
    b"\xed\xa0\x80",  # a UTF-16 surrogate in UTF-8: invalid
    b"\x80",
    b"\x7f",
]
ODD_HEADERS = [
    "Require: foo, 100rel",
    "Require: ",
    "Content-Length: 5",
    "Content-Length: \u00b2",
    "l: 1",
    "Subscription-State: terminated;retry-after=\u00b2",
    "Subscription-State: active;expires=99999999999",
    "Subscription-State: terminated;reason=deactivated",
    "Subscription-State: ;;;=",
    "Expires: -1",
    "Expires: \u00b2",
    "Via: SIP/2.0/UDP 127.0.0.1:99999;branch=z9hG4bKodd",
    "Via: garbage",
    "Max-Forwards: \u00b2",
    "Event: dialog;id=\u00b2",
    "Event: presence",
    "CSeq: \u00b2 NOTIFY",
    "Content-Type: text/plain",
    "Call-ID: ",
    "Unsupported: x",
    "SIP-If-Match: a.b.c.d",
    "SIP-If-Match: " + "A" * 3000,
    "Contact: <sip:x@[::1>",
    "From: <sip:a@b>;tag=",
    'To: "unterminated <sip:x@y>',
    "Accept: */*",
    "Min-Expires: \u00b2",
]
ODD_VALUES = ["", " ", ";", "<>", "<sip:", '"', ",,,", "a" * 5000, "sip:x@y;tag=" + "t" * 200]
BODY_SNIPPETS = [
    b'<dialog id="dup"><state>early</state></dialog><dialog id="dup"><state>confirmed</state></dialog>',
    b'<dialog id="x"><state>weird</state></dialog>',
    b'<dialog id="x" direction="sideways"><state>early</state></dialog>',
    b'<dialog id="x"><state code="\xc2\xb2">terminated</state></dialog>',
    b"".join(b'<dialog id="m%d"><state>trying</state></dialog>' % n for n in range(140)),
    b"<dialog><state>early</state></dialog>",
    b"<unknown xmlns='urn:x'>y</unknown>",
    b"<dialog id='\xff'><state>early</state></dialog>",
]

# XML declarations naming Python codecs that are no text encodings, or none at all.
ODD_ENCODINGS = [
    b"U5F-8",
    b"rot13",
    b"zlib",
    b"utf-16",
    b"utf-32",
    b"idna",
    b"base64",
    b"latin-1",
    b"",
    b"x" * 100,
]
_NUMBER = re.compile(rb"[0-9]+")
# Where numbers live in a SIP message (group 1 is the number).
_NUMERIC_FIELDS = [
    re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)"),
    re.compile(rb"(?im)^cseq[ \t]*:[ \t]*([0-9]+)"),
    re.compile(rb"(?im)^(?:via|v)[ \t]*:[^\r\n;]*?:([0-9]+)"),
    re.compile(rb"(?im)^(?:expires|max-forwards|min-expires)[ \t]*:[ \t]*([0-9]+)"),
    re.compile(rb"(?i)(?:expires|retry-after)=([0-9]+)"),
    re.compile(rb'version="([0-9]+)"'),
    re.compile(rb"(?m)^SIP/2\.0 ([0-9]+)"),
]
_TOP_VIA = re.compile(rb"(?im)^(?:via|v)[ \t]*:[^\r\n]*")


def _head_and_body(data: bytes) -> tuple[bytes, bytes, bool]:
    end = data.find(b"\r\n\r\n")
    if end == -1:
        return data, b"", False
    return data[:end], data[end + 4 :], True


def _join(head: bytes, body: bytes, ended: bool) -> bytes:
    return head + (b"\r\n\r\n" + body if ended else b"")


@dataclass
class Mutator:
    """One seeded stream of mutations; ``mutate`` names what it did."""

    rng: random.Random

    def mutate(self, data: bytes) -> tuple[str, bytes]:
        names = []
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            name, op = self.rng.choice(_OPS)
            names.append(name)
            data = op(self, data)
        if self.rng.random() < 0.5:
            # Half the mutants get a true Content-Length again, so that
            # body mutations reach the body's parser, not only the framer.
            data = self.fix_length(data)
        return "+".join(names), data

    # --- helpers ---

    def _header_lines(self, data: bytes) -> tuple[list[bytes], bytes, bool]:
        head, body, ended = _head_and_body(data)
        return head.split(b"\r\n"), body, ended

    def fix_length(self, data: bytes) -> bytes:
        lines, body, ended = self._header_lines(data)
        if not ended:
            return data
        fixed = [
            b"Content-Length: %d" % len(body) if line.lower().startswith(b"content-length:") else line
            for line in lines
        ]
        return _join(b"\r\n".join(fixed), body, ended)

    def _pick_header(self, lines: list[bytes]) -> int | None:
        return self.rng.randrange(1, len(lines)) if len(lines) > 1 else None

    # --- mutations ---

    def flip_bytes(self, data: bytes) -> bytes:
        out = bytearray(data)
        if not out:
            return data
        head_len = len(_head_and_body(data)[0])
        for _ in range(self.rng.randint(1, 4)):
            span = head_len if self.rng.random() < 0.8 and head_len else len(out)
            out[self.rng.randrange(span)] = self.rng.randrange(256)
        return bytes(out)

    def truncate(self, data: bytes) -> bytes:
        return data[: self.rng.randrange(1, max(2, len(data)))]

    def duplicate_header(self, data: bytes) -> bytes:
        lines, body, ended = self._header_lines(data)
        index = self._pick_header(lines)
        if index is None:
            return data
        lines.insert(self.rng.randrange(1, len(lines) + 1), lines[index])
        return _join(b"\r\n".join(lines), body, ended)

    def delete_header(self, data: bytes) -> bytes:
        lines, body, ended = self._header_lines(data)
        index = self._pick_header(lines)
        if index is None:
            return data
        del lines[index]
        return _join(b"\r\n".join(lines), body, ended)

    def odd_number(self, data: bytes) -> bytes:
        """A number where SIP reads one (or anywhere in the header section) made odd."""
        if self.rng.random() < 0.8:
            fields = [m.span(1) for pattern in _NUMERIC_FIELDS for m in pattern.finditer(data)]
        else:
            fields = [m.span() for m in _NUMBER.finditer(_head_and_body(data)[0])]
        if not fields:
            return data
        start, end = self.rng.choice(fields)
        return data[:start] + self._odd_number() + data[end:]

    def _odd_number(self) -> bytes:
        odd = self.rng.choice(ODD_NUMBERS)
        return odd.encode("latin-1", "replace") if self.rng.random() < 0.5 else odd.encode()

    def via_games(self, data: bytes) -> bytes:
        """The top Via without rport, with an odd port or host, or params gone wrong."""
        via = _TOP_VIA.search(data)
        if via is None:
            return data
        line = via.group(0)
        if self.rng.random() < 0.6:
            line = re.sub(rb";\s*rport(=[0-9]*)?", b"", line)
        game = self.rng.randrange(4)
        if game == 0:
            port = self._odd_number()
            line = re.sub(rb"(127\.0\.0\.1):[0-9]+", lambda m: m.group(1) + b":" + port, line, count=1)
        elif game == 1:
            host = self.rng.choice((b"", b"[::1", b"host:1:2", b"\xff"))
            line = re.sub(rb"127\.0\.0\.1(:[0-9]+)?", lambda _: host, line, count=1)
        elif game == 2:
            line += self.rng.choice((b";rport=\xb2", b";received=", b";branch=", b";;;", b",SIP/2.0/UDP x"))
        else:
            line = line.replace(b"SIP/2.0/", self.rng.choice((b"SIP/2.0", b"SIP/3.0/", b"sip/2.0/", b"")), 1)
        return data[: via.start()] + line + data[via.end() :]

    def non_ascii(self, data: bytes) -> bytes:
        head, body, ended = _head_and_body(data)
        at = self.rng.randrange(len(head) + 1)
        return _join(head[:at] + self.rng.choice(NON_ASCII) + head[at:], body, ended)

    def odd_header(self, data: bytes) -> bytes:
        """An odd header line, in place of the first of its name (half the time) or added."""
        lines, body, ended = self._header_lines(data)
        encoding = "latin-1" if self.rng.random() < 0.5 else "utf-8"
        line = self.rng.choice(ODD_HEADERS).encode(encoding, "replace")
        name = line.partition(b":")[0].lower()
        same = [i for i, old in enumerate(lines[1:], 1) if old.partition(b":")[0].strip().lower() == name]
        if same and self.rng.random() < 0.5:
            lines[same[0]] = line
        else:
            lines.insert(self.rng.randrange(1, len(lines) + 1), line)
        return _join(b"\r\n".join(lines), body, ended)

    def odd_value(self, data: bytes) -> bytes:
        lines, body, ended = self._header_lines(data)
        index = self._pick_header(lines)
        if index is None:
            return data
        name = lines[index].partition(b":")[0]
        lines[index] = name + b": " + self.rng.choice(ODD_VALUES).encode()
        return _join(b"\r\n".join(lines), body, ended)

    def crlf_games(self, data: bytes) -> bytes:
        game = self.rng.randrange(8)
        if game == 0:
            return data.replace(b"\r\n", b"\n")
        if game == 1:
            ends = [m.start() for m in re.finditer(rb"\r\n", data)]
            if not ends:
                return data
            at = self.rng.choice(ends)
            return data[:at] + self.rng.choice((b"\n", b"\r", b"\n\r", b"\r\r\n")) + data[at + 2 :]
        if game == 2:  # a line cut in two
            at = self.rng.randrange(len(data) + 1)
            return data[:at] + b"\r\n" + data[at:]
        if game == 3:  # the header section ends early
            at = self.rng.randrange(len(data) + 1)
            return data[:at] + b"\r\n\r\n" + data[at:]
        if game == 4:  # a folded line
            lines, body, ended = self._header_lines(data)
            index = self._pick_header(lines)
            if index is None:
                return data
            name, _, value = lines[index].partition(b":")
            lines[index] = name + b":\r\n " + value.strip()
            return _join(b"\r\n".join(lines), body, ended)
        if game == 5:
            return data.replace(b"\r\n\r\n", b"\r\n", 1)
        if game == 6:
            return b"\r\n" * self.rng.randint(1, 3) + data
        return data + self.rng.choice((b"\r\n", b"garbage", b"\r\n\r\nOPTIONS x SIP/2.0\r\n\r\n"))

    def body_games(self, data: bytes) -> bytes:
        head, body, ended = _head_and_body(data)
        if not ended:
            return data
        game = self.rng.randrange(6)
        if game == 5:
            body = re.sub(rb'encoding="[^"]*"', b'encoding="' + self.rng.choice(ODD_ENCODINGS) + b'"', body)
        elif game == 0 and b"</dialog-info>" in body:
            snippet = self.rng.choice(BODY_SNIPPETS)
            body = body.replace(b"</dialog-info>", snippet + b"</dialog-info>")
        elif game == 1:
            body = body[: self.rng.randrange(len(body) + 1)]
        elif game == 2:
            body = re.sub(
                rb'version="[0-9]+"', b'version="' + self.rng.choice(ODD_NUMBERS).encode() + b'"', body
            )
        elif game == 3:
            body = re.sub(
                rb"<state>[a-z]+</state>", b"<state>" + self.rng.choice(NON_ASCII) + b"</state>", body
            )
        else:
            body = b""
        return _join(head, body, ended)


_OPS: list[tuple[str, Callable[[Mutator, bytes], bytes]]] = [
    ("flip", Mutator.flip_bytes),
    ("truncate", Mutator.truncate),
    ("dup-header", Mutator.duplicate_header),
    ("del-header", Mutator.delete_header),
    ("odd-number", Mutator.odd_number),
    ("odd-number", Mutator.odd_number),
    ("via", Mutator.via_games),
    ("non-ascii", Mutator.non_ascii),
    ("odd-header", Mutator.odd_header),
    ("odd-value", Mutator.odd_value),
    ("crlf", Mutator.crlf_games),
    ("body", Mutator.body_games),
]

# --- the judge ---

_REQUEST_LINE = re.compile(rb"^([A-Za-z!%*_+`'~.-]+) [^ ]+ SIP/2\.0$")
_HEADER_LINE = re.compile(rb"^[A-Za-z0-9!%*_+`'~.-]+[ \t]*:")
_VIA = re.compile(
    rb"^SIP/2\.0/[A-Za-z]+ ([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?((?:;[^;,]*)*)$",
    re.IGNORECASE,
)
_BRANCH = re.compile(rb";\s*branch=([^;,\s]+)", re.IGNORECASE)
_RPORT = re.compile(rb";\s*rport(?:=[0-9]*)?\s*(?=;|$)", re.IGNORECASE)


def _value(line: bytes) -> bytes:
    return line.partition(b":")[2].strip()


def must_answer(data: bytes, transport: str, own_port: int, max_bytes: int = 65_535) -> str | None:
    """The branch of a request that must be answered back to us, else None.

    Strict on purpose: a plain ASCII header section with CRLF line ends, a
    request line, well-formed header lines, a top Via we can read, and (on
    UDP) one that routes back to ``own_port``. ACK is never answered.
    """
    head, body, ended = _head_and_body(data)
    if not ended or len(data) > max_bytes or len(head) > 60_000:
        return None
    if any(not (32 <= byte < 127 or byte in b"\r\n\t") for byte in head):
        return None
    lines = head.split(b"\r\n")
    if any(b"\r" in line or b"\n" in line for line in lines):
        return None
    request_line = _REQUEST_LINE.match(lines[0])
    if request_line is None or request_line.group(1) == b"ACK" or len(lines) > 120:
        return None
    if any(len(line) > 4000 or not _HEADER_LINE.match(line) for line in lines[1:]):
        return None
    names = [line.partition(b":")[0].strip().lower() for line in lines[1:]]
    vias = [_value(line) for line, name in zip(lines[1:], names, strict=True) if name in (b"via", b"v")]
    if not vias:
        return None
    via = _VIA.match(vias[0])
    branch = _BRANCH.search(vias[0])
    if via is None or branch is None:
        return None
    if transport == "udp" and not _RPORT.search(via.group(3)):
        port = int(via.group(2) or b"5060")
        if port != own_port:
            return None
    if transport == "tcp":
        lengths = [
            _value(line)
            for line, name in zip(lines[1:], names, strict=True)
            if name in (b"content-length", b"l")
        ]
        declared = int(lengths[0]) if len(lengths) == 1 and lengths[0].isdigit() else None
        if declared is not None and len(head) + 4 + declared <= max_bytes and declared > len(body):
            return None  # the framer waits for the rest of the body
    return branch.group(1).decode()


def answer_of(data: bytes) -> tuple[int, str] | None:
    """(status, top Via branch) of a response, None if it is not one."""
    first, _, rest = data.partition(b"\r\n")
    parts = first.split(b" ", 2)
    if len(parts) < 2 or parts[0] != b"SIP/2.0" or not parts[1].isdigit():
        return None
    head = rest.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"via", b"v"):
            branch = _BRANCH.search(value)
            return int(parts[1]), branch.group(1).decode("utf-8", "replace") if branch else ""
    return int(parts[1]), ""


def branch_shown(data: bytes) -> str:
    """The first branch parameter anywhere in a message, however mangled (for reports)."""
    found = _BRANCH.search(data)
    return found.group(1).decode("utf-8", "replace") if found else ""
