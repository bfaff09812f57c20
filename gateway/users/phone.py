"""Phone numbers to E.164, so HubSpot's caller-ID matching finds the record."""

from __future__ import annotations

import functools
import re

import phonenumbers

_SIP_URI = re.compile(r"^(?:sips?|tel):([^@;>]+)", re.IGNORECASE)
_VISUAL_SEPARATORS = re.compile(r"[\s().\-/]")
_DIGITS = re.compile(r"\+?[0-9]+")
_MAX_EXTENSION_DIGITS = 6


# Parsing is the dearest step of a signal and the same numbers recur.
@functools.lru_cache(maxsize=8192)
def to_e164(raw: str | None, default_region: str = "US") -> str | None:
    """A dialled or presented number in E.164, an extension, or None when it is no number.

    Internal extensions ("1001") and numbers the plan does not know have no
    E.164 form; they are passed through as digits (stripped of URI syntax
    and separators), so the call is still logged with what the PBX said.
    Anything else ("anonymous", ``sip:alice@example.com``, ``client:bob``)
    is no phone number, and the SDK's number fields carry only numbers.
    """
    if raw is None:
        return None
    text = raw.strip()
    match = _SIP_URI.match(text)
    if match:
        text = match.group(1)
    if not text:
        return None
    candidate = _VISUAL_SEPARATORS.sub("", text)
    if not _DIGITS.fullmatch(candidate):
        return None
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    # Short digit strings are PBX extensions in any region, even where the
    # national plan would accept them as a (short) subscriber number.
    if not candidate.startswith("+") and len(candidate) <= _MAX_EXTENSION_DIGITS:
        return candidate
    try:
        parsed = phonenumbers.parse(candidate, None if candidate.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return candidate
    # A number that is possible only locally (seven US digits, no area
    # code) has no E.164 form: "+1" and those digits would name nobody.
    if phonenumbers.is_possible_number_with_reason(parsed) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return candidate
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
