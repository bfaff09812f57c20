"""Event socket framing, sans-I/O: Content-Type/Content-Length frames, URL-encoded events, the limits."""

from __future__ import annotations

import pytest

from gateway.sources.esl.protocol import EslParser, Event, Frame, Malformed, ProtocolError, command, event_of
from tests.support.fake_esl import event_frame, frame


def test_a_reply_without_a_body_is_one_frame() -> None:
    (got,) = EslParser().feed(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
    assert got == Frame({"content-type": "command/reply", "reply-text": "+OK accepted"})


def test_a_body_is_read_to_its_content_length_across_any_split() -> None:
    data = (
        frame({"Content-Type": "api/response"}, b"line one\n\nline two\n") + b"Content-Type: auth/request\n\n"
    )
    whole = EslParser().feed(data)
    assert [f.body for f in whole if isinstance(f, Frame)] == [b"line one\n\nline two\n", b""]
    for cut in range(1, len(data)):
        parser = EslParser()
        assert parser.feed(data[:cut]) + parser.feed(data[cut:]) == whole


def test_event_headers_are_url_decoded_and_a_job_body_is_kept() -> None:
    (got,) = EslParser().feed(
        event_frame({"Event-Name": "BACKGROUND_JOB", "Caller-Caller-ID-Name": "Ann Lee & Co"}, "+OK abc\n")
    )
    assert isinstance(got, Frame)
    event = event_of(got)
    assert isinstance(event, Event)
    assert (event.name, event.get("caller-caller-id-name"), event.body) == (
        "BACKGROUND_JOB",
        "Ann Lee & Co",
        "+OK abc\n",
    )


def test_an_event_without_a_name_is_malformed() -> None:
    (got,) = EslParser().feed(event_frame({"Unique-ID": "x"}))
    assert isinstance(got, Frame) and event_of(got) == Malformed("an event without Event-Name")


def test_a_header_line_that_is_not_name_value_makes_the_frame_malformed() -> None:
    assert EslParser().feed(b"garbage\n\nContent-Type: auth/request\n\n") == [
        Malformed("line 1 is not 'Name: value'"),
        Frame({"content-type": "auth/request"}),
    ]


def test_an_endless_header_block_is_refused() -> None:
    with pytest.raises(ProtocolError, match="header block"):
        EslParser(max_header=1024).feed(b"X: " + b"y" * 2000)


def test_a_content_length_over_the_limit_or_not_a_number_is_refused() -> None:
    with pytest.raises(ProtocolError, match="Content-Length"):
        EslParser(max_body=100).feed(b"Content-Type: api/response\nContent-Length: 101\n\n")
    with pytest.raises(ProtocolError, match="Content-Length"):
        EslParser().feed(b"Content-Type: api/response\nContent-Length: -5\n\n")


def test_a_command_cannot_be_extended_by_a_line_break() -> None:
    assert command("auth pw") == b"auth pw\n\n"
    with pytest.raises(ValueError, match="line break"):
        command("bgapi originate user/1001 &park()\n\nexit")
