"""Numbers leave in E.164 so HubSpot's caller-ID matching finds the record."""

from __future__ import annotations

import pytest

from gateway.users.phone import to_e164


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(555) 555-0101", "US", "+15555550101"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", "US", "+442079460958"),
        ("sip:+15555550101@pbx.example.com", "US", "+15555550101"),
        ("tel:+15555550101;phone-context=x", "US", "+15555550101"),
        ("1001", "US", "1001"),
        ("123456", "US", "123456"),
        ("123456", "DE", "123456"),
        ("1234567", "DE", "+491234567"),
        ("+9991234567", "US", "+9991234567"),
        ("555 0101", "US", "5550101"),
        ("2125550101", "US", "+12125550101"),
        ("1001", "GB", "1001"),
        ("sip:1001@pbx.example.com", "DE", "1001"),
        ("anonymous", "US", None),
        ("sip:alice@example.com", "US", None),
        ("client:bob", "US", None),
        ("+1 555 CALL NOW", "US", None),
        ("", "US", None),
        (None, "US", None),
    ],
)
def test_numbers_are_normalised_extensions_kept_and_words_are_no_numbers(
    raw: str | None, region: str, expected: str | None
) -> None:
    assert to_e164(raw, region) == expected


def test_numbers_are_read_in_the_us_when_no_region_is_given() -> None:
    assert to_e164("212 555 0101") == "+12125550101"
