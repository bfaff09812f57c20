"""AMI framing, sans-I/O: the banner, ``Key: Value`` blocks, the limits, actions safe from injection."""

from __future__ import annotations

import hashlib

import pytest

from gateway.sources.ami.protocol import AmiParser, Malformed, Message, ProtocolError, action, challenge_key

BANNER = b"Asterisk Call Manager/5.0.2\r\n"


def test_the_banner_is_read_and_then_messages() -> None:
    parser = AmiParser()
    out = parser.feed(
        BANNER + b"Response: Success\r\nActionID: gw-1\r\nMessage: Authentication accepted\r\n\r\n"
    )
    assert parser.banner == "Asterisk Call Manager/5.0.2"
    assert out == [Message({"response": "Success", "actionid": "gw-1", "message": "Authentication accepted"})]


def test_a_message_split_anywhere_is_framed_the_same() -> None:
    data = (
        BANNER
        + b"Event: Newchannel\r\nChannel: PJSIP/1001-00000001\r\nUniqueid: 1.1\r\n\r\n"
        + b"Event: Hangup\r\nCause: 16\r\n\r\n"
    )
    whole = AmiParser().feed(data)
    for cut in range(1, len(data)):
        parser = AmiParser()
        assert parser.feed(data[:cut]) + parser.feed(data[cut:]) == whole


def test_field_names_compare_without_case_and_the_first_repeat_wins() -> None:
    (message,) = AmiParser().feed(BANNER + b"event: Hangup\r\nCAUSE: 16\r\nCause: 17\r\n\r\n")
    assert isinstance(message, Message)
    assert (message.event, message.get("Cause")) == ("Hangup", "16")


def test_a_value_may_hold_colons_and_be_empty() -> None:
    (message,) = AmiParser().feed(BANNER + b"Event: X\r\nData: a:b: c\r\nBridgeId:\r\n\r\n")
    assert isinstance(message, Message)
    assert (message.get("data"), message.get("bridgeid")) == ("a:b: c", "")


def test_bare_newlines_are_accepted() -> None:
    (message,) = AmiParser().feed(BANNER + b"Event: Hangup\nCause: 16\n\n")
    assert isinstance(message, Message) and message.get("cause") == "16"


def test_a_line_that_is_not_key_value_makes_its_message_malformed_and_the_next_one_reads() -> None:
    out = AmiParser().feed(BANNER + b"Event: X\r\ngarbage here\r\n\r\nEvent: Y\r\n\r\n")
    assert out == [Malformed("line 2 is not 'Key: Value'"), Message({"event": "Y"})]


def test_bytes_that_are_not_utf8_do_not_stop_the_stream() -> None:
    (message,) = AmiParser().feed(BANNER + b"Event: X\r\nCallerIDName: M\xfcller\r\n\r\n")
    assert isinstance(message, Message) and message.get("calleridname") == "M\ufffdller"


def test_a_first_line_that_is_no_ami_banner_is_refused() -> None:
    with pytest.raises(ProtocolError, match="banner"):
        AmiParser().feed(b"SSH-2.0-OpenSSH_9.2\r\n")


def test_an_endless_line_is_refused_before_it_is_all_kept() -> None:
    parser = AmiParser(max_line=1024)
    parser.feed(BANNER)
    with pytest.raises(ProtocolError, match="line longer"):
        parser.feed(b"Event: " + b"x" * 2000)


def test_an_endless_message_is_refused() -> None:
    parser = AmiParser(max_message=4096)
    with pytest.raises(ProtocolError, match="message longer"):
        parser.feed(BANNER + (b"Key: " + b"v" * 100 + b"\r\n") * 100)


def test_too_many_lines_in_one_message_are_refused() -> None:
    with pytest.raises(ProtocolError, match="more than 8 lines"):
        AmiParser(max_fields=8).feed(BANNER + b"K: v\r\n" * 9)


def test_an_action_is_key_value_lines_and_a_blank_line() -> None:
    assert action("Ping", "gw-7") == b"Action: Ping\r\nActionID: gw-7\r\n\r\n"


def test_a_value_with_a_line_break_cannot_add_a_header_to_an_action() -> None:
    with pytest.raises(ValueError, match="line break"):
        action("Originate", "gw-1", {"CallerID": "x\r\nAction: Command"})


def test_the_md5_login_key_is_the_digest_of_challenge_then_secret() -> None:
    assert challenge_key("123456789", "s3cret") == hashlib.md5(b"123456789s3cret").hexdigest()
