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
    new_response,
    parse_message,
    split_head,
)

MANDATORY = ("via", "from", "to", "call-id", "cseq")
# Compact forms (RFC 3261 §7.3.3) of the headers the salvage scan looks for.
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length"}
_SALVAGED = frozenset(("via", "from", "to", "call-id", "cseq", "content-length"))
# [0-9], never \d: in a str pattern \d matches every Unicode decimal digit.
_CSEQ = re.compile(r"^\s*([0-9]{1,10})\s+([A-Za-z!%*_+`'~.-]+)\s*\Z")
_TOKEN = re.compile(r"^[A-Za-z!%*_+`'~.-]+\Z")
# A Via's sent-protocol and the LWS after it (RFC 3261 §20.42, §25.1): each "/"
# may have LWS around it (SLASH), and LWS, not only one space, parts it from
# the sent-by. A value is unfolded by then: LWS is spaces and tabs.
_PROTOCOL = re.compile(r"[ \t]*[^/\s;]+[ \t]*/[ \t]*[^/\s;]+[ \t]*/[ \t]*[^/\s;]+[ \t]+")
# sent-by: host, then an optional port (COLON may have LWS around it), then params or the end.
_VIA_SENT_BY = re.compile(
    r"[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*[A-Za-z]+[ \t]+"
    r"(\[[^\]]*\]|[^;:\s\[\]]+)[ \t]*(?::[ \t]*([^;\s]*)[ \t]*)?(?:;|$)",
    re.IGNORECASE,
)
# received and rport parameters as a sender wrote them, with or without a value;
# the name whole (a token may hold "-": "rport-x" is another parameter)
_SOURCE_PARAMS = re.compile(r";\s*(received|rport)\s*(?:=\s*[^;]*)?(?=;|$)", re.IGNORECASE)
# SEMI and EQUAL may have LWS around them (RFC 3261 §25.1).
_TAG = re.compile(r";[ \t]*tag[ \t]*=", re.IGNORECASE)
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)
# A CR that ends no line (the head's own last CR is its end line's).
_BARE_CR = re.compile(rb"\r(?!\n|$)")
_CONTENT_LENGTH = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:([^\r\n]*)")
# A line break followed by a space or tab continues the header before it
# (RFC 3261 §7.3.1); the fold, with the blanks around it, reads as one space.
_FOLD = re.compile(rb"[ \t]*\r?\n[ \t]+")
_CONTINUATION = re.compile(rb"\n[ \t]")  # one scan, where two `in` tests take longer


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


def unfold(head: bytes) -> bytes:
    """A header section with each folded header on one line, as the parser reads it."""
    if _CONTINUATION.search(head) is None:
        return head
    return _FOLD.sub(b" ", head)


def scan_head(head: bytes, limits: Limits) -> dict[str, list[str]]:
    """The few headers we need even from a broken message, by a linear scan.

    Of the header section unfolded, so that the framer reads the
    Content-Length the parser reads: a continuation line is part of the
    header before it, whatever it looks like.
    """
    found: dict[str, list[str]] = {}
    for raw in unfold(head).split(b"\n")[1 : limits.max_headers * 4]:
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
    # A value hiding a bare CR is left out: written back as it came, it would
    # start a line of the sender's choosing in our answer (for a peer that, as
    # the adapter does, ends lines at a bare CR).
    found = {
        key: [value for value in values if "\r" not in value]
        for key, values in scan_head(head, limits).items()
    }
    if not found.get("via"):
        return []
    out = [("Via", v) for v in found["via"]]
    for key, name in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
        if found.get(key):
            out.append((name, found[key][0]))
    return out


def over_caps(head: bytes, limits: Limits, unfolded: bytes | None = None) -> str | None:
    """Why a header section is refused before it is read (too many lines, one too long,
    a bare CR, a continuation line with no header to continue), or None.

    On a stream this also loses the framing: ``scan_head`` reads no
    Content-Length past these caps, and the line cap holds for a folded
    header as a whole. A bare CR is a line end to the parser but not to
    the framer, and a continuation line right after the start line is a
    header to the parser but not to the framer, so the two would cut the
    message differently (a Content-Length only one of them sees).
    ``unfolded``: ``unfold(head)``, when the caller has it.
    """
    if head.count(b"\n") > limits.max_headers:
        return "Too Many Headers"
    if unfolded is None:
        unfolded = unfold(head)
    if max(map(len, unfolded.split(b"\n"))) > limits.max_line_bytes:
        return "Header Too Long"
    if _BARE_CR.search(head):
        return "Bare CR in Header"
    if unfolded is not head:
        start_end = head.find(b"\n")
        if head[start_end + 1 : start_end + 2] in (b" ", b"\t"):
            return "Bad Header Fold"
    return None


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
    unfolded = unfold(head)
    over = over_caps(head, limits, unfolded)
    if over is not None:
        raise reject(400, over)
    lines = head.split(b"\n")
    try:
        first = lines[0].rstrip(b"\r").decode("ascii")
    except UnicodeDecodeError:
        raise reject(400, "Bad Start Line") from None
    declared = [value.decode("latin-1").strip() for value in _CONTENT_LENGTH.findall(unfolded)]
    if declared:
        length = parse_decimal(declared[0], max_digits=10)
        # Twice, even alike, is refused as the TCP framer refuses it: one header, one length.
        if length is None or len(declared) > 1:
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
        sent_by_port(message.headers.get("via")[0])
    except ValueError:
        raise reject(400, "Bad Via") from None
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
    if asked:
        top = f"{top};rport={port}"
    if asked or via_host(top).strip("[]") != host:
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
        if asks_rport(via):
            return source
        port = sent_by_port(via)
    except ValueError:
        return None
    return source[0], port or 5060


def _after_protocol(via: str) -> str:
    """What follows the sent-protocol (name/version/transport) and the LWS after it; empty without them."""
    match = _PROTOCOL.match(via)
    return via[match.end() :] if match else ""


def asks_rport(via: str) -> bool:
    """Whether a Via has an ``rport`` parameter."""
    _, semicolon, params = _after_protocol(via).partition(";")
    return bool(semicolon) and any(
        part.partition("=")[0].strip().lower() == "rport" for part in params.split(";")
    )


def via_host(via: str) -> str:
    """A Via's sent-by host (an IPv6 one with its brackets); empty when it names none."""
    match = _VIA_SENT_BY.match(via)
    return match.group(1) if match else ""


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
    # Only a header parameter is the tag: ";tag=" inside <...> is the URI's.
    if to_tag and not _TAG.search(to[to.rfind(">") + 1 :]):
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
