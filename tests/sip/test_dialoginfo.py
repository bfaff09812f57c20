"""dialog-info parsing: real PBX shapes parse, hostile or malformed bodies are refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.sources.sip.dialoginfo import (
    CONTENT_TYPE,
    MAX_DEPTH,
    MAX_DIALOGS,
    MAX_ELEMENTS,
    Dialog,
    DialogInfo,
    DialogInfoError,
    parse_dialog_info,
)

DOCS = Path(__file__).parent / "documents"
NS = "urn:ietf:params:xml:ns:dialog-info"


def doc(name: str) -> DialogInfo:
    return parse_dialog_info((DOCS / name).read_bytes())


def wrap(dialogs: str, *, attrs: str = 'version="1" state="full" entity="sip:1001@pbx.test"') -> bytes:
    return f'<?xml version="1.0"?><dialog-info xmlns="{NS}" {attrs}>{dialogs}</dialog-info>'.encode()


def refused(body: bytes, **kw: int) -> str:
    with pytest.raises(DialogInfoError) as info:
        parse_dialog_info(body, **kw)
    return str(info.value)


# -- real PBX documents ---------------------------------------------------------


def test_asterisk_idle_hint_is_one_terminated_dialog_named_after_the_extension() -> None:
    assert doc("asterisk_idle.xml") == DialogInfo(
        version=0,
        state="full",
        entity="sip:1001@pbx.test",
        dialogs=(Dialog(id="1001", state="terminated"),),
    )


def test_asterisk_ringing_hint_carries_direction_and_caller_identity() -> None:
    (dialog,) = doc("asterisk_ringing.xml").dialogs
    assert (dialog.id, dialog.state, dialog.direction, dialog.call_id) == ("1001", "early", "recipient", None)
    assert (dialog.remote_identity, dialog.remote_display) == ("sip:+15555550199@pbx.test", "Carol Caller")


def test_asterisk_in_use_hint_has_no_direction_reason_or_identity() -> None:
    (dialog,) = doc("asterisk_inuse.xml").dialogs
    assert dialog == Dialog(id="1001", state="confirmed")


def test_asterisk_on_hold_hint_parses_as_confirmed_with_a_local_target() -> None:
    (dialog,) = doc("asterisk_onhold.xml").dialogs
    assert (dialog.state, dialog.local_target, dialog.local_identity) == (
        "confirmed",
        "sip:1001@pbx.test",
        None,
    )


def test_freeswitch_dialog_has_uuid_id_and_both_identities() -> None:
    (dialog,) = doc("freeswitch_early.xml").dialogs
    assert dialog.id == "2f1c6a52-8e3b-4bb0-9d3a-6b1d0c7e5a11"
    assert (dialog.remote_identity, dialog.remote_display) == ("sip:2125550123@fs.test", "Dave Dialler")
    assert (dialog.local_identity, dialog.local_display) == ("sip:1001@fs.test", "1001")


def test_freeswitch_resubscribe_notice_is_a_partial_document_without_dialogs() -> None:
    info = doc("freeswitch_resubscribe.xml")
    assert (info.state, info.version, info.dialogs) == ("partial", 8, ())


def test_kamailio_capitalised_trying_state_is_normalised() -> None:
    (dialog,) = doc("kamailio_publish_trying.xml").dialogs
    assert (dialog.state, dialog.direction) == ("trying", "initiator")
    assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == (
        "a84b4c76e66710@10.0.0.5",
        "1928301774",
        None,
    )


def test_kamailio_presence_document_carries_several_dialogs() -> None:
    info = doc("kamailio_presence_two_dialogs.xml")
    assert [(d.id, d.state, d.remote_identity) for d in info.dialogs] == [
        ("c1-uuid", "confirmed", "sip:+15555550111@kam.test"),
        ("c2-uuid", "early", "tel:+15555550122"),
    ]


def test_terminated_state_keeps_event_and_code() -> None:
    (dialog,) = doc("rfc4235_partial_terminated.xml").dialogs
    assert (dialog.state, dialog.event, dialog.code) == ("terminated", "rejected", 486)


def test_replaces_element_names_the_replaced_call() -> None:
    info = doc("rfc4235_replaced.xml")
    assert [(d.event, d.replaces_call_id) for d in info.dialogs] == [
        ("replaced", None),
        (None, "old-call@example.com"),
    ]


def test_prefixed_namespace_parses_and_foreign_elements_are_ignored() -> None:
    info = doc("prefixed_namespace.xml")
    assert info.dialogs == (Dialog(id="7", state="proceeding"),)


def test_both_tags_are_read() -> None:
    body = wrap('<dialog id="1" local-tag="lt" remote-tag="rt"><state>confirmed</state></dialog>')
    (dialog,) = parse_dialog_info(body).dialogs
    assert (dialog.local_tag, dialog.remote_tag) == ("lt", "rt")


def test_parsed_documents_and_dialogs_cannot_be_changed() -> None:
    info = doc("asterisk_ringing.xml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.version = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.dialogs[0].state = "confirmed"  # type: ignore[misc]


def test_utf8_display_names_survive() -> None:
    body = wrap(
        '<dialog id="1"><state>early</state>'
        '<remote><identity display="Zoë Ünal">sip:1@x</identity></remote></dialog>'
    )
    (dialog,) = parse_dialog_info(body).dialogs
    assert dialog.remote_display == "Zoë Ünal"


def test_the_body_type_read_is_rfc_4235s() -> None:
    assert CONTENT_TYPE == "application/dialog-info+xml"


# -- hostile input -----------------------------------------------------------


def test_billion_laughs_is_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="&c;"/>'
    )
    assert "refused" in refused(body)


def test_external_entity_is_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="&x;"/>'
    )
    assert "refused" in refused(body)


def test_bare_doctype_is_refused() -> None:
    body = b"<!DOCTYPE dialog-info>" + wrap("").split(b"?>", 1)[1]
    assert "DTDForbidden" in refused(body)


def test_oversized_body_is_refused_before_parsing() -> None:
    body = wrap("<!--" + "x" * 70000 + "-->")
    assert "over the 65536 byte limit" in refused(body)


def test_byte_limit_is_configurable() -> None:
    assert "over the 100 byte limit" in refused(doc_bytes("asterisk_idle.xml"), max_bytes=100)


def doc_bytes(name: str) -> bytes:
    return (DOCS / name).read_bytes()


def test_deep_nesting_is_refused() -> None:
    depth = MAX_DEPTH + 5
    body = wrap('<dialog id="1"><state>early</state>' + "<x>" * depth + "</x>" * depth + "</dialog>")
    assert f"deeper than {MAX_DEPTH}" in refused(body)


def test_too_many_elements_are_refused() -> None:
    body = wrap('<dialog id="1"><state>early</state>' + "<x/>" * (MAX_ELEMENTS + 1) + "</dialog>")
    assert f"more than {MAX_ELEMENTS} elements" in refused(body)


def test_too_many_dialogs_are_refused() -> None:
    body = wrap("".join(f'<dialog id="{i}"><state>early</state></dialog>' for i in range(MAX_DIALOGS + 1)))
    assert f"more than {MAX_DIALOGS} dialogs" in refused(body)


def test_overlong_identity_is_refused() -> None:
    body = wrap(
        '<dialog id="1"><state>early</state><remote><identity>sip:'
        + "9" * 2000
        + "@x</identity></remote></dialog>"
    )
    assert "remote identity is longer than" in refused(body)


# -- malformed documents --------------------------------------------------------


def test_not_xml_is_refused() -> None:
    assert "not well-formed" in refused(b"<dialog-info")


def test_empty_body_is_refused() -> None:
    assert "empty" in refused(b"  \r\n")


def test_wrong_root_element_is_refused_naming_it_and_its_namespace() -> None:
    body = b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1@x"/>'
    assert "root element is 'presence' in namespace 'urn:ietf:params:xml:ns:pidf'" in refused(body)


def test_missing_namespace_is_refused() -> None:
    body = b'<dialog-info version="1" state="full" entity="sip:1@x"/>'
    assert "without a namespace" in refused(body)


@pytest.mark.parametrize("version", ["", "-1", "1.5", "abc", "99999999999999999999"])
def test_bad_version_is_refused(version: str) -> None:
    assert "is not a non-negative integer" in refused(
        wrap("", attrs=f'version="{version}" state="full" entity="e"')
    )


def test_missing_version_is_refused() -> None:
    assert "no version" in refused(wrap("", attrs='state="full" entity="e"'))


def test_bad_document_state_is_refused() -> None:
    assert "expected 'full' or 'partial'" in refused(wrap("", attrs='version="1" state="some" entity="e"'))


def test_missing_entity_is_refused() -> None:
    assert "no entity" in refused(wrap("", attrs='version="1" state="full"'))


def test_dialog_without_id_is_refused() -> None:
    assert "no id" in refused(wrap("<dialog><state>early</state></dialog>"))


def test_dialog_without_state_is_refused() -> None:
    assert "has no state element" in refused(wrap('<dialog id="1"/>'))


def test_unknown_dialog_state_is_refused() -> None:
    assert "is not one of" in refused(wrap('<dialog id="1"><state>ringing</state></dialog>'))


def test_unknown_direction_is_refused() -> None:
    assert "is not initiator or recipient" in refused(
        wrap('<dialog id="1" direction="in"><state>early</state></dialog>')
    )


@pytest.mark.parametrize("code", ["99", "700", "4860", "abc"])
def test_bad_sip_code_is_refused(code: str) -> None:
    body = wrap(f'<dialog id="1"><state code="{code}">terminated</state></dialog>')
    assert "is not a SIP response code" in refused(body)


def test_a_dialog_id_listed_twice_keeps_its_later_entry() -> None:
    body = wrap(
        '<dialog id="1"><state>early</state></dialog><dialog id="2"><state>trying</state></dialog>'
        '<dialog id="1"><state>confirmed</state></dialog>'
    )
    dialogs = parse_dialog_info(body).dialogs
    assert [(d.id, d.state) for d in dialogs] == [("2", "trying"), ("1", "confirmed")]


def test_invalid_utf8_is_refused() -> None:
    body = wrap('<dialog id="1"><state>early</state></dialog>').replace(b'id="1"', b'id="\xff\xfe"')
    assert "not UTF-8" in refused(body)


def test_state_text_surrounded_by_whitespace_parses() -> None:
    (dialog,) = parse_dialog_info(wrap('<dialog id="1"><state>\n  confirmed\n</state></dialog>')).dialogs
    assert dialog.state == "confirmed"


@pytest.mark.parametrize(
    "encoding", ["U5F-8", "rot13", "zlib", "idna", "utf-32", "shift_jis", "unicode_escape"]
)
def test_a_declared_encoding_other_than_utf8_is_refused(encoding: str) -> None:
    body = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + wrap("").split(b"?>", 1)[1]
    assert "encoding" in refused(body)


@pytest.mark.parametrize("encoding", ["UTF-8", "utf8", "US-ASCII", "ascii"])
def test_utf8_and_ascii_declarations_are_read(encoding: str) -> None:
    body = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + wrap("").split(b"?>", 1)[1]
    assert parse_dialog_info(body).dialogs == ()


@pytest.mark.parametrize("encoding", ["rot13", "idna", "utf-32", "latin-1"])
def test_a_codec_declared_after_a_byte_order_mark_is_refused(encoding: str) -> None:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
    body = b"\xef\xbb\xbf" + declaration + wrap("").split(b"?>", 1)[1]
    assert "only UTF-8 is read" in refused(body)


@pytest.mark.parametrize("encoding", ["latin-1", "rot13"])
def test_a_declaration_padded_past_any_window_is_still_read_and_refused(encoding: str) -> None:
    declaration = f'<?xml version="1.0"{" " * 300} encoding="{encoding}"?>'.encode()
    body = declaration + wrap("").split(b"?>", 1)[1]
    assert "only UTF-8 is read" in refused(body)


def test_a_utf16_body_is_refused() -> None:
    assert "NUL" in refused(wrap("").decode().encode("utf-16-le"))


def test_a_utf8_body_with_a_byte_order_mark_and_names_beyond_ascii_is_read() -> None:
    remote = '<remote><identity display="José">sip:a@b</identity></remote>'
    body = b"\xef\xbb\xbf" + wrap(f'<dialog id="1"><state>early</state>{remote}</dialog>')
    (dialog,) = parse_dialog_info(body).dialogs
    assert dialog.remote_display == "José"


@pytest.mark.parametrize(
    ("dialog", "field"),
    [
        ('<dialog id="{long}"><state>early</state></dialog>', "dialog id is longer"),
        ('<dialog id="1" remote-tag="{long}"><state>early</state></dialog>', "remote-tag is longer"),
        ('<dialog id="1" local-tag="{long}"><state>early</state></dialog>', "local-tag is longer"),
        ('<dialog id="1" call-id="{long}"><state>early</state></dialog>', "call-id is longer"),
        ('<dialog id="1"><state event="{long}">terminated</state></dialog>', "state event is longer"),
    ],
)
def test_an_overlong_value_is_refused_naming_its_field(dialog: str, field: str) -> None:
    assert field in refused(wrap(dialog.format(long="v" * 1025)))


def test_an_overlong_entity_is_refused_naming_the_entity() -> None:
    attrs = f'version="1" state="full" entity="{"v" * 1025}"'
    assert "dialog-info entity is longer" in refused(wrap("", attrs=attrs))


QUOTED = "q" * 32  # a refusal quotes at most this much of the value it refuses


@pytest.mark.parametrize(
    "body",
    [
        f'<?xml version="1.0" encoding="{QUOTED}zz"?><x/>'.encode(),
        wrap("", attrs=f'version="{QUOTED}zz" state="full" entity="e"'),
        wrap(f'<dialog id="1"><state>{QUOTED}zz</state></dialog>'),
        wrap(f'<dialog id="1" direction="{QUOTED}zz"><state>early</state></dialog>'),
        wrap(f'<dialog id="1"><state code="{QUOTED}zz">terminated</state></dialog>'),
    ],
    ids=["encoding", "version", "state", "direction", "code"],
)
def test_a_refusal_quotes_the_refused_value_cut_to_32_characters(body: bytes) -> None:
    message = refused(body)
    assert QUOTED in message
    assert QUOTED + "z" not in message
