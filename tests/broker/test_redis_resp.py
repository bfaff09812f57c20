"""Redis's wire protocol as the broker's hot paths write and read it (gateway.broker.redis.resp)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.broker.redis import resp
from gateway.broker.redis.resp import MAX_DEPTH, ProtocolError, Push, Replies, ReplyError, Value, pack

# One of each reply the parser reads, as Redis sends them.
_WIRE = (
    b">3\r\n$7\r\nmessage\r\n$12\r\ngw:live:anna\r\n$7\r\n1-0 {x}\r\n"  # a pub/sub push
    b"+PONG\r\n"
    b"-NOSCRIPT No matching script\r\n"
    b":42\r\n"
    b"*3\r\n$2\r\nok\r\n$-1\r\n_\r\n"  # an array holding a null bulk string and a null
    b"%1\r\n+key\r\n#t\r\n"  # a map
    b"=8\r\ntxt:text\r\n"  # a verbatim string
    b",1.5\r\n"
    b"!9\r\nERR blobs\r\n"  # a bulk error
    b"|1\r\n+ttl\r\n:3\r\n:7\r\n"  # an attribute, then the value it annotates
)
_VALUES = [
    ["message", "gw:live:anna", "1-0 {x}"],
    "PONG",
    ReplyError("NOSCRIPT No matching script"),
    42,
    ["ok", None, None],
    ["key", True],
    "text",
    1.5,
    ReplyError("ERR blobs"),
    7,
]


def _same(got: Sequence[object], want: Sequence[object]) -> bool:
    return repr(got) == repr(want)


def test_every_kind_of_reply_is_read_in_order() -> None:
    replies = Replies()
    replies.feed(_WIRE)
    assert _same(replies.take(), _VALUES)
    assert replies.pending == 0


def test_replies_split_anywhere_across_reads_come_out_whole_and_once() -> None:
    for cut in range(len(_WIRE) + 1):
        replies = Replies()
        replies.feed(_WIRE[:cut])
        first = replies.take()
        replies.feed(_WIRE[cut:])
        assert _same(first + replies.take(), _VALUES), cut
        assert replies.pending == 0


def test_a_push_is_told_apart_from_a_reply_that_is_an_array() -> None:
    replies = Replies()
    replies.feed(b">2\r\n+a\r\n+b\r\n*2\r\n+a\r\n+b\r\n")
    push, array = replies.take()
    assert isinstance(push, Push)
    assert not isinstance(array, Push)
    assert push == array == ["a", "b"]


def test_a_packed_command_is_an_array_of_its_arguments_as_bulk_strings() -> None:
    replies = Replies()
    replies.feed(pack(["EVALSHA", "abc", 2, "gw:{anna}:call:1", ""]))
    assert replies.take() == [["EVALSHA", "abc", "2", "gw:{anna}:call:1", ""]]


def test_a_packed_argument_beyond_ascii_is_counted_in_bytes() -> None:
    packed = pack(["SET", "k", "Zoë ☎"])
    assert packed == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8\r\nZo\xc3\xab \xe2\x98\x8e\r\n"


def test_bytes_that_are_not_resp_are_a_protocol_error() -> None:
    replies = Replies()
    replies.feed(b"?what\r\n")
    with pytest.raises(ProtocolError):
        replies.take()
    replies = Replies()
    replies.feed(b"$x\r\n")
    with pytest.raises(ProtocolError):
        replies.take()


def test_a_message_that_is_not_utf8_is_read_with_replacements_not_an_exception() -> None:
    replies = Replies()
    replies.feed(b">3\r\n$7\r\nmessage\r\n$10\r\ngw:control\r\n$2\r\n\xff\xfe\r\n")
    assert replies.take() == [["message", "gw:control", "\ufffd\ufffd"]]


def test_replies_nested_deeper_than_any_reply_here_are_a_protocol_error() -> None:
    # Not a RecursionError: that is no Redis trouble to the pub/sub listener,
    # which would die of it and never reconnect.
    replies = Replies()
    replies.feed(b"*1\r\n" * 5000 + b":1\r\n")
    with pytest.raises(ProtocolError):
        replies.take()


def test_nesting_as_deep_as_the_cap_is_read() -> None:
    replies = Replies()
    replies.feed(b"*1\r\n" * (MAX_DEPTH - 1) + b":1\r\n")
    (value,) = replies.take()
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(value, list)
        (value,) = value
    assert value == 1


def test_a_bulk_string_not_ended_by_crlf_is_a_protocol_error_not_a_shifted_read() -> None:
    replies = Replies()
    replies.feed(b"$3\r\nabcXY:1\r\n")
    with pytest.raises(ProtocolError):
        replies.take()


def test_a_negative_length_other_than_null_is_a_protocol_error() -> None:
    for wire in (b"$-2\r\n", b"*-7\r\n", b">-1\r\n"):
        replies = Replies()
        replies.feed(wire)
        with pytest.raises(ProtocolError):
            replies.take()


def test_a_bulk_length_beyond_what_redis_can_send_is_a_protocol_error_not_a_wait() -> None:
    # Otherwise every reply after it would be buffered as its body.
    replies = Replies()
    replies.feed(b"$9999999999\r\n")
    with pytest.raises(ProtocolError):
        replies.take()


class HeaderReads:
    """How many times the reader read a length (of a bulk string or aggregate): its work, counted.

    Past ``limit`` the count fails the test at once: a quadratic reader
    would otherwise take hours to be found out.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
        self.count = 0
        self.limit = limit
        length = resp._length

        def counted(text: bytes) -> int:
            self.count += 1
            assert self.count <= self.limit, f"more than {self.limit} lengths read"
            return length(text)

        monkeypatch.setattr(resp, "_length", counted)


def _read_in_pieces(wire: bytes, piece: int) -> list[Value]:
    replies, got = Replies(), []
    for at in range(0, len(wire), piece):
        replies.feed(wire[at : at + piece])
        got += replies.take()
    assert replies.pending == 0
    return got


def test_a_large_bulk_string_in_many_reads_is_read_once_it_is_all_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading it again from its start at every read was quadratic in its
    # size: a few large messages on a channel stalled every stream.
    reads = HeaderReads(monkeypatch, limit=2)
    body = b"x" * 100_000
    assert _read_in_pieces(b"$%d\r\n%s\r\n" % (len(body), body), 1000) == [body.decode()]
    assert reads.count <= 2


def test_an_array_of_many_short_strings_in_many_reads_is_read_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An HGETALL of thousands of fields, one byte per read at worst. Read
    # again from its start each time one more value was complete, it was
    # quadratic in its values: some 200 million lengths read here.
    values = [f"v{n}" for n in range(20_000)]
    wire = _encode(values)
    # Each length read once its line is complete, a bulk string's again
    # once its body is.
    reads = HeaderReads(monkeypatch, limit=2 * (len(values) + 1))
    assert _read_in_pieces(wire, 1) == [values]
    assert reads.count <= 2 * (len(values) + 1)


def test_nested_arrays_in_many_reads_are_read_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    # An XRANGE: each entry an id and its fields, cut at every few bytes.
    entries = [[f"{n}-0", ["event", "x" * (n % 50)]] for n in range(5_000)]
    wire = _encode(entries) + _encode("next")
    headers = 5 * len(entries) + 2
    reads = HeaderReads(monkeypatch, limit=2 * headers)
    assert _read_in_pieces(wire, 7) == [entries, "next"]
    assert reads.count <= 2 * headers


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=20),
)
_TREES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=20)


def _encode(value: object) -> bytes:
    """As Redis writes each (RESP3 for null and booleans)."""
    if value is None:
        return b"_\r\n"
    if isinstance(value, bool):
        return b"#t\r\n" if value else b"#f\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, str):
        raw = value.encode()
        return b"$%d\r\n%s\r\n" % (len(raw), raw)
    assert isinstance(value, list)
    return b"*%d\r\n" % len(value) + b"".join(_encode(item) for item in value)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TREES, min_size=1, max_size=5), st.lists(st.integers(min_value=0), max_size=6))
def test_any_replies_cut_into_any_reads_come_out_as_sent(values: list[object], cuts: list[int]) -> None:
    wire = b"".join(_encode(value) for value in values)
    points = sorted({cut % (len(wire) + 1) for cut in cuts} | {0, len(wire)})
    replies, got = Replies(), []
    for begin, end in itertools.pairwise(points):
        replies.feed(wire[begin:end])
        got += replies.take()
    assert got == values
    assert replies.pending == 0


@settings(max_examples=500, deadline=None)
@given(_TREES, st.integers(min_value=0), st.binary(min_size=1, max_size=3))
def test_replies_with_any_bytes_overwritten_are_values_a_wait_or_a_protocol_error(
    value: object, at: int, junk: bytes
) -> None:
    wire = bytearray(_encode(value))
    at %= len(wire)
    wire[at : at + len(junk)] = junk
    replies = Replies()
    replies.feed(bytes(wire))
    try:
        replies.take()
    except ProtocolError:
        return
    assert replies.pending <= len(wire)  # what it holds is of what it was fed
