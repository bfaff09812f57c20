"""Decimal numbers from untrusted text.

``str.isdigit`` accepts superscripts and other Unicode digits that ``int``
refuses, and ``int`` turns a megabyte of digits into a slow bignum; every
number that arrives from outside goes through here instead.
"""

from __future__ import annotations


def parse_decimal(text: str, max_digits: int = 19) -> int | None:
    """The value of ``text`` if it is 1 to ``max_digits`` ASCII digits, else None."""
    # ASCII first: then isdigit means 0-9 only (a test, unlike a regular
    # expression, cheap enough for every event id of every stream).
    if len(text) > max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
