"""Framing, caps and validation of SIP messages, before and after the library parses them.

Sans-I/O: bytes in, a parsed message or a ``Rejected`` out. The caps are
applied on the raw bytes first, so hostile input (thousands of headers, huge
lines, lying Content-Length) costs a linear scan and never reaches the
library's parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway.parsing import parse_decimal
from gateway.sources.sip.adapter import (
    Request,
    Response,
    Via,
    new_response,
    parse_message,
    parse_via,
)

MANDATORY = ("via", "from", "to", "call-id", "cseq")
# Compact forms (RFC 3261 §7.3.3) of the headers the salvage scan looks for.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length"}
_SALVAGED = frozenset(("via", "from", "to", "call-id", "cseq", "content-length"))
# [0-9], never \d: in a str pattern \d matches every Unicode decimal digit.
_CSEQ = re.compile(r"^\s*([0-9]{1,10})\s+([A-Za-z!%*_+`'~.-]+)\s*\Z")
_TOKEN = re.compile(r"^[A-Za-z!%*_+`'~.-]+\Z")
_SENT_BY = re.compile(r"^\s*SIP\s*/\s*2\.0\s*/\s*[A-Za-z]+\s+(\[[^\]]*\]|[^;:\s]+)", re.IGNORECASE)
# sent-by (RFC 3261 §20.42): host, then an optional port, then params or the end.
_VIA_SENT_BY = re.compile(
    r"^\s*SIP\s*/\s*2\.0\s*/\s*[A-Za-z]+\s+(\[[^\]]*\]|[^;:\s\[\]]+)\s*(?::\s*([^;\s]*)\s*)?(?:;|$)",
    re.IGNORECASE,
)
_RPORT_ASKED = re.compile(r";\s*rport\s*(?=;|$)", re.IGNORECASE)
# received and rport parameters as a sender wrote them, with or without a value
_SOURCE_PARAMS = re.compile(r";\s*(received|rport)\b\s*(?:=\s*[^;]*)?", re.IGNORECASE)
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)
_CONTENT_LENGTH = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:([^\r\n]*)")


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 65_535
    max_headers: int = 128
    max_line_bytes: int = 4096
    tcp_message_seconds: float = 10.0  # a message, once begun on TCP, must be whole by then
    # An accepted TCP connection silent this long is closed: above the PBX's keep-alive
    # interval (Asterisk, Kamailio: 60-120 s), so that only dead or hostile peers go.
    tcp_idle_seconds: float = 300.0
    tcp_connections_per_source: int = 32  # one host cannot take every connection slot


@dataclass
class Rejected(Exception):
    """A message refused before the application saw it.

    ``status`` 0 means no response is possible (no usable Via): drop and log.
    ``headers`` are the salvaged Via/From/To/Call-ID/CSeq to answer with.
    """

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Header section and body, at the first empty line (CRLF or bare LF)."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf == -1 and lf == -1:
        return None
    if lf == -1 or (crlf != -1 and crlf < lf):
        return data[:crlf], data[crlf + 4 :]
    return data[:lf], data[lf + 2 :]


def scan_head(head: bytes, limits: Limits) -> dict[str, list[str]]:
    """The few headers we need even from a broken message, by a linear scan."""
    found: dict[str, list[str]] = {}
    for raw in head.split(b"\n")[1 : limits.max_headers * 4]:
        line = raw.rstrip(b"\r")
        if len(line) > limits.max_line_bytes:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().decode("latin-1").lower()
        key = _COMPACT.get(key, key)
        if key in _SALVAGED:
            found.setdefault(key, []).append(value.strip().decode("utf-8", "replace"))
    return found


def salvage_headers(head: bytes, limits: Limits) -> list[tuple[str, str]]:
    found = scan_head(head, limits)
    if not found.get("via"):
        return []
    out = [("Via", v) for v in found["via"]]
    for key, name in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
        if found.get(key):
            out.append((name, found[key][0]))
    return out


def _is_request_line(head: bytes) -> bool:
    return not head.startswith(b"SIP/")


def decode(data: bytes, limits: Limits, *, stream: bool = False) -> Request | Response:
    """One framed message, validated; raises ``Rejected``.

    On a datagram the body must be at least Content-Length long (RFC 3261
    §18.3); on a stream the framer has already cut it to Content-Length.
    """
    parts = split_head(data)
    head, body = parts if parts is not None else (data, b"")
    is_request = _is_request_line(head)

    def reject(status: int, reason: str) -> Rejected:
        if not is_request:
            return Rejected(0, reason)
        headers = salvage_headers(head, limits)
        return Rejected(status if headers else 0, reason, headers)

    if len(data) > limits.max_message_bytes:
        raise reject(413, "Message Too Large")
    if head.count(b"\n") > limits.max_headers:
        raise reject(400, "Too Many Headers")
    lines = head.split(b"\n")
    if max(map(len, lines)) > limits.max_line_bytes:
        raise reject(400, "Header Too Long")
    try:
        first = lines[0].rstrip(b"\r").decode("ascii")
    except UnicodeDecodeError:
        raise reject(400, "Bad Start Line") from None
    declared = [value.decode("latin-1").strip() for value in _CONTENT_LENGTH.findall(head)]
    if declared:
        length = parse_decimal(declared[0], max_digits=10)
        if length is None or len(set(declared)) > 1:
            raise reject(400, "Bad Content-Length")
        if not stream and length > len(body):
            raise reject(400, "Content-Length Larger Than Body")
    if is_request:
        words = first.split(" ")
        if len(words) != 3 or not _TOKEN.match(words[0]) or not words[1]:
            raise reject(400, "Bad Request Line")
        if words[2] != "SIP/2.0":
            raise reject(505, "Version Not Supported")
    else:
        words = first.split(" ", 2)
        if len(words) < 2 or words[0] != "SIP/2.0" or len(words[1]) != 3 or parse_decimal(words[1]) is None:
            raise Rejected(0, "bad status line")
    try:
        message = parse_message(data)
    except ValueError as exc:
        raise reject(400, "Bad Request") from exc
    missing = [name for name in MANDATORY if not message.headers.get_first(name)]
    if missing:
        raise reject(400, f"Missing {missing[0].title()}")
    cseq = _CSEQ.match(message.headers.get_first("cseq") or "")
    if cseq is None or int(cseq.group(1)) >= 2**31:
        raise reject(400, "Bad CSeq")
    if isinstance(message, Request) and cseq.group(2) != message.method:
        raise reject(400, "CSeq Method Mismatch")
    try:
        top = top_via(message)
        sent_by_port(message.headers.get("via")[0])
    except Exception:
        raise reject(400, "Bad Via") from None
    if not top.host:
        raise reject(400, "Bad Via")
    return message


def sent_by_port(via: str) -> int | None:
    """The port of a Via's sent-by, ``None`` when it names none.

    ``ValueError`` unless it is 1 to 65535 in ASCII digits: the library's
    ``int()`` takes superscripts, underscores, signs and thirty nines, and
    a response sent to such a "port" raises in the socket layer.
    """
    match = _VIA_SENT_BY.match(via)
    if match is None:
        raise ValueError("Via sent-by is not host[:port]")
    if match.group(2) is None:
        return None
    port = parse_decimal(match.group(2), max_digits=5)
    if port is None or not 1 <= port <= 65535:
        raise ValueError("Via port is not 1 to 65535")
    return port


# Option tags (RFC 3261 §19.2) this gateway implements: none. Its answers to
# NOTIFY, PUBLISH and OPTIONS need no extension.
SUPPORTED_OPTIONS: frozenset[str] = frozenset()


def unsupported_options(request: Request) -> list[str]:
    """The option tags in ``Require`` we do not support, for a 420 (RFC 3261 §8.2.2.3).

    Never for ACK or CANCEL, which must not be refused for what they require.
    """
    if request.method in ("ACK", "CANCEL"):
        return []
    unsupported: list[str] = []
    for value in request.headers.get("require"):
        for tag in value.split(","):
            tag = tag.strip()
            if tag and tag.lower() not in SUPPORTED_OPTIONS and tag not in unsupported:
                unsupported.append(tag)
    return unsupported


def top_via(message: Request | Response) -> Via:
    """The first Via only: the library's ``.via`` parses every one of them."""
    return parse_via(message.headers.get("via")[0])


def cseq_of(message: Request | Response) -> tuple[int, str]:
    match = _CSEQ.match(message.headers.get_first("cseq") or "")
    if match is None:  # decode() has checked it already
        return (0, "")
    return int(match.group(1)), match.group(2)


def branch_of(message: Request | Response) -> str:
    match = _BRANCH.search(message.headers.get("via")[0])
    return match.group(1) if match else ""


def transaction_key(request: Request) -> tuple[str, str, str, int]:
    """Server transaction identity: branch, method, Call-ID and CSeq number.

    Call-ID and CSeq are part of it so that a peer reusing a branch (RFC 2543
    peers have no magic cookie) cannot alias two different transactions.
    """
    number, method = cseq_of(request)
    return (branch_of(request), method, request.headers.get_first("call-id") or "", number)


def stamp_via(request: Request, host: str, port: int) -> None:
    """Record where a request really came from in its top Via (RFC 3261 §18.2.1, RFC 3581).

    Any ``received`` or ``rport`` value in the Via is the sender's word and is
    stripped first: only the packet's own source is written back, so that
    responses can never be pointed at a third party. Done on the header text:
    parsing and re-writing the Via costs more than the rest of the transport's
    work on a message.
    """
    values = request.headers.get("via")
    original = values[0]
    asked = False

    def drop(match: re.Match[str]) -> str:
        nonlocal asked
        asked = asked or match.group(1).lower() == "rport"
        return ""

    top = _SOURCE_PARAMS.sub(drop, original)
    sent_by = _SENT_BY.match(top)
    if asked:
        top = f"{top};rport={port}"
    if asked or sent_by is None or sent_by.group(1).strip("[]") != host:
        top = f"{top};received={host}"
    if top == original:
        return
    rest = values[1:]
    request.headers.remove("via")
    request.headers.append("Via", top)
    for value in rest:
        request.headers.append("Via", value)


def response_target(request: Request, source: tuple[str, int]) -> tuple[str, int] | None:
    """Where an unreliable-transport response goes (RFC 3261 §18.2.2, RFC 3581 §4).

    Always the packet's source host (what ``received`` says, as we stamped
    it); its source port when ``rport`` was asked for, else the Via's port.
    ``None`` when the Via names no usable port (nowhere to answer).
    """
    return _target(request.headers.get("via")[0], source)


def _target(via: str, source: tuple[str, int]) -> tuple[str, int] | None:
    try:
        if "rport" in parse_via(via).params:
            return source
        port = sent_by_port(via)
    except Exception:  # the library's parser may raise anything on garbage
        return None
    return source[0], port or 5060


def make_response(
    request: Request,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Response:
    headers = [("Via", v) for v in request.headers.get("via")]
    to = request.headers.get_first("to") or ""
    if to_tag and ";tag=" not in to.replace(" ", "").lower():
        to = f"{to};tag={to_tag}"
    headers += [
        ("From", request.headers.get_first("from") or ""),
        ("To", to),
        ("Call-ID", request.headers.get_first("call-id") or ""),
        ("CSeq", request.headers.get_first("cseq") or ""),
    ]
    headers += extra or []
    return new_response(status, reason, headers, body)


def salvaged_response(rejected: Rejected) -> bytes:
    """A response built from raw salvaged headers, for a message the parser refused."""
    lines = [f"SIP/2.0 {rejected.status} {rejected.reason}"]
    lines += [f"{name}: {value}" for name, value in rejected.headers]
    lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode("utf-8", "replace")


def salvaged_target(rejected: Rejected, host: str, port: int) -> tuple[str, int] | None:
    """Where to send a salvaged response over UDP: the source, as with rport."""
    for name, value in rejected.headers:
        if name == "Via":
            return _target(value, (host, port))
    return None
