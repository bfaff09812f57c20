"""Each cap on a dialog-info body holds at its exact bound: the limit is taken, one more is refused."""

from __future__ import annotations

import pytest

from gateway.sources.sip.dialoginfo import NAMESPACE, DialogInfoError, parse_dialog_info

# The caps as docs/sip.md states them: written out, so that moving one is a
# change these tests notice rather than follow.
MAX_BYTES = 65536
MAX_DEPTH = 24
MAX_ELEMENTS = 4096
MAX_DIALOGS = 128
MAX_VALUE_CHARS = 1024
MAX_VERSION = 9223372036854775807  # 2**63 - 1

HEAD = f'<?xml version="1.0"?><dialog-info xmlns="{NAMESPACE}" version="1" state="full" entity="sip:1001@x">'
TAIL = "</dialog-info>"


def document(inner: str, version: str = "1") -> bytes:
    return (HEAD.replace('version="1" state', f'version="{version}" state') + inner + TAIL).encode()


def dialogs(count: int) -> str:
    return "".join(f'<dialog id="d{i}"><state>early</state></dialog>' for i in range(count))


def test_a_body_of_max_bytes_is_read_and_one_byte_more_refused() -> None:
    filler = MAX_BYTES - len(document(""))
    body = document(f"<!--{'x' * (filler - 7)}-->")
    assert len(body) == MAX_BYTES
    assert parse_dialog_info(body).dialogs == ()
    with pytest.raises(DialogInfoError, match="over the 65536 byte limit"):
        parse_dialog_info(document(f"<!--{'x' * (filler - 6)}-->"))


def test_max_dialogs_are_read_and_one_more_refused() -> None:
    assert len(parse_dialog_info(document(dialogs(MAX_DIALOGS))).dialogs) == MAX_DIALOGS
    with pytest.raises(DialogInfoError, match=f"more than {MAX_DIALOGS} dialogs"):
        parse_dialog_info(document(dialogs(MAX_DIALOGS + 1)))


def nested(depth: int) -> str:
    # dialog-info is level 1 and the dialog level 2: its children start at 3.
    extra = depth - 2
    return f'<dialog id="d"><state>early</state>{"<x>" * extra}{"</x>" * extra}</dialog>'


def test_nesting_of_max_depth_is_read_and_one_level_more_refused() -> None:
    assert parse_dialog_info(document(nested(MAX_DEPTH)))
    with pytest.raises(DialogInfoError, match=f"deeper than {MAX_DEPTH}"):
        parse_dialog_info(document(nested(MAX_DEPTH + 1)))


def test_max_elements_are_read_and_one_more_refused() -> None:
    # dialog-info, the dialog and its state are three elements.
    fill = "<x/>" * (MAX_ELEMENTS - 3)
    assert parse_dialog_info(document(f'<dialog id="d"><state>early</state>{fill}</dialog>'))
    with pytest.raises(DialogInfoError, match=f"more than {MAX_ELEMENTS} elements"):
        parse_dialog_info(document(f'<dialog id="d"><state>early</state>{fill}<x/></dialog>'))


def test_a_value_of_max_characters_is_read_and_one_more_refused() -> None:
    def with_call_id(length: int) -> bytes:
        return document(f'<dialog id="d" call-id="{"c" * length}"><state>early</state></dialog>')

    assert parse_dialog_info(with_call_id(MAX_VALUE_CHARS)).dialogs[0].call_id == "c" * MAX_VALUE_CHARS
    with pytest.raises(DialogInfoError, match=f"longer than {MAX_VALUE_CHARS}"):
        parse_dialog_info(with_call_id(MAX_VALUE_CHARS + 1))


def test_the_largest_version_is_read_and_one_more_refused() -> None:
    assert parse_dialog_info(document("", version=str(MAX_VERSION))).version == MAX_VERSION
    with pytest.raises(DialogInfoError):
        parse_dialog_info(document("", version=str(MAX_VERSION + 1)))


@pytest.mark.parametrize("version", ["-1", "²", "0x5", "", "5 6"])
def test_a_version_that_is_no_plain_decimal_is_refused(version: str) -> None:
    with pytest.raises(DialogInfoError):
        parse_dialog_info(document("", version=version))


def test_a_version_is_at_most_19_digits_even_when_zero_padded() -> None:
    assert parse_dialog_info(document("", version="0" * 18 + "7")).version == 7
    with pytest.raises(DialogInfoError):
        parse_dialog_info(document("", version="0" * 19 + "7"))


def code(value: str) -> bytes:
    return document(f'<dialog id="d"><state code="{value}">terminated</state></dialog>')


@pytest.mark.parametrize("value", [100, 699])
def test_the_first_and_last_sip_codes_are_read(value: int) -> None:
    assert parse_dialog_info(code(str(value))).dialogs[0].code == value


def test_a_sip_code_is_three_digits_even_when_zero_padded() -> None:
    with pytest.raises(DialogInfoError, match="is not a SIP response code"):
        parse_dialog_info(code("0486"))


def test_only_dialogs_directly_under_the_root_count_towards_the_dialog_cap() -> None:
    # Foreign elements beside the dialogs, and dialog elements nested in
    # foreign ones, are ignored (RFC 4235) and so do not count as dialogs.
    foreign = "<x/>" * (MAX_DIALOGS + 1)
    nested = f"<x>{dialogs(MAX_DIALOGS + 1)}</x>"
    info = parse_dialog_info(document(dialogs(MAX_DIALOGS) + foreign + nested))
    assert len(info.dialogs) == MAX_DIALOGS
