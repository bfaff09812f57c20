"""Where the gateway reads or builds SIP itself, it does as the library does.

The adapter's own parse builds what the library's parse builds from the same bytes.

``adapter.parse_message`` parses without the library (for speed) into the
library's message types; whatever bytes come in, the result (or the
refusal) must be the library's own, so that nothing downstream can tell,
but for where the library departs from RFC 3261 (``parse_message``'s
docstring; tests/sip/test_header_format.py holds ours to the RFC there).
"""

from __future__ import annotations

import random
import re

import pytest
from aiosipua import SipMessage, SipRequest, SipResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.sources.sip.adapter import Request, Response, new_response, parse_message, split_head
from tests.support.sipfuzz import Mutator

NOTIFY = (
    b"NOTIFY sip:gateway@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport, SIP/2.0/TCP [::1]:5080;branch=z9hG4bK2\r\n"
    b"v: SIP/2.0/UDP proxy.test;branch=z9hG4bK3\r\n"
    b'From: "Desk, 1" <sip:2001@pbx.test;x=a,b>;tag=ab\r\n'
    b"t: <sip:gateway@pbx.test>;tag=cd\r\n"
    b"i: 1234@pbx\r\n"
    b"CSeq: 7 NOTIFY\r\n"
    b"m: <sip:2001@pbx.test>, <sip:2001@10.0.0.1>\r\n"
    b"Supported: \r\n"
    b"Require: a,,b ,\r\n"
    b"Subject: folded\r\n"
    b" over two lines\r\n"
    b"Event: dialog\r\n"
    b"Subscription-State: active;expires=600\r\n"
    b"Content-Type: application/dialog-info+xml\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"<a/>trailing bytes beyond Content-Length"
)
RESPONSE = (
    b"SIP/2.0 200 OK, fine\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\n"
    b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\n"
    b"Expires: 600\r\nContent-Length: 0\r\n\r\n"
)


# The compact names of SIP extensions, which the library leaves as they came.
_EXTENSION_NAMES = {"a": "accept-contact", "b": "referred-by", "d": "request-disposition"}
_EXTENSION_NAMES |= {"j": "reject-contact", "o": "event", "r": "refer-to", "u": "allow-events"}
_EXTENSION_NAMES |= {"x": "session-expires", "y": "identity"}


def library(data: bytes) -> object:
    """The library's parse of the same message, its departures from the RFC set right."""
    parts = split_head(data)
    if parts is not None:  # the header section ends at the first empty line
        data = parts[0] + b"\r\n\r\n" + parts[1]
    try:
        message = SipMessage.parse(data)
    except Exception as exc:  # the library may raise anything; ours says ValueError
        return ("refused", isinstance(exc, ValueError))
    return shape(message, folded=_FOLDED.search(data) is not None)


def ours(data: bytes) -> object:
    try:
        message = parse_message(data)
    except ValueError as exc:
        return ("refused", not str(exc).startswith("unparseable"))
    return shape(message, folded=_FOLDED.search(data) is not None)


_FOLDED = re.compile(rb"[\r\n][ \t]")
_BLANKS = re.compile(r"[ \t]+")


def shape(message: Request | Response, *, folded: bool = False) -> object:
    """What a parse built, extension compact names expanded; with blanks in names
    and values read as one (the library keeps those before a fold) when the
    message has a continuation line."""
    merged: dict[str, tuple[str, list[str]]] = {}
    for name, values in message.headers.items():
        full = _EXTENSION_NAMES.get(name.lower(), _BLANKS.sub(" ", name) if folded else name)
        _, held = merged.setdefault(full.lower(), (full, []))
        held += [_BLANKS.sub(" ", value) for value in values] if folded else values
    headers = list(merged.values())
    if isinstance(message, SipRequest):
        return ("request", message.method, message.uri, headers, message.body)
    return ("response", message.status_code, message.reason_phrase, headers, message.body)


def test_a_message_with_lists_compact_names_folding_and_extra_body_parses_as_the_library_parses_it() -> None:
    for data in (NOTIFY, RESPONSE, NOTIFY.replace(b"\r\n", b"\n"), NOTIFY.replace(b"\r\n", b"\r")):
        assert ours(data) == library(data)


def test_mutated_messages_parse_as_the_library_parses_them() -> None:
    mutator = Mutator(random.Random("adapter-parse"))
    for _ in range(3000):
        _, data = mutator.mutate(random.choice((NOTIFY, RESPONSE)))
        assert ours(data) == library(data), data


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["Via", "v", "Contact", "m", "To", "Require", "X-Odd", "l", "Content-Length", " "]
            ),
            st.text(alphabet=' ,<>";:a1\t\r\n', max_size=24),
        ),
        max_size=8,
    ),
    st.binary(max_size=12),
)
def test_any_header_values_parse_as_the_library_parses_them(
    fields: list[tuple[str, str]], body: bytes
) -> None:
    head = "NOTIFY sip:a@b SIP/2.0\r\n" + "".join(f"{name}: {value}\r\n" for name, value in fields)
    data = head.encode() + b"\r\n" + body
    assert ours(data) == library(data)


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Note", "a\r\nVia: forged"), ("X-Note", "a\nb"), ("X-Note\r\nVia", "x"), ("Via: x", "y")],
)
def test_an_answer_refuses_a_header_that_would_inject_lines_as_the_library_refuses_it(
    name: str, value: str
) -> None:
    with pytest.raises(ValueError):
        SipResponse(status_code=200, reason_phrase="OK").headers.append(name, value)
    with pytest.raises(ValueError):
        new_response(200, "OK", [("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), (name, value)])


def test_an_answer_keeps_its_headers_in_order_under_their_first_spelling() -> None:
    pairs = [("Via", "v1"), ("From", "f"), ("via", "v2"), ("SIP-ETag", "t")]
    library = SipResponse(status_code=200, reason_phrase="OK")
    for name, value in pairs:
        library.headers.append(name, value)
    assert shape(new_response(200, "OK", pairs)) == shape(library)
