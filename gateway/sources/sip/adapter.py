"""The one place that knows the SIP library (aiosipua).

Everything else in ``gateway.sources.sip`` speaks in the names defined here,
so the library can be swapped by rewriting this module alone. We use the
library for its message types, header codecs and digest arithmetic; parsing
and writing messages is done here, into and out of its types, because its
own parse was the dearest step of a message (docs/benchmarks.md, "The SIP
benchmark"). Transport, transactions, caps and the SUBSCRIBE/PUBLISH logic
are ours (docs/sip.md).
"""

from __future__ import annotations

import functools

from aiosipua import SipDigestAuth, SipRequest, SipResponse, build_credentials
from aiosipua.headers import (
    COMPACT_HEADERS,
    MULTI_INSTANCE_HEADERS,
    Address,
    CaseInsensitiveDict,
    Via,
    parse_address,
    parse_auth,
    parse_via,
    prettify_header_name,
    stringify_auth,
    stringify_via,
)

__all__ = [
    "Address",
    "Request",
    "Response",
    "Via",
    "digest_credentials",
    "format_via",
    "new_request",
    "new_response",
    "parse_address",
    "parse_message",
    "parse_via",
    "serialize",
    "split_head",
]

Request = SipRequest
Response = SipResponse


# Compact forms (IANA's SIP header field registry): the library knows RFC 3261's,
# not those of the SIP extensions (Event and Allow-Events, RFC 6665).
_COMPACT = {
    **COMPACT_HEADERS,
    "a": "accept-contact",
    "b": "referred-by",
    "d": "request-disposition",
    "j": "reject-contact",
    "o": "event",
    "r": "refer-to",
    "u": "allow-events",
    "x": "session-expires",
    "y": "identity",
}

# The library's own cap on header lines (message_rules caps them lower before this).
MAX_HEADER_LINES = 256


def parse_message(data: bytes) -> Request | Response:
    """Parse one framed message; ``ValueError`` for anything unparseable.

    The result is what the library's ``SipMessage.parse`` builds from the
    same bytes (``tests/sip/test_adapter.py`` holds them to that), built
    here because the library's parse took up to a fifth of a message's CPU time:
    it splits every Via and Contact value character by character, where
    most have no comma to split at. Where the library departs from RFC 3261
    this does not: the header section ends at the first empty line, CRLF or
    bare LF; a fold and the blanks around it are one space; the compact
    names of SIP extensions are expanded too. Lines are unfolded, comma
    lists split outside ``<>`` and quotes, and a body longer than its
    Content-Length cut to it.
    """
    try:
        return _parse(data)
    except ValueError:
        raise
    except Exception as exc:  # anything else on garbage is ours to name
        raise ValueError(f"unparseable SIP message: {exc.__class__.__name__}") from None


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Header section and body, at the first empty line (CRLF or bare LF).

    The first of either, where the library looks for a CRLF one first: in a
    bare-LF message whose body holds CRLF CRLF, that reads part of the body
    as headers.
    """
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf == -1 and lf == -1:
        return None
    if lf == -1 or (crlf != -1 and crlf < lf):
        return data[:crlf], data[crlf + 4 :]
    return data[:lf], data[lf + 2 :]


def _parse(data: bytes) -> Request | Response:
    sections = split_head(data)
    head, body = sections if sections is not None else (data, b"")
    text = head.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    start = lines[0].strip()
    if not start:
        raise ValueError("Missing start line")
    unfolded: list[str] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and unfolded:
            # The fold and the blanks on either side of it are one space (RFC 3261 §7.3.1).
            unfolded[-1] = unfolded[-1].rstrip(" \t") + " " + line.strip()
        else:
            unfolded.append(line)
    if len(unfolded) > MAX_HEADER_LINES:
        raise ValueError(f"Too many headers ({len(unfolded)} > {MAX_HEADER_LINES})")
    # Filled as the library's CaseInsensitiveDict keeps itself (values by
    # lower-case name, the first spelling of each name), without its
    # per-value check for line breaks and colons: a line split at its first
    # colon, from a header section split at line breaks, has none.
    store: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for line in unfolded:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.strip()
        value = value.strip()
        lower = name.lower()
        compact = _COMPACT.get(lower)
        if compact is not None:
            name = lower = compact
        if lower not in MULTI_INSTANCE_HEADERS:
            items = [value]
        elif "," in value:
            items = _split_list(value)
        elif value:
            items = [value]
        else:
            continue  # an empty list header adds no value
        values = store.get(lower)
        if values is None:
            store[lower] = values = []
            spelling[lower] = name
        values += items
    headers = _filled(store, spelling)
    length = store.get("content-length")
    if length:
        try:
            declared = int(length[0].strip())
        except ValueError:
            declared = -1
        if 0 <= declared < len(body):
            body = body[:declared]
    parts = start.split(None, 2)
    if start.startswith("SIP/"):
        status = int(parts[1]) if len(parts) > 1 else 0
        return SipResponse(
            headers=headers, body=body, status_code=status, reason_phrase=parts[2] if len(parts) > 2 else ""
        )
    if len(parts) < 3:
        raise ValueError(f"Malformed request line: {start!r}")
    return SipRequest(headers=headers, body=body, method=parts[0], uri=parts[1])


def _split_list(value: str) -> list[str]:
    """A comma-separated header value's items, stripped, as the library splits them.

    A comma inside ``<...>`` (a URI) or a quoted string separates nothing;
    quotes count only outside angle brackets. An empty item between two
    commas is kept, an empty last one is not.
    """
    items: list[str] = []
    begin = depth = 0
    quoted = False
    for index, char in enumerate(value):
        if char == '"' and depth == 0:
            quoted = not quoted
        elif quoted:
            continue
        elif char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            items.append(value[begin:index].strip())
            begin = index + 1
    last = value[begin:].strip()
    if last:
        items.append(last)
    return items


# Spelled as their RFCs spell them: the library title-cases names it does not
# know ("Sip-Etag"), which is legal but trips peers that match names by case
# (sipp's header regexps do).
_CANONICAL = {
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
    "www-authenticate": "WWW-Authenticate",
    "allow-events": "Allow-Events",
    "subscription-state": "Subscription-State",
}


@functools.lru_cache(maxsize=256)
def _pretty(name: str) -> str:
    return _CANONICAL.get(name.lower()) or prettify_header_name(name)


def serialize(message: Request | Response) -> bytes:
    message.headers.set_single("Content-Length", str(len(message.body)))
    if isinstance(message, SipRequest):
        lines = [f"{message.method} {message.uri} SIP/2.0"]
    else:
        lines = [f"SIP/2.0 {message.status_code} {message.reason_phrase}"]
    for name, values in message.headers.items():
        pretty = _pretty(name)
        lines += [f"{pretty}: {value}" for value in values]
    lines += ["", ""]
    return "\r\n".join(lines).encode("utf-8") + message.body


def new_request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request:
    return SipRequest(method=method, uri=uri, body=body, headers=_header_dict(headers))


def new_response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes = b"") -> Response:
    return SipResponse(status_code=status, reason_phrase=reason, body=body, headers=_header_dict(headers))


def _header_dict(headers: list[tuple[str, str]]) -> CaseInsensitiveDict:
    """The headers as the library's dict holds them, refusing what its ``append`` refuses
    (a name with a line break or colon, a value with a line break: header injection),
    in one pass rather than a checked call per header of every answer."""
    store: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in headers:
        if "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"Invalid header name: {name!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"Header value for {name} contains line breaks")
        key = name.lower()
        values = store.get(key)
        if values is None:
            store[key] = values = []
            spelling[key] = name
        values.append(value)
    return _filled(store, spelling)


def _filled(store: dict[str, list[str]], spelling: dict[str, str]) -> CaseInsensitiveDict:
    """A library header dict holding ``store`` (values by lower-case name) and
    ``spelling`` (each name as first written), as its own ``append`` keeps them."""
    headers = CaseInsensitiveDict()
    headers._store = store
    headers._original = spelling
    return headers


def format_via(via: Via) -> str:
    return stringify_via(via)


def digest_credentials(
    challenge: str, username: str, password: str, method: str, uri: str, nonce_count: int
) -> tuple[str, dict[str, str]] | None:
    """The Authorization value answering ``challenge`` and the challenge's params.

    ``None`` when the challenge cannot be answered (not Digest, no nonce, an
    algorithm other than MD5/SHA-256, qop without ``auth``).
    """
    parsed = parse_auth(challenge)
    credentials = build_credentials(
        SipDigestAuth(username, password), parsed, method, uri, nonce_count=nonce_count
    )
    if credentials is None:
        return None
    return stringify_auth(credentials), dict(parsed.params)
