"""The one place that knows the SIP library (aiosipua).

Everything else in ``gateway.sources.sip`` speaks in the names defined here,
so the library can be swapped by rewriting this module alone. We use the
library for what it does well and cheaply: message parsing and
serialisation, header codecs and digest arithmetic. Transport, transactions,
caps and the SUBSCRIBE/PUBLISH logic are ours (see README, "SIP").
"""

from __future__ import annotations

from aiosipua import SipDigestAuth, SipMessage, SipRequest, SipResponse, build_credentials
from aiosipua.headers import (
    Address,
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
]

Request = SipRequest
Response = SipResponse


def parse_message(data: bytes) -> Request | Response:
    """Parse one framed message; ``ValueError`` for anything unparseable."""
    try:
        return SipMessage.parse(data)
    except ValueError:
        raise
    except Exception as exc:  # the library's internals may raise anything on garbage
        raise ValueError(f"unparseable SIP message: {exc.__class__.__name__}") from None


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


def serialize(message: Request | Response) -> bytes:
    message.headers.set_single("Content-Length", str(len(message.body)))
    if isinstance(message, SipRequest):
        lines = [f"{message.method} {message.uri} SIP/2.0"]
    else:
        lines = [f"SIP/2.0 {message.status_code} {message.reason_phrase}"]
    for name, values in message.headers.items():
        pretty = _CANONICAL.get(name.lower()) or prettify_header_name(name)
        lines += [f"{pretty}: {value}" for value in values]
    lines += ["", ""]
    return "\r\n".join(lines).encode("utf-8") + message.body


def new_request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> Request:
    request = SipRequest(method=method, uri=uri, body=body)
    for name, value in headers:
        request.headers.append(name, value)
    return request


def new_response(status: int, reason: str, headers: list[tuple[str, str]], body: bytes = b"") -> Response:
    response = SipResponse(status_code=status, reason_phrase=reason, body=body)
    for name, value in headers:
        response.headers.append(name, value)
    return response


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
