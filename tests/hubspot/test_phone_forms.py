"""The forms of a number the contact search asks for."""

from __future__ import annotations

from gateway.hubspot.phone_forms import phone_forms


def test_the_e164_form_comes_first() -> None:
    assert phone_forms("+15555550123")[0] == "+15555550123"


def test_the_forms_people_type_are_included() -> None:
    forms = phone_forms("+15555550123")
    for typed in ("+1 555-555-0123", "(555) 555-0123", "5555550123", "15555550123"):
        assert typed in forms


def test_a_national_trunk_prefix_is_included() -> None:
    assert "030 123456" in phone_forms("+4930123456")
    assert "030123456" in phone_forms("+4930123456")


def test_each_form_once() -> None:
    forms = phone_forms("+4930123456")
    assert len(forms) == len(set(forms))


def test_a_number_that_does_not_parse_is_searched_as_given() -> None:
    assert phone_forms("12") == ["12"]
